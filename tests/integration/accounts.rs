//! One slot per account: a login finds its account's slot whatever name was typed, updates
//! it in place (reactivating it), revokes the grant it replaced, refuses a name that holds
//! another account, and of two racing logins keeps the one that finished last and tells the
//! other.

use std::process::Output;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::flows::{Running, assert_success, code_and_stderr, token_works};
use crate::support::process::output_with_deadline;
use crate::support::{Grant, wait_for};

/// Generous: every wait here ends as soon as its condition holds.
const DEADLINE: Duration = Duration::from_secs(30);

/// `sessctl login SLOT` with `grant`'s refresh token; returns the output whatever it is.
fn login_with(t: &Running, slot: &str, grant: &Grant) -> Output {
    t.env.sessctl_stdin(
        &["login", slot, "--provider", "test", "--refresh-token-stdin"],
        &grant.refresh_token,
    )
}

/// The same, in the background.
fn login_in_background(t: &Running, slot: &str, grant: &Grant) -> JoinHandle<Output> {
    let cmd =
        t.env
            .sessctl_command(&["login", slot, "--provider", "test", "--refresh-token-stdin"]);
    let token = grant.refresh_token.clone();
    std::thread::spawn(move || {
        output_with_deadline(cmd, Some(token.as_bytes()), DEADLINE * 2, "sessctl login")
    })
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn slot_names(t: &Running) -> Vec<String> {
    t.env.status_json()["slots"]
        .as_array()
        .expect("slots array")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The keychain item's tokens for `slot`.
fn stored(t: &Running, slot: &str) -> serde_json::Value {
    let item = t
        .env
        .secret_lookup("sessctl", slot)
        .unwrap_or_else(|| panic!("no keychain item for slot {slot}"));
    serde_json::from_str(&item).expect("item is JSON")
}

fn wait_until_revoked(t: &Running, grant: &Grant, what: &str) {
    wait_for(what, DEADLINE, || !t.server.grant_exists(&grant.grant_id));
}

#[test]
fn one_account_logged_in_under_two_names_leaves_one_slot() {
    let t = Running::start("");
    let first = t.login("work", "alice");
    let second = t.server.grant("alice", "alice@example.com");
    let out = login_with(&t, "personal", &second);
    assert_success(&out, "second login");
    assert_eq!(
        stdout(&out).trim(),
        "account alice@example.com already has slot work; updated it (no slot personal created)"
    );
    assert_eq!(slot_names(&t), ["work"]);
    assert!(t.env.secret_lookup("sessctl", "personal").is_none());
    // The slot holds the second login; the first one's grant is revoked, not orphaned.
    let token = t.token("work");
    assert_eq!(stored(&t, "work")["access_token"], token.as_str());
    wait_until_revoked(&t, &first, "the replaced grant to be revoked");
    assert!(t.server.grant_exists(&second.grant_id));
    assert!(token_works(&t.server, &token));
}

#[test]
fn email_case_and_whitespace_do_not_make_a_second_slot() {
    let t = Running::start("");
    // Two server accounts (two subjects) whose e-mails differ only in case and spacing: the
    // e-mail decides, so they are one sessctl account.
    let first = t.server.grant("alice-1", "Alice@Example.com");
    assert_success(&login_with(&t, "work", &first), "first login");
    let second = t.server.grant("alice-2", "  alice@EXAMPLE.com ");
    let out = login_with(&t, "other", &second);
    assert_success(&out, "second login");
    assert!(
        stdout(&out).contains("already has slot work"),
        "{}",
        stdout(&out)
    );
    assert_eq!(slot_names(&t), ["work"]);
}

#[test]
fn a_login_whose_email_cannot_be_learned_finds_its_slot_by_subject() {
    let t = Running::start("");
    t.login("work", "alice");
    // The userinfo endpoint fails (an injected fault: the real server cannot be told to),
    // so only the id_token's subject names the account.
    t.server
        .push_faults("userinfo", vec![serde_json::json!({"status": 500})]);
    let again = t.server.grant("alice", "alice@example.com");
    let out = login_with(&t, "personal", &again);
    assert_success(&out, "login without an e-mail");
    assert!(t.daemon.log().contains("could not learn the account"));
    assert!(
        stdout(&out).contains("account alice@example.com already has slot work"),
        "{}",
        stdout(&out)
    );
    assert_eq!(slot_names(&t), ["work"]);
    assert_eq!(t.slot_status("work")["account"], "alice@example.com");
}

#[test]
fn logging_in_again_to_an_inactive_slot_makes_it_active_and_it_refreshes_again() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    t.server.revoke_grant(&grant.grant_id);
    let (code, _) = code_and_stderr(&t.env.sessctl(&["refresh", "work"]));
    assert_eq!(code, Some(4), "a revoked grant needs a new login");
    assert_eq!(t.state("work"), "inactive");
    assert_eq!(t.env.status_json()["all_inactive"], true);

    let again = t.server.grant("alice", "alice@example.com");
    let out = login_with(&t, "work", &again);
    assert_success(&out, "re-login");
    assert_eq!(
        stdout(&out).trim(),
        "updated slot work (alice@example.com); it was inactive and is active again"
    );
    let slot = t.slot_status("work");
    assert_eq!(slot["state"], "active");
    assert_eq!(slot["reason"], serde_json::Value::Null);
    assert!(
        slot["next_refresh_at"].is_string(),
        "schedule restarted: {slot}"
    );
    assert_eq!(t.env.status_json()["all_inactive"], false);
    assert_success(
        &t.env.sessctl(&["refresh", "work"]),
        "refresh after re-login",
    );
    assert_eq!(t.slot_status("work")["refreshes"], 1);
    assert!(token_works(&t.server, &t.token("work")));
}

#[test]
fn a_relogin_revokes_the_grant_it_replaced() {
    let t = Running::start("");
    let first = t.login("work", "alice");
    let second = t.login("work", "alice");
    wait_until_revoked(&t, &first, "the replaced grant to be revoked");
    assert!(t.server.grant_exists(&second.grant_id));
    assert!(token_works(&t.server, &t.token("work")));
    assert!(
        t.daemon
            .log()
            .contains("revoked the refresh token of a replaced login")
    );
}

/// With the keychain gone, a re-login is answered once its tokens are in the write-ahead
/// journal: durable (the next start replays them over the old item), so the grant it
/// replaces is revoked then; the slot is degraded until the keychain takes them.
#[test]
fn a_relogin_the_keychain_cannot_take_yet_is_journaled_and_stored_once_it_can() {
    let mut t = Running::start("");
    let first = t.login("work", "alice");
    t.env.session_bus_mut().stop_keyring();
    let second = t.server.grant("alice", "alice@example.com");
    let out = login_with(&t, "work", &second);
    assert_success(&out, "re-login");
    let (_, stderr) = code_and_stderr(&out);
    assert!(!stderr.contains("could not be stored yet"), "{stderr}");
    wait_until_revoked(
        &t,
        &first,
        "the replaced grant to be revoked once journaled",
    );
    wait_for(
        "the failed keychain write to degrade the slot",
        DEADLINE,
        || t.state("work") == "degraded",
    );
    t.env.session_bus_mut().restart_keyring();
    wait_for(
        "the new login to be stored",
        Duration::from_secs(60),
        || t.state("work") == "active",
    );
    assert_eq!(stored(&t, "work")["access_token"], t.token("work").as_str());
    assert!(t.server.grant_exists(&second.grant_id));
}

#[test]
fn a_name_holding_another_account_is_refused_and_nothing_is_lost() {
    let t = Running::start("");
    t.login("work", "alice");
    let before = stored(&t, "work");
    let bob = t.server.grant("bob", "bob@example.com");
    let out = login_with(&t, "work", &bob);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(1), "{stderr}");
    for part in [
        "alice@example.com",
        "bob@example.com",
        "sessctl logout work",
    ] {
        assert!(stderr.contains(part), "{part:?} not in: {stderr}");
    }
    // Alice's slot is untouched; bob's new grant is not left alive.
    assert_eq!(t.slot_status("work")["account"], "alice@example.com");
    assert_eq!(stored(&t, "work"), before);
    assert!(token_works(&t.server, &t.token("work")));
    wait_until_revoked(&t, &bob, "the refused login's grant to be revoked");
    assert_eq!(slot_names(&t), ["work"]);
}

