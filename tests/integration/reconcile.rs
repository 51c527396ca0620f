//! The state file and the credential store never disagree silently: a state file removed
//! or restored from a backup (while the daemon runs or while it is stopped) loses no slot
//! and brings back no logged-out one, and a keychain item replaced with an older copy is
//! never presented to the server.

use std::path::PathBuf;
use std::time::Duration;

use crate::flows::{Running, assert_success, code_and_stderr, token_works};
use crate::support::wait_for;

const STOP: Duration = Duration::from_secs(20);

fn state_file(t: &Running) -> PathBuf {
    t.env.state_dir().join("sessctl/state.json")
}

/// Stops the daemon gracefully and starts a new one in the same environment.
fn restart(t: &mut Running) {
    assert!(t.daemon.terminate(STOP).success(), "{}", t.daemon.log());
    t.daemon = t.env.start_daemon();
}

fn slot_names(t: &Running) -> Vec<String> {
    let status = t.env.status_json();
    status["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn a_login_after_the_state_file_was_removed_survives_a_restart() {
    let mut t = Running::start("");
    t.login("work", "alice");
    std::fs::remove_file(state_file(&t)).unwrap();
    t.login("home", "bob");
    restart(&mut t);

    assert_eq!(slot_names(&t), ["home", "work"]);
    assert_eq!(t.state("home"), "active");
    assert!(token_works(&t.server, &t.token("home")));
    assert_eq!(
        t.env.status_json()["state_file_error"],
        serde_json::Value::Null
    );
}

#[test]
fn a_state_file_removed_while_stopped_is_recreated_from_the_keychain() {
    let mut t = Running::start("");
    t.login("work", "alice");
    t.login("home", "bob");
    assert!(t.daemon.terminate(STOP).success());
    std::fs::remove_file(state_file(&t)).unwrap();
    t.daemon = t.env.start_daemon();

    assert_eq!(slot_names(&t), ["home", "work"]);
    let out = t.env.sessctl(&["refresh", "work"]);
    assert!(out.status.success(), "{:?}", code_and_stderr(&out));
    assert_eq!(t.slot_status("work")["account"], "alice@example.com");
    // A new login of an adopted slot gets a generation newer than its item's.
    t.login("home", "bob");
    assert!(token_works(&t.server, &t.token("home")));
    assert_eq!(t.invalid_grants(), 0);
    assert!(state_file(&t).exists());
}

#[test]
fn a_restored_state_file_brings_back_new_slots_but_not_logged_out_ones() {
    let mut t = Running::start("");
    t.login("work", "alice");
    t.login("old", "olga");
    let backup = std::fs::read(state_file(&t)).unwrap();
    assert_success(&t.env.sessctl(&["logout", "old"]), "logout");
    t.login("new", "nina");
    assert!(t.daemon.terminate(STOP).success());
    std::fs::write(state_file(&t), backup).unwrap();
    t.daemon = t.env.start_daemon();

    assert_eq!(slot_names(&t), ["new", "work"]);
    assert!(token_works(&t.server, &t.token("new")));
    assert_eq!(t.state("work"), "active");
    let log = t.daemon.log();
    assert!(!log.contains("credentials_missing"), "{log}");
}

#[test]
fn an_older_copy_of_a_keychain_item_is_never_presented() {
    let mut t = Running::start("");
    let grant = t.login("work", "alice");
    let older = t.env.secret_lookup("sessctl", "work").expect("the item");
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    assert!(t.daemon.terminate(STOP).success());
    t.env.secret_store("sessctl", "work", &older);
    t.daemon = t.env.start_daemon();

    let out = t.env.sessctl(&["refresh", "work"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stale_credentials"), "{stderr}");
    assert_eq!(t.invalid_grants(), 0, "the consumed refresh token was sent");
    assert!(t.server.grant_exists(&grant.grant_id));
    let status = t.slot_status("work");
    assert_eq!(status["reason"], "stale_credentials", "{status}");
    let text = String::from_utf8_lossy(&t.env.sessctl(&["status"]).stdout).into_owned();
    assert!(text.contains("sessctl login work"), "{text}");
}

#[test]
fn an_item_that_names_no_provider_is_shown_with_the_command_that_fixes_it() {
    let mut t = Running::start("");
    // An item as an older sessctl wrote it: no provider or account (fake tokens).
    let legacy = r#"{"generation":3,"version":1,"access_token":"legacy-a","refresh_token":"legacy-r","expires_at":null,"obtained_at":"2026-01-01T00:00:00Z","scopes":[]}"#;
    t.env.secret_store("sessctl", "legacy", legacy);
    restart(&mut t);

    let status = t.env.status_json();
    let unplaced = &status["unplaced_credentials"][0];
    assert_eq!(unplaced["name"], "legacy", "{status}");
    assert!(slot_names(&t).is_empty());
    let fix = "sessctl login legacy --provider";
    let text = String::from_utf8_lossy(&t.env.sessctl(&["status"]).stdout).into_owned();
    assert!(text.contains(fix), "{text}");
    let doctor = String::from_utf8_lossy(&t.env.sessctl(&["doctor"]).stdout).into_owned();
    assert!(doctor.contains(fix), "{doctor}");

    // The fix works: the login replaces the item (its generation is above the item's).
    t.login("legacy", "lee");
    assert_eq!(
        t.env.status_json()["unplaced_credentials"],
        serde_json::json!([])
    );
    assert!(token_works(&t.server, &t.token("legacy")));
}

#[test]
fn a_state_file_restored_while_running_is_rewritten_with_the_daemons_state() {
    let t = Running::start("");
    t.login("work", "alice");
    let backup = std::fs::read(state_file(&t)).unwrap();
    t.login("home", "bob");
    std::fs::write(state_file(&t), backup).unwrap();
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");

    wait_for("the state file to be rewritten", STOP, || {
        std::fs::read_to_string(state_file(&t)).is_ok_and(|saved| saved.contains("\"home\""))
    });
    assert!(t.daemon.log().contains("behind the daemon"));
    assert_eq!(
        t.env.status_json()["state_file_error"],
        serde_json::Value::Null
    );
}
