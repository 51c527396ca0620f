//! The daemon's life: one per user, clean restarts after a crash, a clear word when it is
//! not running.

use crate::flows::{Running, code_and_stderr, token_works};
use crate::support::TestEnv;

#[test]
fn a_second_daemon_is_refused_with_the_pid_of_the_first() {
    let t = Running::start("");
    let out = t.env.sessctl(&["daemon"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(
        stderr.contains(&format!("already running (pid {})", t.daemon.pid())),
        "{stderr}"
    );
    // The first one is unharmed.
    assert!(t.env.sessctl(&["ping"]).status.success());
}

#[test]
fn after_kill_9_a_restarted_daemon_still_refreshes_the_slot() {
    let mut t = Running::start("");
    t.login("work", "alice");
    t.crash_and_restart();
    let out = t.env.sessctl(&["refresh", "work"]);
    assert!(out.status.success(), "{:?}", code_and_stderr(&out));
    assert_eq!(t.state("work"), "active");
    assert!(token_works(&t.server, &t.token("work")));
    assert_eq!(t.invalid_grants(), 0);
}

#[test]
fn cli_says_how_to_start_an_unreachable_daemon() {
    let env = TestEnv::new();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["ping"],
        &["token", "work"],
    ] {
        let out = env.sessctl(args);
        let (code, stderr) = code_and_stderr(&out);
        assert_eq!(code, Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("sessctl daemon"), "{args:?}: {stderr}");
    }
}

#[test]
fn shutdown_stops_the_daemon_and_removes_its_socket() {
    let mut t = Running::start("");
    assert!(t.env.sessctl(&["shutdown"]).status.success());
    crate::support::wait_for(
        "the daemon to exit",
        std::time::Duration::from_secs(10),
        || !t.daemon.is_running(),
    );
    assert!(!t.env.socket_path().exists());
    assert_eq!(t.env.sessctl(&["ping"]).status.code(), Some(3));
}

#[test]
fn status_with_no_slots_exits_2() {
    let t = Running::start("");
    let out = t.env.sessctl(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no slots"));
    let status = t.env.status_json();
    assert_eq!(status["slots"], serde_json::json!([]));
    assert_eq!(status["credential_store"], "keychain");
    assert_eq!(status["all_inactive"], false);
}

#[test]
fn sessctl_daemon_without_its_daemon_binary_says_how_to_fix_it() {
    let env = TestEnv::new();
    let lonely = env.root().join("bin/sessctl");
    std::fs::create_dir_all(lonely.parent().unwrap()).unwrap();
    std::fs::copy(crate::support::sessctl::SESSCTL, &lonely).unwrap();
    let out = env.run_cli(&lonely, &["daemon"], None);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("sessctl-daemon"), "{stderr}");
    assert!(stderr.contains("cargo install"), "{stderr}");
}