#[test]
fn of_two_racing_logins_the_last_to_finish_wins_and_the_other_is_replaced() {
    let t = Running::start("");
    let early = t.server.grant("alice", "alice@example.com");
    let late = t.server.grant("alice", "alice@example.com");
    // Both token exchanges are held at the server, `early` arriving first.
    t.server.hold("token", true);
    let early_login = login_in_background(&t, "work", &early);
    wait_for("the first exchange to be held", DEADLINE, || {
        t.server.stats().holding("token") == 1
    });
    let late_login = login_in_background(&t, "work", &late);
    wait_for("the second exchange to be held", DEADLINE, || {
        t.server.stats().holding("token") == 2
    });
    // A frozen keychain keeps the first finisher's tokens from being stored while the other
    // login finishes: the two really race. Each is answered once journaled.
    t.env.session_bus().pause_keyring();
    let finished = || {
        t.daemon
            .log()
            .matches("logged in; storing the tokens")
            .count()
    };
    assert!(t.server.release_one("token", true));
    wait_for("the later-started login to finish first", DEADLINE, || {
        finished() == 1
    });
    wait_for("the first finisher to be journaled", DEADLINE, || {
        t.daemon.log().contains("login durable in the journal")
    });
    t.server.hold("token", false);
    wait_for("the earlier-started login to finish last", DEADLINE, || {
        finished() == 2
    });
    t.env.session_bus().resume_keyring();

    let winner = early_login.join().expect("early login thread");
    let first = late_login.join().expect("late login thread");
    // The first to finish was durable (journaled) and answered; the last replaced it, as a
    // re-login does.
    assert_success(&first, "the login that finished first");
    assert_eq!(
        stdout(&first).trim(),
        "created slot work (alice@example.com)"
    );
    assert_success(&winner, "the login that finished last");
    assert_eq!(
        stdout(&winner).trim(),
        "updated slot work (alice@example.com)"
    );
    // The finisher's tokens are everywhere; the replaced login's grant is revoked.
    let token = t.token("work");
    assert_eq!(stored(&t, "work")["access_token"], token.as_str());
    assert!(token_works(&t.server, &token));
    wait_until_revoked(&t, &late, "the replaced login's grant to be revoked");
    assert!(t.server.grant_exists(&early.grant_id));
    assert_eq!(slot_names(&t), ["work"]);
    assert_eq!(t.invalid_grants(), 0);
}
