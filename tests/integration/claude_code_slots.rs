//! Slots whose credentials stay in Claude Code's store (`sessctl adopt --claude-code`),
//! against the real daemon, the real test OAuth server and Claude Code's lock protocol
//! (the real `proper-lockfile` under node: `tests/claude-code/`). Every config dir is in
//! the test's temp HOME, never a real `~/.claude`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::flows::{Running, assert_success, code_and_stderr, token_works};
use crate::support::claude_code::{
    adopt, assert_same_token, fresh_login, lock_peer, now_ms, read_store, refresh_token_in, script,
    store_path, write_store,
};
use crate::support::wait_for;

/// A config dir in the test's HOME holding a fresh login of `account` (redeemed once at
/// the server, as `claude /login` would have), with fields sessctl does not own.
pub(crate) fn claude_dir(t: &Running, name: &str, account: &str) -> PathBuf {
    let dir = t.env.home().join(name);
    fs::create_dir_all(&dir).unwrap();
    let (mut login, _) = fresh_login(t, account);
    login["subscriptionType"] = "max".into();
    login["rateLimitTier"] = "default_claude_max_20x".into();
    write_store(
        &dir,
        &json!({
            "claudeAiOauth": login,
            "mcpOAuth": {"some-server": {"accessToken": "not-ours"}},
        }),
    );
    dir
}

