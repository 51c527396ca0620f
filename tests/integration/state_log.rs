//! The state file saved as deltas (`state.json.log`, `src/state_log/`), against the real
//! daemon: a reply that waited on a save survives `kill -9` though only the log has it, a
//! state file edited behind the daemon is noticed even when its revision is kept, a
//! graceful stop folds the log into the file, and a garbled log neither stops the daemon
//! nor is thrown away.

use std::path::PathBuf;
use std::time::Duration;

use crate::flows::{Running, assert_success, token_works};
use crate::support::{TestEnv, wait_for};

const STOP: Duration = Duration::from_secs(20);

fn state_file(env: &TestEnv) -> PathBuf {
    env.state_dir().join("sessctl/state.json")
}

fn log_file(env: &TestEnv) -> PathBuf {
    env.state_dir().join("sessctl/state.json.log")
}

/// The state file and its log, as text (the log's framing read lossily): what a test that
/// looks for a name, or for a token that must not be there, has to search.
pub(crate) fn state_and_log(env: &TestEnv) -> String {
    let read = |path: PathBuf| std::fs::read(path).unwrap_or_default();
    let mut text = String::from_utf8_lossy(&read(state_file(env))).into_owned();
    text.push_str(&String::from_utf8_lossy(&read(log_file(env))));
    text
}

fn slot_names(t: &Running) -> Vec<String> {
    let status = t.env.status_json();
    (status["slots"].as_array().expect("slots").iter())
        .map(|s| s["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn a_login_and_a_logout_answered_before_kill_9_are_there_after_the_restart() {
    let mut t = Running::start("");
    t.login("first", "alice");
    t.login("second", "bob");
    t.login("third", "carol");
    assert_success(&t.env.sessctl(&["logout", "first"]), "logout");
    let file = std::fs::read_to_string(state_file(&t.env)).unwrap();
    assert!(
        !file.contains("\"third\""),
        "the state file itself was rewritten: {file}"
    );
    assert!(std::fs::metadata(log_file(&t.env)).unwrap().len() > 0);
    t.crash_and_restart();
    assert_eq!(slot_names(&t), ["second", "third"]);
    assert!(token_works(&t.server, &t.token("third")));
    assert!(!t.daemon.log().contains("credentials_missing"));
}

#[test]
fn a_state_file_edited_behind_the_daemon_with_its_revision_kept_is_noticed() {
    let t = Running::start("");
    t.login("work", "alice");
    t.login("home", "bob");
    let path = state_file(&t.env);
    let mut edited: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edited["next_generation"] = serde_json::json!(1);
    std::fs::write(&path, serde_json::to_vec(&edited).unwrap()).unwrap();
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    wait_for("the daemon to notice the edit", STOP, || {
        t.daemon.log().contains("behind the daemon")
    });
    let text = state_and_log(&t.env);
    assert!(text.contains("\"home\"") && text.contains("\"work\""));
    assert_eq!(
        t.env.status_json()["state_file_error"],
        serde_json::Value::Null
    );
}

#[test]
fn a_graceful_stop_folds_the_log_into_the_state_file() {
    let mut t = Running::start("");
    t.login("work", "alice");
    t.login("home", "bob");
    assert!(std::fs::metadata(log_file(&t.env)).unwrap().len() > 0);
    assert!(t.daemon.terminate(STOP).success(), "{}", t.daemon.log());
    assert_eq!(std::fs::metadata(log_file(&t.env)).unwrap().len(), 0);
    let file = std::fs::read_to_string(state_file(&t.env)).unwrap();
    assert!(
        file.contains("\"home\"") && file.contains("\"work\""),
        "{file}"
    );
}

#[test]
fn a_garbled_log_is_reported_kept_aside_and_the_daemon_starts() {
    let mut t = Running::start("");
    t.login("work", "alice");
    t.login("home", "bob");
    t.daemon.kill9();
    let log = log_file(&t.env);
    let mut bytes = std::fs::read(&log).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&log, &bytes).unwrap();
    t.daemon = t.env.start_daemon();

    assert!(t.daemon.log().contains("unreadable"), "{}", t.daemon.log());
    // The keychain still says which slots exist: nothing is lost.
    assert_eq!(slot_names(&t), ["home", "work"]);
    assert!(token_works(&t.server, &t.token("home")));
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    let dir = t.env.state_dir().join("sessctl");
    let kept: Vec<_> = (std::fs::read_dir(&dir).unwrap())
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.to_string_lossy().contains("state.json.log.bad-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), bytes);
}
