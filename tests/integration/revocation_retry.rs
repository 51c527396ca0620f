//! A revocation that fails for now is kept and retried until it succeeds, across restarts:
//! the real daemon against the real server, whose fault layer makes the revocation endpoint
//! answer 503 or cut the connection. The token waits in the real keychain (`.revoke-<id>`),
//! never in the state file or the log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::flows::{Running, code_and_stderr};
use crate::support::wait_for;

/// Retries at 1 s doubling: a few attempts fit in a test.
const FAST_RETRY: &str = "revocation_retry: 1s\n";
/// No retry before a restart within a test's life.
const SLOW_RETRY: &str = "revocation_retry: 1h\n";
const DEADLINE: Duration = Duration::from_secs(30);

/// `sessctl logout work`, which must succeed and say the token will be revoked later.
fn logout_pending(t: &Running) {
    let out = t.env.sessctl(&["logout", "work"]);
    assert!(out.status.success(), "{:?}", code_and_stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("will be revoked later"), "{stdout}");
}

fn pending(t: &Running) -> Vec<Value> {
    let status = t.env.status_json();
    status["pending_revocations"]
        .as_array()
        .unwrap_or_else(|| panic!("pending_revocations in {status}"))
        .clone()
}

/// No token the server issued is in the state file or the daemon's log.
fn assert_no_token_written(t: &Running) {
    let state = crate::state_log::state_and_log(&t.env);
    let log = t.daemon.log();
    for token in t.server.issued_tokens() {
        assert!(!state.contains(&token), "a token is in the state file");
        assert!(!log.contains(&token), "a token is in the log");
    }
}

/// The one pending revocation, checked; returns its store account.
fn the_pending_revocation(t: &Running) -> String {
    let list = pending(t);
    assert_eq!(list.len(), 1, "{list:?}");
    let entry = &list[0];
    assert_eq!(entry["slot"], "work");
    assert_eq!(entry["provider"], "test");
    assert_eq!(entry["why"], "logout");
    assert!(entry["attempts"].as_u64() >= Some(1), "{entry}");
    let account = format!(".revoke-{}", entry["id"].as_str().expect("an id"));
    assert!(
        t.env.secret_lookup("sessctl", &account).is_some(),
        "the token waits in the keychain"
    );
    account
}

#[test]
fn a_logout_whose_revocation_fails_is_revoked_by_a_retry() {
    let t = Running::start(FAST_RETRY);
    let grant = t.login("work", "alice");
    t.server.push_faults(
        "revocation",
        vec![
            json!({"status": 503}),
            json!({"reset": true}),
            json!({"status": 503}),
        ],
    );
    logout_pending(&t);
    assert!(t.server.grant_exists(&grant.grant_id), "not revoked yet");
    assert!(t.env.secret_lookup("sessctl", "work").is_none());
    let account = the_pending_revocation(&t);
    assert_no_token_written(&t);
    wait_for("a retry to revoke the grant", DEADLINE, || {
        !t.server.grant_exists(&grant.grant_id)
    });
    wait_for("the pending list to empty", DEADLINE, || {
        pending(&t).is_empty()
    });
    assert!(t.env.secret_lookup("sessctl", &account).is_none());
    assert!(t.server.stats().revocations >= 4);
    assert!(t.daemon.log().contains("revoked a kept refresh token"));
    assert_no_token_written(&t);
}

#[test]
fn a_pending_revocation_survives_a_restart_and_is_retried_at_start() {
    let mut t = Running::start(SLOW_RETRY);
    let grant = t.login("work", "alice");
    t.server
        .push_faults("revocation", vec![json!({"status": 503})]);
    logout_pending(&t);
    the_pending_revocation(&t);
    let table = t.env.sessctl(&["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("refresh token of slot work (logout) not revoked yet"),
        "{table}"
    );
    let doctor = t.env.sessctl(&["doctor"]);
    let doctor = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor.contains("1 refresh token(s) still wait to be revoked"),
        "{doctor}"
    );
    // kill -9: the logout answered only once the record was on disk.
    t.crash_and_restart();
    wait_for("the retry at start to revoke the grant", DEADLINE, || {
        !t.server.grant_exists(&grant.grant_id)
    });
    wait_for("the pending list to empty", DEADLINE, || {
        pending(&t).is_empty()
    });
    assert_no_token_written(&t);
}

#[test]
fn a_permanent_refusal_ends_the_revocation_and_is_logged() {
    let t = Running::start(FAST_RETRY);
    t.login("work", "alice");
    t.server.push_faults(
        "revocation",
        vec![json!({"status": 400, "body": {"error": "unsupported_token_type"}})],
    );
    let out = t.env.sessctl(&["logout", "work"]);
    assert!(out.status.success(), "{:?}", code_and_stderr(&out));
    let (_, stderr) = code_and_stderr(&out);
    assert!(stderr.contains("unsupported_token_type"), "{stderr}");
    assert!(pending(&t).is_empty());
    assert!(t.daemon.log().contains("refused to revoke"));
}

#[test]
fn the_grant_of_a_replaced_login_is_revoked_by_a_retry_when_the_first_attempt_fails() {
    let t = Running::start(FAST_RETRY);
    let first = t.login("work", "alice");
    t.server
        .push_faults("revocation", vec![json!({"reset": true})]);
    t.login("work", "alice");
    wait_for(
        "the replaced grant to be revoked by a retry",
        DEADLINE,
        || !t.server.grant_exists(&first.grant_id),
    );
    wait_for("the pending list to empty", DEADLINE, || {
        pending(&t).is_empty()
    });
    assert!(t.daemon.log().contains("revoked a kept refresh token"));
    assert_no_token_written(&t);
}