#[test]
fn an_adopted_store_is_a_slot_whose_credentials_stay_in_claude_code() {
    let t = Running::start("");
    let dir = claude_dir(&t, ".claude-work", "work");
    let out = adopt(&t, "work", &dir);
    assert_success(&out, "adopt");
    let slot = t.slot_status("work");
    assert_eq!(slot["state"], "active", "{slot}");
    assert_eq!(slot["account"], "work@example.com", "{slot}");
    assert_eq!(
        slot["claude_code_store"].as_str(),
        Some(store_path(&dir).to_str().unwrap()),
        "{slot}"
    );
    assert_eq!(slot["claude_code_dir"].as_str(), dir.to_str(), "{slot}");
    let human = t.env.sessctl(&["status"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("credentials: in Claude Code's store"),
        "{human}"
    );
    // The token handed out is the store's; sessctl's own store holds no copy.
    let token = t.token("work");
    let stored = read_store(&dir)["claudeAiOauth"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_same_token(&token, &stored, "the daemon's token");
    assert!(t.env.secret_lookup("sessctl", "work").is_none());
    let state = crate::state_log::state_and_log(&t.env);
    assert!(state.contains("\"claude_code\""), "{state}");
    assert!(!state.contains(&refresh_token_in(&dir)));
}

/// Logging out a Claude Code-backed slot only stops sessctl looking after it: the login is
/// Claude Code's, so it is neither revoked nor deleted, and the CLI says so plainly rather
/// than warning that the token was "NOT revoked" or that no credentials were held.
#[test]
fn logging_out_a_claude_code_slot_leaves_claude_codes_login_working_and_says_so() {
    let t = Running::start("");
    let dir = claude_dir(&t, ".claude-work", "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    let before = read_store(&dir);
    let out = t.env.sessctl(&["logout", "work"]);
    assert_success(&out, "logout");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("left in Claude Code's store") && stdout.contains(dir.to_str().unwrap()),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        !stdout.contains("NOT revoked") && !stderr.contains("warning"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(read_store(&dir), before, "Claude Code's store was changed");
    let access = before["claudeAiOauth"]["accessToken"].as_str().unwrap();
    assert!(
        token_works(&t.server, access),
        "Claude Code's login was revoked"
    );
    let status = t.env.status_json();
    assert!(status["slots"].as_array().unwrap().is_empty(), "{status}");
}

#[test]
fn adopt_refuses_a_store_without_a_login_a_dir_twice_and_an_account_twice() {
    let t = Running::start("");
    let refused = |slot: &str, dir: &Path, needle: &str| {
        let out = adopt(&t, slot, dir);
        let (code, stderr) = code_and_stderr(&out);
        assert_ne!(
            code,
            Some(0),
            "{slot}: adopt of {} succeeded",
            dir.display()
        );
        assert!(stderr.contains(needle), "{slot}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let missing = t.env.home().join(".claude-none");
    refused("none", &missing, "no credentials file");
    let blanked = claude_dir(&t, ".claude-blank", "blank");
    write_store(
        &blanked,
        &json!({"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0}}),
    );
    refused("blank", &blanked, "blanked");
    let corrupt = t.env.home().join(".claude-corrupt");
    fs::create_dir_all(&corrupt).unwrap();
    fs::write(
        store_path(&corrupt),
        "{\"claudeAiOauth\": {\"refreshToken\": \"secret-x",
    )
    .unwrap();
    refused("corrupt", &corrupt, ".credentials.json");
    let dir = claude_dir(&t, ".claude-work", "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    refused("work2", &dir, "already slot work");
    refused(
        "work",
        &claude_dir(&t, ".claude-other", "other"),
        "already exists",
    );
    refused(
        "again",
        &claude_dir(&t, ".claude-again", "work"),
        "already has slot work",
    );
    assert_eq!(t.env.status_json()["slots"].as_array().unwrap().len(), 1);
}

#[test]
fn a_refresh_lands_in_claude_codes_store_keeping_its_fields_and_mode() {
    let t = Running::start("");
    let dir = claude_dir(&t, ".claude-work", "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    let before = refresh_token_in(&dir);
    let requests = t.token_requests();
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    assert_eq!(t.token_requests(), requests + 1);
    let doc = read_store(&dir);
    let oauth = &doc["claudeAiOauth"];
    assert!(
        oauth["refreshToken"].as_str() != Some(before.as_str()),
        "the store still holds the old refresh token"
    );
    assert_eq!(oauth["subscriptionType"], "max");
    assert_eq!(oauth["rateLimitTier"], "default_claude_max_20x");
    assert_eq!(doc["mcpOAuth"]["some-server"]["accessToken"], "not-ours");
    assert!(oauth["expiresAt"].as_i64().unwrap() > now_ms());
    let mode = fs::metadata(store_path(&dir)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(token_works(
        &t.server,
        oauth["accessToken"].as_str().unwrap()
    ));
    let stored = oauth["accessToken"].as_str().unwrap();
    assert_same_token(&t.token("work"), stored, "the daemon's token");
    assert!(t.env.secret_lookup("sessctl", "work").is_none());
}

/// `node lock_peer.cjs hold DIR`: Claude Code holding its refresh locks, alive.
pub(crate) fn hold_refresh_lock(dir: &Path) -> std::process::Child {
    lock_peer("hold", dir, &[])
}

#[test]
fn a_live_lock_is_waited_for_and_the_holders_rotation_adopted_without_sending() {
    let t = Running::start("");
    let dir = claude_dir(&t, ".claude-work", "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    let mut peer = hold_refresh_lock(&dir);
    let refresh = t.env.sessctl_command(&["refresh", "work"]);
    let requests = t.token_requests();
    let handle = std::thread::spawn(move || {
        let mut refresh = refresh;
        refresh.output().unwrap()
    });
    wait_for(
        "the daemon to wait for the lock",
        Duration::from_secs(20),
        || t.daemon.log().contains("holds Claude Code's refresh lock"),
    );
    // The holder (Claude Code) rotates while the daemon waits, then lets go.
    let rotated = t.server.refresh(&refresh_token_in(&dir));
    let mut doc = read_store(&dir);
    doc["claudeAiOauth"]["accessToken"] = rotated.field("access_token").into();
    doc["claudeAiOauth"]["refreshToken"] = rotated.field("refresh_token").into();
    write_store(&dir, &doc);
    writeln!(peer.stdin.as_mut().unwrap(), "release").unwrap();
    peer.wait().unwrap();
    assert_success(&handle.join().unwrap(), "refresh");
    assert_eq!(
        t.token_requests(),
        requests + 1,
        "the daemon sent a refresh"
    );
    assert_eq!(t.invalid_grants(), 0);
    assert_same_token(
        &t.token("work"),
        rotated.field("access_token"),
        "the daemon's token",
    );
    assert_same_token(
        &refresh_token_in(&dir),
        rotated.field("refresh_token"),
        "the store's refresh token",
    );
}

/// The Claude Code stand-in (`tests/claude-code/cc_standin.cjs`) and the daemon over one
/// config dir through many rotations of short-lived tokens. The daemon refreshes at half the
/// token's lifetime as it read it (at most 12 s before expiry here); the stand-in's 5 minutes
/// are scaled down to 19 s and 2 s on alternate tokens, so on every other token it goes
/// first, and on the others the daemon does: both sides certainly send rotations (a margin
/// drawn at random around the daemon's once let one side win every race of a slow run), and
/// whoever goes second must adopt the other's result under the locks.
/// `SESSCTL_CC_SOAK_SECS` runs it longer (default 60 s).
#[test]
fn claude_code_and_the_daemon_share_a_store_through_many_rotations() {
    let t = Running::start("");
    let ttl = 24;
    t.server.set_access_token_ttl(ttl);
    let dir = claude_dir(&t, ".claude-work", "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    let secs: u64 = std::env::var("SESSCTL_CC_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let base = t.server.base_url();
    let standin = Command::new("node")
        .arg(script("cc_standin.cjs"))
        .args([
            dir.to_str().unwrap(),
            &format!("{base}/token"),
            &format!("{base}/me"),
            crate::support::oauth_server::CLIENT_ID,
            "19000,2000",
            &(secs * 1000).to_string(),
            "0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start node");
    let mut standin = standin;
    let mut daemon_tokens = std::collections::BTreeSet::new();
    // Sampled every half second while the stand-in runs: the daemon's token must work.
    while standin.try_wait().unwrap().is_none() {
        let token = t.token("work");
        assert!(
            token_works(&t.server, &token),
            "the daemon's token stopped working"
        );
        daemon_tokens.insert(token);
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = standin.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stand-in: {summary}");
    let stats: Value = serde_json::from_str(summary.trim()).unwrap();
    assert_eq!(stats["invalid_grants"], 0, "{stats}");
    assert_eq!(stats["bad_tokens"], 0, "{stats}");
    assert_eq!(t.invalid_grants(), 0, "{}", t.daemon.log());
    let refreshes = t.slot_status("work")["refreshes"].as_u64().unwrap();
    eprintln!("stand-in: {stats}; daemon refreshes (sent or adopted): {refreshes}");
    let rotations = stats["refreshes"].as_u64().unwrap() + refreshes;
    assert!(
        rotations >= secs / 16,
        "only {rotations} rotations: {stats}"
    );
    assert!(daemon_tokens.len() >= 2, "the daemon's token never changed");
    // Every token request but the first (the login `claude_dir` made) is a rotation by one
    // of the two: each must have gone first some of the time.
    let standin_sent = stats["refreshes"].as_u64().unwrap();
    let daemon_sent = t.token_requests() - 1 - standin_sent;
    assert!(
        standin_sent > 0 && daemon_sent > 0,
        "one side never refreshed: {stats}, daemon sent {daemon_sent}"
    );
    assert_eq!(t.state("work"), "active");
}

#[test]
fn a_dead_grant_makes_the_slot_inactive_and_leaves_claude_codes_store_alone() {
    let t = Running::start("");
    let dir = t.env.home().join(".claude-work");
    fs::create_dir_all(&dir).unwrap();
    let grant = t.server.grant("work", "work@example.com");
    let reply = t.server.refresh(&grant.refresh_token);
    write_store(
        &dir,
        &json!({"claudeAiOauth": {
            "accessToken": reply.field("access_token"),
            "refreshToken": reply.field("refresh_token"),
            "expiresAt": now_ms() + 3_600_000,
        }}),
    );
    assert_success(&adopt(&t, "work", &dir), "adopt");
    t.server.revoke_grant(&grant.grant_id);
    let before = fs::read(store_path(&dir)).unwrap();
    let out = t.env.sessctl(&["refresh", "work"]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(t.state("work"), "inactive");
    // Claude Code blanks its own store when it meets the dead token; sessctl does not.
    assert_eq!(fs::read(store_path(&dir)).unwrap(), before);
}

#[test]
fn run_and_env_point_claude_code_at_the_slots_config_dir() {
    let t = Running::start("");
    let dir = claude_dir(&t, ".claude work", "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    let out = t.env.sessctl(&["env", "work"]);
    assert_success(&out, "env");
    let line = String::from_utf8(out.stdout).unwrap();
    // The line means what it says to a real shell (the dir has a space in it).
    let echoed = Command::new("sh")
        .arg("-c")
        .arg(format!("{line}\nprintf %s \"$CLAUDE_CONFIG_DIR\""))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&echoed.stdout),
        dir.to_str().unwrap()
    );
    let out = t
        .env
        .sessctl_command(&[
            "run",
            "work",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$CLAUDE_CONFIG_DIR\" \"${CLAUDE_CODE_OAUTH_TOKEN-unset}\"; exit 7",
        ])
        .env("CLAUDE_CODE_OAUTH_TOKEN", "a-fixed-token")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "run passes the command's exit code"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}|unset", dir.display())
    );
    // A slot kept in sessctl's own store has no config dir to point at.
    t.login("own", "own");
    let out = t.env.sessctl(&["env", "own"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("not a Claude Code slot"), "{stderr}");
    let out = t.env.sessctl(&["run", "nope", "--", "true"]);
    assert!(code_and_stderr(&out).1.contains("no slot named"));
}

#[test]
fn a_restarted_daemon_reads_the_slot_from_claude_codes_store_again() {
    let mut t = Running::start("");
    let dir = claude_dir(&t, ".claude-work", "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    t.daemon.kill9();
    // Claude Code rotated while the daemon was down: the new daemon reads what is there.
    let rotated = t.server.refresh(&refresh_token_in(&dir));
    let mut doc = read_store(&dir);
    doc["claudeAiOauth"]["accessToken"] = rotated.field("access_token").into();
    doc["claudeAiOauth"]["refreshToken"] = rotated.field("refresh_token").into();
    write_store(&dir, &doc);
    t.daemon = t.env.start_daemon();
    assert_same_token(
        &t.token("work"),
        rotated.field("access_token"),
        "the daemon's token",
    );
    assert_eq!(
        t.slot_status("work")["claude_code_dir"].as_str(),
        dir.to_str()
    );
    assert_eq!(t.invalid_grants(), 0);
}

#[test]
fn a_login_never_replaces_a_claude_code_slot() {
    let t = Running::start("");
    let dir = claude_dir(&t, ".claude-work", "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    let before = fs::read(store_path(&dir)).unwrap();
    // By name, and by account under another name: both would retire Claude Code's token.
    for typed in ["work", "other"] {
        let grant = t.server.grant("work", "work@example.com");
        let out = t.env.sessctl_stdin(
            &[
                "login",
                typed,
                "--provider",
                "test",
                "--refresh-token-stdin",
            ],
            &grant.refresh_token,
        );
        let (code, stderr) = code_and_stderr(&out);
        assert_ne!(code, Some(0), "{typed}: {stderr}");
        assert!(stderr.contains("Claude Code's login"), "{typed}: {stderr}");
    }
    assert_eq!(fs::read(store_path(&dir)).unwrap(), before);
    let stored = read_store(&dir)["claudeAiOauth"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        token_works(&t.server, &stored),
        "Claude Code's token was revoked"
    );
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    assert_eq!(t.invalid_grants(), 0);
}
