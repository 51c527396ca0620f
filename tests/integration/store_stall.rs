//! A credential store that stops answering (gnome-keyring frozen with SIGSTOP: the real
//! keyring, really frozen, so every Secret Service call hangs until it is let go) or keeps
//! failing (gnome-keyring gone from the bus).

use std::time::Duration;

use serde_json::Value;

use crate::flows::{Running, code_and_stderr, token_works};
use crate::support::wait_for;

/// Long enough for the daemon's backed-off write retries to reach a keyring that answers
/// again; only a broken daemon gets near it.
const STORED_DEADLINE: Duration = Duration::from_secs(60);

/// With the keyring frozen, `token` answers from memory, `refresh` rotates and answers
/// within the daemon's bounded wait (the tokens held as unsaved), and `status` says the
/// store does not answer. Once the keyring runs again, the newest tokens land in it (the
/// write that hung completes late, and the retry of the newer tokens follows it instead of
/// failing as a conflict), and a new daemon refreshes from the store with no reuse.
#[test]
fn a_frozen_keychain_blocks_no_caller_and_loses_no_rotated_token() {
    let mut t = Running::start("");
    let grant = t.login("work", "alice");
    let first = t.token("work");
    t.env.session_bus().pause_keyring();

    let refresh = t.env.sessctl(&["refresh", "work"]);
    assert!(refresh.status.success(), "{:?}", code_and_stderr(&refresh));
    let said = String::from_utf8_lossy(&refresh.stdout);
    assert!(said.contains("held in memory only"), "{said}");
    let held = t.token("work");
    assert!(held != first, "token still hands out the pre-refresh token");
    assert!(token_works(&t.server, &held));
    let status = t.env.status_json();
    let error = status["credential_store_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("did not answer"), "{status}");
    let slot = t.slot_status("work");
    assert_eq!(slot["reason"], "credential_store_unavailable", "{slot}");

    // Still frozen: a further refresh presents the held (newest) refresh token.
    let again = t.env.sessctl(&["refresh", "work"]);
    assert!(again.status.success(), "{:?}", code_and_stderr(&again));
    let newest = t.token("work");
    assert!(
        newest != held,
        "token still hands out the first rotated token"
    );

    t.env.session_bus().resume_keyring();
    wait_for("the held tokens to be stored", STORED_DEADLINE, || {
        t.state("work") == "active"
    });
    assert!(t.env.status_json()["credential_store_error"].is_null());
    let stored: serde_json::Value =
        serde_json::from_str(&t.env.secret_lookup("sessctl", "work").unwrap()).unwrap();
    assert!(
        stored["access_token"] == newest.as_str(),
        "the store does not hold the newest tokens"
    );

    // A new daemon knows only the store: it refreshes from it without reuse.
    t.crash_and_restart();
    let after = t.env.sessctl(&["refresh", "work"]);
    assert!(after.status.success(), "{:?}", code_and_stderr(&after));
    assert!(token_works(&t.server, &t.token("work")));
    assert_eq!(t.invalid_grants(), 0);
    assert!(t.server.grant_exists(&grant.grant_id));
}

/// How long `log` goes on after its first line containing `needle` (by the lines' own
/// timestamps).
fn logged_for_since(log: &str, needle: &str) -> Duration {
    let stamp = |line: &str| {
        line.split_whitespace()
            .next()
            .and_then(|word| chrono::DateTime::parse_from_rfc3339(word).ok())
    };
    let first = log.lines().find(|l| l.contains(needle)).and_then(stamp);
    let last = log.lines().rev().find_map(stamp);
    match (first, last) {
        (Some(first), Some(last)) => (last - first).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// Log lines of `log` at `level` (`WARN`, `INFO`, ...) that contain `needle`.
fn logged(log: &str, level: &str, needle: &str) -> usize {
    let level = format!(" {level} ");
    log.lines()
        .filter(|line| line.contains(&level) && line.contains(needle))
        .count()
}

/// A daemon started while the keyring is gone keeps failing to load the slot: it retries
/// at a backoff (the old daemon re-read in a loop, thousands of times a second), says so
/// once, answers callers with the store error instead of holding them, and says once when
/// the keyring is back.
#[test]
fn a_keychain_that_keeps_failing_is_retried_with_backoff_and_logged_once_per_change() {
    let mut t = Running::start("");
    t.login("work", "alice");
    t.daemon.kill9();
    t.env.session_bus_mut().stop_keyring();
    t.daemon = t.env.start_daemon();
    // Evidence that the daemon kept trying for a while: its log goes on for 3 s past the
    // first failed load (the retries log at debug).
    wait_for("3 s of retries in the log", STORED_DEADLINE, || {
        logged_for_since(&t.daemon.log(), "cannot load credentials") >= Duration::from_secs(3)
    });
    let log = t.daemon.log();
    assert_eq!(logged(&log, "WARN", "cannot load credentials"), 1, "{log}");
    // The store's health line (other start-up steps each say once what the outage costs
    // them: the listing, the journal, logins).
    assert_eq!(
        logged(&log, "WARN", "store::health: credential store unavailable"),
        1,
        "{log}"
    );

    let token = t.env.sessctl(&["token", "work"]);
    let (code, stderr) = code_and_stderr(&token);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("cannot load the credentials"), "{stderr}");

    t.env.session_bus_mut().restart_keyring();
    wait_for("the slot to load", STORED_DEADLINE, || {
        t.state("work") == "active"
    });
    let log = t.daemon.log();
    assert_eq!(
        logged(&log, "INFO", "credential store available again"),
        1,
        "{log}"
    );
    assert!(token_works(&t.server, &t.token("work")));
}

/// The slot's item as the keychain holds it.
fn stored_item(t: &Running) -> Value {
    serde_json::from_str(&t.env.secret_lookup("sessctl", "work").expect("an item")).unwrap()
}

/// The store holds another version of the same login than the daemon read (written behind
/// its back): the refresh that meets it keeps its rotated tokens, the newest of the login,
/// and writes them over it. (The old daemon reloaded the stored copy, whose refresh token
/// the server had just rotated away, and lost the grant at the next refresh.)
#[test]
fn a_refresh_the_store_refuses_keeps_its_rotated_tokens() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    let mut item = stored_item(&t);
    let version = item["version"].as_u64().unwrap();
    item["version"] = Value::from(version + 5);
    t.env.secret_store("sessctl", "work", &item.to_string());

    let refresh = t.env.sessctl(&["refresh", "work"]);
    assert!(refresh.status.success(), "{:?}", code_and_stderr(&refresh));
    let token = t.token("work");
    assert!(token_works(&t.server, &token));
    wait_for("the rotated tokens to be stored", STORED_DEADLINE, || {
        stored_item(&t)["access_token"] == token.as_str()
    });
    assert!(stored_item(&t)["version"].as_u64().unwrap() > version + 5);

    let again = t.env.sessctl(&["refresh", "work"]);
    assert!(again.status.success(), "{:?}", code_and_stderr(&again));
    assert_eq!(t.state("work"), "active");
    assert_eq!(t.invalid_grants(), 0);
    assert!(t.server.grant_exists(&grant.grant_id));
}
