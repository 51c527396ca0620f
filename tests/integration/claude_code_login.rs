//! `sessctl login NAME --provider claude --claude-code DIR`: a browser login (the real test
//! server's pages, played by `UserAgent`) that lands in Claude Code's store for DIR, with
//! the built-in `claude` provider's shapes pointed at the test server (as in
//! `claude_shapes`). Every DIR is in the test's temp HOME.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::claude_code_slots::claude_dir;
use crate::claude_shapes::claude_pointed_at;
use crate::flows::{Running, assert_success, code_and_stderr, token_works};
use crate::login_flows::{LOGIN_DEADLINE, login_in_background, visit};
use crate::support::claude_code::{
    access_token_in, assert_same_token, now_ms, read_store, refresh_token_in, script, store_path,
    write_store,
};
use crate::support::{OAuthServer, TestEnv, UserAgent};

/// The real server, the `claude` provider pointed at it (plus `provider_extra` keys), a
/// running daemon.
pub(crate) fn start_claude(provider_extra: &str) -> Running {
    let env = TestEnv::new();
    let server = OAuthServer::start();
    env.write_config(&format!("{}{provider_extra}", claude_pointed_at(&server)));
    let daemon = env.start_daemon();
    Running {
        server,
        daemon,
        env,
    }
}

/// Runs `sessctl ARGS` as a browser login, the user logging in as `account`.
pub(crate) fn browser_login(t: &Running, args: &[&str], account: &str) -> Output {
    let (login, url) = login_in_background(t, args);
    let redirect = UserAgent::new(t.server.base_url()).authorize(&url, account);
    let _ = visit(&redirect);
    login.wait(LOGIN_DEADLINE)
}

fn login_into(t: &Running, slot: &str, dir: &Path, account: &str) -> Output {
    let args = [
        "login",
        slot,
        "--provider",
        "claude",
        "--claude-code",
        dir.to_str().unwrap(),
    ];
    browser_login(t, &args, account)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// No file of sessctl's (state, journal, logs, cache, config) holds `token`.
fn assert_nowhere_but_the_store(t: &Running, token: &str) {
    let env = &t.env;
    let mut dirs = vec![
        env.state_dir(),
        env.data_dir(),
        env.cache_dir(),
        env.config_dir(),
        env.runtime_dir(),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(token), "{} holds the token", path.display());
            }
        }
    }
}

