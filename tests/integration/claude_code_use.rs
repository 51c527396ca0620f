//! `sessctl use NAME [--claude-code DIR]` against the real daemon, the real test OAuth server
//! (strict rotation: a reused refresh token is `invalid_grant` and kills the grant), the real
//! gnome-keyring and Claude Code's lock protocol (`tests/claude-code/lock_peer.cjs`, the real
//! `proper-lockfile`). Every config dir is in the test's temp HOME, never a real `~/.claude`.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::claude_code_slots::{claude_dir, hold_refresh_lock};
use crate::flows::{Running, assert_success, code_and_stderr, token_works};
use crate::support::claude_code::{
    adopt, assert_same_token, lock_peer, read_store, refresh_token_in, release, write_store,
};
use crate::support::wait_for;

/// The account (`sub`, else `email`) the server says `token` belongs to.
fn account_of(t: &Running, token: &str) -> String {
    let reply = t.server.get_with_bearer("/me", token);
    let body = &reply.body;
    body["email"]
        .as_str()
        .or(body["sub"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Slot `inside`'s login is the one in `dir`'s store and works; slot `outside`'s is in
/// sessctl's store (only there) and works too; each account's token is its own.
fn assert_in_dir(t: &Running, inside: &str, dir: &Path, outside: &str) {
    let doc = read_store(dir);
    let stored = doc["claudeAiOauth"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_same_token(
        &t.token(inside),
        &stored,
        "the token of the slot in the dir",
    );
    assert_eq!(account_of(t, &stored), format!("{inside}@example.com"));
    let status = t.slot_status(inside);
    assert_eq!(status["claude_code_dir"].as_str(), dir.to_str(), "{status}");
    assert_eq!(status["state"], "active", "{status}");
    let status = t.slot_status(outside);
    assert!(status["claude_code_dir"].is_null(), "{status}");
    assert_eq!(status["state"], "active", "{status}");
    assert!(t.env.secret_lookup("sessctl", inside).is_none());
    assert!(t.env.secret_lookup("sessctl", outside).is_some());
    let theirs = t.token(outside);
    assert_eq!(account_of(t, &theirs), format!("{outside}@example.com"));
}

/// Slot `cc` adopted from `~/.claude` (in the test's HOME), and slot `own` logged in to
/// sessctl's store: the two a `use` swaps. Returns the dir.
fn cc_and_own(t: &Running) -> std::path::PathBuf {
    let dir = claude_dir(t, ".claude", "cc");
    assert_success(&adopt(t, "cc", &dir), "adopt");
    t.login("own", "own");
    dir
}

/// `sessctl use own` started while Claude Code (a lock peer) holds its refresh lock in
/// `dir`, once the move waits for that lock: the peer and the `use` in the background.
fn use_own_waiting_for_the_lock(
    t: &Running,
    dir: &Path,
) -> (
    std::process::Child,
    std::thread::JoinHandle<std::process::Output>,
) {
    let peer = hold_refresh_lock(dir);
    let waiting = sessctl_use_in_background(t, "own", dir);
    wait_for(
        "the move to wait for the lock",
        Duration::from_secs(20),
        || t.daemon.log().contains("holds Claude Code's refresh lock"),
    );
    (peer, waiting)
}

fn sessctl_use(t: &Running, slot: &str, dir: &Path) -> std::process::Output {
    t.env
        .sessctl(&["use", slot, "--claude-code", dir.to_str().unwrap()])
}

#[test]
fn use_swaps_two_accounts_through_one_claude_dir_back_and_forth() {
    let t = Running::start("");
    // The default dir, ~/.claude in the test's HOME.
    let dir = cc_and_own(&t);
    for round in 0..3 {
        let out = t.env.sessctl(&["use", "own"]);
        assert_success(&out, &format!("use own, round {round}"));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("slot cc's login moved to sessctl's store"),
            "{said}"
        );
        assert_in_dir(&t, "own", &dir, "cc");
        // The account moved in carries its own fields, not the previous account's.
        assert!(read_store(&dir)["claudeAiOauth"]["subscriptionType"].is_null());
        for slot in ["own", "cc"] {
            assert_success(&t.env.sessctl(&["refresh", slot]), "refresh");
        }
        assert_in_dir(&t, "own", &dir, "cc");
        assert_success(&sessctl_use(&t, "cc", &dir), "use cc");
        assert_in_dir(&t, "cc", &dir, "own");
        let doc = read_store(&dir);
        assert_eq!(doc["claudeAiOauth"]["subscriptionType"], "max", "{round}");
        assert_eq!(
            doc["claudeAiOauth"]["rateLimitTier"],
            "default_claude_max_20x"
        );
        assert_eq!(doc["mcpOAuth"]["some-server"]["accessToken"], "not-ours");
        for slot in ["own", "cc"] {
            assert_success(&t.env.sessctl(&["refresh", slot]), "refresh");
        }
    }
    let again = sessctl_use(&t, "cc", &dir);
    assert_success(&again, "use cc again");
    assert!(String::from_utf8_lossy(&again.stdout).contains("already"));
    assert_eq!(t.invalid_grants(), 0, "{}", t.daemon.log());
    let state = crate::state_log::state_and_log(&t.env);
    assert!(
        !state.contains(&refresh_token_in(&dir)),
        "a token in the state file"
    );
}

#[test]
fn the_account_moved_out_is_refreshed_from_sessctls_store_on_schedule() {
    let t = Running::start("");
    t.server.set_access_token_ttl(40);
    let dir = claude_dir(&t, ".claude-main", "cc");
    assert_success(&adopt(&t, "cc", &dir), "adopt");
    t.login("own", "own");
    assert_success(&sessctl_use(&t, "own", &dir), "use own");
    let before = t.slot_status("cc")["refreshes"].as_u64().unwrap();
    // Two refreshes of 40 s tokens take about 40 s; the deadline leaves a loaded 2-core
    // machine room (a 60 s one once ran out in CI).
    wait_for(
        "the daemon to refresh the moved-out account on its own",
        Duration::from_secs(150),
        || t.slot_status("cc")["refreshes"].as_u64().unwrap() >= before + 2,
    );
    assert_in_dir(&t, "own", &dir, "cc");
    assert_eq!(t.invalid_grants(), 0);
}

#[test]
fn use_refuses_what_it_cannot_move_and_changes_nothing() {
    let t = Running::start("");
    let refused = |slot: &str, dir: &Path, code: i32, needle: &str| {
        // Without the harness's 30 s deadline: a held lock is waited for that long.
        let out = (t.env)
            .sessctl_command(&["use", slot, "--claude-code", dir.to_str().unwrap()])
            .output()
            .unwrap();
        let (got, stderr) = code_and_stderr(&out);
        assert_eq!(got, Some(code), "{slot}: {stderr}");
        assert!(stderr.contains(needle), "{slot}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let stranger = claude_dir(&t, ".claude", "stranger");
    let before = std::fs::read(stranger.join(".credentials.json")).unwrap();
    t.login("own", "own");
    // Slots of provider `test` live in Claude Code stores (adopted), so it is Claude's here.
    let other = claude_dir(&t, ".claude-other", "other");
    assert_success(&adopt(&t, "other", &other), "adopt");
    refused("nope", &stranger, 1, "no slot named");
    // A login sessctl does not know is never overwritten: adopt it first.
    refused("own", &stranger, 7, "sessctl adopt SOMENAME --claude-code");
    assert_eq!(
        std::fs::read(stranger.join(".credentials.json")).unwrap(),
        before
    );
    assert!(t.env.secret_lookup("sessctl", "own").is_some());
    assert!(t.slot_status("own")["claude_code_dir"].is_null());
    // An inactive slot needs a login first.
    let dead = t.login("dead", "dead");
    t.server.revoke_grant(&dead.grant_id);
    assert_ne!(t.env.sessctl(&["refresh", "dead"]).status.code(), Some(0));
    refused("dead", &stranger, 4, "needs a new login");
    // A slot kept in another Claude Code store is started there instead.
    refused("other", &stranger, 1, "sessctl run other -- claude");
    // A live Claude Code lock: waited for, then a clear error, nothing changed.
    let cc = claude_dir(&t, ".claude-cc", "cc");
    assert_success(&adopt(&t, "cc", &cc), "adopt");
    let before = std::fs::read(cc.join(".credentials.json")).unwrap();
    let peer = hold_refresh_lock(&cc);
    let moving = sessctl_use_in_background(&t, "own", &cc);
    let waiting = format!("holds Claude Code's refresh lock in {}", cc.display());
    wait_for(
        "the move to wait for the lock",
        Duration::from_secs(20),
        || t.daemon.log().contains(&waiting),
    );
    // A refresh asked for meanwhile waits for the move: one request per grant in flight.
    let mut refresh = t.env.sessctl_command(&["refresh", "own"]);
    let refreshing = std::thread::spawn(move || refresh.output().unwrap());
    let (code, stderr) = code_and_stderr(&moving.join().unwrap());
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stderr.contains("Nothing was changed"), "{stderr}");
    assert_success(
        &refreshing.join().unwrap(),
        "refresh asked for during the move",
    );
    let log = t.daemon.log();
    let (called_off, refreshed) = (log.rfind("`use` refused"), log.find("refresh slot=\"own\""));
    assert!(
        called_off.is_some() && refreshed > called_off,
        "slot own was refreshed while its move ran"
    );
    release(peer);
    assert_eq!(std::fs::read(cc.join(".credentials.json")).unwrap(), before);
    assert!(t.env.secret_lookup("sessctl", "cc").is_none());
    for slot in ["own", "cc", "other"] {
        assert_success(&t.env.sessctl(&["refresh", slot]), "refresh");
    }
    assert_eq!(t.invalid_grants(), 1, "only the revoked grant's refresh");
}

#[test]
fn use_moves_into_a_missing_or_blanked_store_with_nothing_to_move_out() {
    let t = Running::start("");
    t.login("own", "own");
    t.login("two", "two");
    // Slots of provider `test` live in Claude Code stores (adopted), so it is Claude's here.
    let cc = claude_dir(&t, ".claude-cc", "cc");
    assert_success(&adopt(&t, "cc", &cc), "adopt");
    let fresh = t.env.home().join(".claude-new");
    assert_success(&sessctl_use(&t, "own", &fresh), "use into a new dir");
    let doc = read_store(&fresh);
    let stored = doc["claudeAiOauth"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_same_token(&t.token("own"), &stored, "own's token");
    assert!(token_works(&t.server, &stored));
    // Claude Code blanks its store when the grant dies: the slot there has no login left.
    let mut blank = read_store(&fresh);
    blank["claudeAiOauth"]["accessToken"] = json!("");
    blank["claudeAiOauth"]["refreshToken"] = json!("");
    write_store(&fresh, &blank);
    assert_success(&sessctl_use(&t, "two", &fresh), "use into a blanked store");
    assert_eq!(account_of(&t, &t.token("two")), "two@example.com");
    let own = t.slot_status("own");
    assert!(own["claude_code_dir"].is_null(), "{own}");
    assert_eq!(own["state"], "inactive", "{own}");
    assert_eq!(t.invalid_grants(), 0);
}

/// `node lock_peer.cjs hold-write DIR`: Claude Code writing its store, alive.
fn hold_write_lock(dir: &Path) -> std::process::Child {
    lock_peer("hold-write", dir, &[])
}

/// A `use` killed (-9) while it waits for Claude Code's refresh lock, before it wrote
/// anything; Claude Code rotates its login while the daemon is down. The restarted daemon
/// finishes the move with the rotated tokens: each lineage ends in exactly one store.
#[test]
fn a_use_killed_before_its_first_write_is_finished_with_claude_codes_newest_tokens() {
    let mut t = Running::start("");
    let dir = cc_and_own(&t);
    let (peer, waiting) = use_own_waiting_for_the_lock(&t, &dir);
    t.daemon.kill9();
    let _ = waiting.join();
    let rotated = t.server.refresh(&refresh_token_in(&dir));
    let mut doc = read_store(&dir);
    doc["claudeAiOauth"]["accessToken"] = rotated.field("access_token").into();
    doc["claudeAiOauth"]["refreshToken"] = rotated.field("refresh_token").into();
    write_store(&dir, &doc);
    release(peer);
    t.daemon = t.env.start_daemon();
    wait_for("the move to finish", Duration::from_secs(30), || {
        t.slot_status("own")["claude_code_dir"].as_str() == dir.to_str()
    });
    assert_in_dir(&t, "own", &dir, "cc");
    assert_same_token(&t.token("cc"), rotated.field("access_token"), "cc's token");
    // Nothing was copied before the crash: the rotated tokens alone say what to do.
    assert!(
        !t.daemon
            .log()
            .contains("the provider says whose login it holds")
    );
    for slot in ["own", "cc"] {
        assert_success(&t.env.sessctl(&["refresh", slot]), "refresh");
    }
    assert_in_dir(&t, "own", &dir, "cc");
    assert_eq!(t.invalid_grants(), 0, "{}", t.daemon.log());
}

/// A `use` killed (-9) after it put the outgoing login into sessctl's store and while it
/// waits for Claude Code's storage-write lock to write the incoming one; Claude Code then
/// rotates its login (the copy is stale, and the tokens alone no longer say whose login the
/// store holds: the provider's userinfo does). The restarted daemon finishes the move with
/// the rotated tokens, and no login is presented from a copy the other store owns.
#[test]
fn a_use_killed_between_its_two_writes_is_finished_after_a_restart() {
    let mut t = Running::start("");
    let dir = cc_and_own(&t);
    let peer = hold_write_lock(&dir);
    let waiting = sessctl_use_in_background(&t, "own", &dir);
    wait_for(
        "the outgoing login to reach sessctl's store",
        Duration::from_secs(20),
        || t.env.secret_lookup("sessctl", "cc").is_some(),
    );
    t.daemon.kill9();
    let _ = waiting.join();
    // Both stores hold cc's login now; Claude Code's is still the owner, and rotates it.
    assert!(t.env.secret_lookup("sessctl", "own").is_some());
    let rotated = t.server.refresh(&refresh_token_in(&dir));
    let mut doc = read_store(&dir);
    doc["claudeAiOauth"]["accessToken"] = rotated.field("access_token").into();
    doc["claudeAiOauth"]["refreshToken"] = rotated.field("refresh_token").into();
    write_store(&dir, &doc);
    release(peer);
    t.daemon = t.env.start_daemon();
    // The killed daemon's refresh locks are left behind: stale (and taken) after 60 s.
    wait_for("the move to finish", Duration::from_secs(150), || {
        t.slot_status("own")["claude_code_dir"].as_str() == dir.to_str()
    });
    assert_in_dir(&t, "own", &dir, "cc");
    assert_same_token(&t.token("cc"), rotated.field("access_token"), "cc's token");
    assert!(
        t.daemon
            .log()
            .contains("the provider says whose login it holds")
    );
    for slot in ["own", "cc"] {
        assert_success(&t.env.sessctl(&["refresh", slot]), "refresh");
    }
    assert_success(&sessctl_use(&t, "cc", &dir), "use cc");
    assert_in_dir(&t, "cc", &dir, "own");
    assert_eq!(t.invalid_grants(), 0, "{}", t.daemon.log());
}

fn sessctl_use_in_background(
    t: &Running,
    slot: &str,
    dir: &Path,
) -> std::thread::JoinHandle<std::process::Output> {
    let mut cmd = t
        .env
        .sessctl_command(&["use", slot, "--claude-code", dir.to_str().unwrap()]);
    std::thread::spawn(move || cmd.output().expect("run sessctl use"))
}

/// A refresh of either slot already sent when `use` arrives: the move waits for it and
/// moves its result (one request per grant in flight), so no spent token lands anywhere.
#[test]
fn a_use_waits_for_a_refresh_in_flight_of_either_slot_and_moves_its_result() {
    let t = Running::start("");
    let dir = cc_and_own(&t);
    for (refreshing, moving, outside) in [("own", "own", "cc"), ("own", "cc", "own")] {
        let requests = t.token_requests();
        let refresh = t.refresh_in_flight(refreshing, 3000);
        assert_success(&sessctl_use(&t, moving, &dir), "use");
        assert_success(&refresh.join().unwrap(), "refresh");
        assert_eq!(
            t.token_requests(),
            requests + 1,
            "the move sent a token request"
        );
        assert_in_dir(&t, moving, &dir, outside);
        for slot in ["own", "cc"] {
            assert_success(&t.env.sessctl(&["refresh", slot]), "refresh");
        }
    }
    assert_eq!(t.invalid_grants(), 0, "{}", t.daemon.log());
}

/// An account of a provider Claude Code does not use (neither `claude` nor the provider of
/// an adopted slot) never goes into Claude Code's store.
#[test]
fn use_refuses_an_account_of_a_provider_claude_code_does_not_use() {
    let env = crate::support::env::TestEnv::new();
    let server = crate::support::oauth_server::OAuthServer::start();
    let base = server.base_url().to_owned();
    let config = crate::flows::config_yaml(&server, "", "")
        + &format!(
            "  other:\n    token_url: {base}/token\n    client_id: sessctl-test\n    userinfo_url: {base}/me\n    scopes: [openid, email, offline_access]\n"
        );
    env.write_config(&config);
    let daemon = env.start_daemon();
    let t = Running {
        server,
        daemon,
        env,
    };
    let dir = claude_dir(&t, ".claude", "cc");
    assert_success(&adopt(&t, "cc", &dir), "adopt");
    let grant = t.server.grant("alt", "alt@example.com");
    let out = t.env.sessctl_stdin(
        &[
            "login",
            "alt",
            "--provider",
            "other",
            "--refresh-token-stdin",
        ],
        &grant.refresh_token,
    );
    assert_success(&out, "login");
    let before = std::fs::read(dir.join(".credentials.json")).unwrap();
    let (code, stderr) = code_and_stderr(&sessctl_use(&t, "alt", &dir));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Claude accounts only"), "{stderr}");
    assert_eq!(
        std::fs::read(dir.join(".credentials.json")).unwrap(),
        before
    );
    assert!(t.env.secret_lookup("sessctl", "alt").is_some());
}

/// A `use` waiting for Claude Code's refresh lock is shown by `status` (text, and
/// `moving` in `status --json`) until it ends; then `moving` is null again.
#[test]
fn status_shows_a_use_in_progress_until_it_ends() {
    let t = Running::start("");
    let dir = cc_and_own(&t);
    let status = |args: &[&str]| String::from_utf8(t.env.sessctl(args).stdout).unwrap();
    let moving = || {
        let json: serde_json::Value = serde_json::from_str(&status(&["status", "--json"])).unwrap();
        json["moving"].clone()
    };
    assert!(moving().is_null());

    let (peer, waiting) = use_own_waiting_for_the_lock(&t, &dir);
    let shown = moving();
    assert_eq!(shown["slot"], "own", "{shown}");
    assert_eq!(shown["dir"].as_str(), dir.to_str(), "{shown}");
    assert_eq!(shown["outgoing"], "cc", "{shown}");
    assert_eq!(shown["attempts"], 0, "{shown}");
    let text = status(&["status"]);
    let line = format!(
        "use in progress: slot own's login moving into Claude Code's store in {}, slot cc's login out of it into sessctl's store",
        dir.display()
    );
    assert!(text.contains(&line), "{text}");

    release(peer);
    assert_success(&waiting.join().unwrap(), "use");
    assert!(moving().is_null());
    assert!(!status(&["status"]).contains("use in progress"));
    assert_in_dir(&t, "own", &dir, "cc");
}