#[test]
fn a_login_into_a_new_dir_makes_a_store_claude_code_uses_and_the_daemon_refreshes() {
    let t = start_claude("");
    t.server.add_account("alice", "alice@example.com");
    let dir = t.env.home().join(".claude-alice");
    let out = login_into(&t, "alice", &dir, "alice");
    assert_success(&out, "login");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "its credentials are in Claude Code's store in {}",
            dir.display()
        )),
        "{said}"
    );

    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&store_path(&dir)), 0o600);
    let oauth = read_store(&dir)["claudeAiOauth"].clone();
    let mut keys: Vec<&str> = oauth
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "accessToken",
            "expiresAt",
            "rateLimitTier",
            "refreshToken",
            "scopes",
            "subscriptionType"
        ]
    );
    assert!(
        oauth["expiresAt"].as_i64().unwrap() > now_ms(),
        "expiresAt in ms"
    );
    assert!(
        oauth["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("user:inference"))
    );
    assert_eq!(oauth["subscriptionType"], Value::Null);
    assert!(token_works(&t.server, &access_token_in(&dir)));

    let slot = t.slot_status("alice");
    assert_eq!(slot["state"], "active", "{slot}");
    assert_eq!(slot["claude_code_dir"].as_str(), dir.to_str(), "{slot}");
    // The refresh token is only in Claude Code's store.
    assert!(t.env.secret_lookup("sessctl", "alice").is_none());
    assert_nowhere_but_the_store(&t, &refresh_token_in(&dir));

    // Claude Code (the stand-in, its algorithm read from the bundle) uses the store: it
    // refreshes at once (threshold far beyond the lifetime) for a second and a half.
    let base = t.server.base_url();
    let out = Command::new("node")
        .arg(script("cc_standin.cjs"))
        .args([
            dir.to_str().unwrap(),
            &format!("{base}/token"),
            &format!("{base}/me"),
            crate::support::oauth_server::CLIENT_ID,
            "1000000000",
            "1500",
        ])
        .stdout(Stdio::piped())
        .output()
        .expect("run the Claude Code stand-in");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stand-in: {summary}");
    let stats: Value = serde_json::from_str(summary.trim()).unwrap();
    assert!(stats["refreshes"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["bad_tokens"], 0, "{stats}");
    // Then the daemon refreshes under the locks from what Claude Code left: no reuse.
    assert_success(&t.env.sessctl(&["refresh", "alice"]), "refresh");
    assert_same_token(
        &t.token("alice"),
        &access_token_in(&dir),
        "the daemon's token",
    );
    assert!(token_works(&t.server, &t.token("alice")));
    assert_eq!(t.invalid_grants(), 0, "{}", t.daemon.log());
}

#[test]
fn logging_in_again_replaces_the_slots_own_login_and_revokes_the_old_one() {
    let t = start_claude("");
    t.server.add_account("alice", "alice@example.com");
    let dir = t.env.home().join(".claude-alice");
    assert_success(&login_into(&t, "alice", &dir, "alice"), "login");
    // Claude Code rotates the login before the slot looks again: still the slot's own.
    let rotated = t.server.refresh_json(&refresh_token_in(&dir));
    let mut doc = read_store(&dir);
    doc["claudeAiOauth"]["accessToken"] = rotated.field("access_token").into();
    doc["claudeAiOauth"]["refreshToken"] = rotated.field("refresh_token").into();
    write_store(&dir, &doc);
    let old = access_token_in(&dir);
    // A plain login of the slot goes into its own dir.
    let out = browser_login(&t, &["login", "alice", "--provider", "claude"], "alice");
    assert_success(&out, "re-login");
    assert!(String::from_utf8_lossy(&out.stdout).contains("updated slot alice"));
    let new = access_token_in(&dir);
    assert!(new != old, "the store still holds the old login");
    assert!(token_works(&t.server, &new));
    crate::support::wait_for("the replaced grant to be revoked", LOGIN_DEADLINE, || {
        !token_works(&t.server, &old)
    });
    assert_same_token(&t.token("alice"), &new, "the daemon's token");
    assert_eq!(
        t.slot_status("alice")["claude_code_dir"].as_str(),
        dir.to_str()
    );
    assert_eq!(t.invalid_grants(), 0);
}

/// `sessctl login ... --claude-code DIR` refused before any browser opens.
fn refused_at_begin(t: &Running, slot: &str, dir: &Path) -> String {
    let out = t.env.sessctl(&[
        "login",
        slot,
        "--provider",
        "claude",
        "--claude-code",
        dir.to_str().unwrap(),
        "--no-browser",
        "--timeout",
        "5s",
    ]);
    let (code, stderr) = code_and_stderr(&out);
    assert_ne!(code, Some(0), "{stderr}");
    stderr
}

#[test]
fn a_login_never_puts_an_account_in_two_stores_nor_replaces_another_login() {
    let t = start_claude("");
    t.server.add_account("alice", "alice@example.com");
    // A slot kept in sessctl's own store.
    t.server.add_account("own", "own@example.com");
    let out = browser_login(&t, &["login", "own", "--provider", "claude"], "own");
    assert_success(&out, "keychain login");
    let fresh = t.env.home().join(".claude-new");
    let stderr = refused_at_begin(&t, "own", &fresh);
    assert!(
        stderr.contains("sessctl's own credential store"),
        "{stderr}"
    );
    assert!(
        !fresh.exists(),
        "a refused login created {}",
        fresh.display()
    );
    // Another slot's dir: refused, naming it.
    let work = claude_dir(&t, ".claude-work", "work");
    let out = t.env.sessctl(&[
        "adopt",
        "work",
        "--claude-code",
        work.to_str().unwrap(),
        "--provider",
        "claude",
    ]);
    assert_success(&out, "adopt");
    let stderr = refused_at_begin(&t, "other", &work);
    assert!(stderr.contains("is already slot work"), "{stderr}");
    // A piped refresh token cannot go into Claude Code's store.
    let out = t.env.sessctl_stdin(
        &[
            "login",
            "x",
            "--provider",
            "claude",
            "--claude-code",
            "--refresh-token-stdin",
        ],
        "token",
    );
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    // A dir holding a live login sessctl does not know: left alone, the new grant revoked.
    let stranger = claude_dir(&t, ".claude-stranger", "stranger");
    let before = fs::read(store_path(&stranger)).unwrap();
    let out = login_into(&t, "alice", &stranger, "alice");
    let (code, stderr) = code_and_stderr(&out);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("cannot identify"), "{stderr}");
    assert!(stderr.contains("sessctl adopt"), "{stderr}");
    assert_eq!(fs::read(store_path(&stranger)).unwrap(), before);
    assert!(token_works(&t.server, &access_token_in(&stranger)));
    assert!(
        t.env.status_json()["slots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "alice")
    );
    assert_eq!(t.invalid_grants(), 0);
}

#[test]
fn a_blanked_store_takes_the_new_login_and_keeps_its_other_fields() {
    let t = start_claude("");
    t.server.add_account("alice", "alice@example.com");
    let dir = t.env.home().join(".claude-alice");
    fs::create_dir_all(&dir).unwrap();
    write_store(
        &dir,
        &json!({
            "claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": null,
                "subscriptionType": "pro", "accountUuid": "someone-else"},
            "mcpOAuth": {"srv": {"accessToken": "not-ours"}},
        }),
    );
    assert_success(&login_into(&t, "alice", &dir, "alice"), "login");
    let doc = read_store(&dir);
    assert_eq!(doc["mcpOAuth"], json!({"srv": {"accessToken": "not-ours"}}));
    // The blanked login's own fields were another login's: replaced whole.
    assert_eq!(doc["claudeAiOauth"]["accountUuid"], Value::Null);
    assert!(token_works(&t.server, &access_token_in(&dir)));
    assert_eq!(t.state("alice"), "active");
}

/// `--claude-code` without a DIR means `~/.claude` (here the test's HOME), for `login` and
/// for `adopt` (whose flag clap used to refuse without a value).
#[test]
fn claude_code_without_a_dir_means_the_default_config_dir() {
    let adopting = Running::start("");
    claude_dir(&adopting, ".claude", "work");
    let out = adopting
        .env
        .sessctl(&["adopt", "work", "--claude-code", "--provider", "test"]);
    assert_success(&out, "adopt without a DIR");
    assert_eq!(
        adopting.slot_status("work")["claude_code_dir"].as_str(),
        adopting.env.home().join(".claude").to_str()
    );

    let t = start_claude("");
    t.server.add_account("alice", "alice@example.com");
    let args = ["login", "alice", "--provider", "claude", "--claude-code"];
    assert_success(&browser_login(&t, &args, "alice"), "login");
    let default = t.env.home().join(".claude");
    assert_eq!(
        t.slot_status("alice")["claude_code_dir"].as_str(),
        default.to_str()
    );
    assert!(token_works(&t.server, &access_token_in(&default)));
}
