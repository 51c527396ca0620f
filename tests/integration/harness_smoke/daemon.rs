//! The daemon and CLI helpers work, proven with a shell-script stand-in for sessctl that has
//! the same `daemon` / `ping` interface (the real binary is exercised by the sessctl tests).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::TestEnv;

/// Becomes ready (ping succeeds) a little after starting, like a daemon binding its socket;
/// `daemon fail` exits at once instead.
const STUB: &str = r#"#!/bin/sh
case "$1" in
  daemon)
    echo "stub daemon starting, HOME=$HOME" >&2
    [ "$2" = fail ] && { echo "stub daemon: cannot start" >&2; exit 3; }
    sleep 0.2
    touch "$XDG_RUNTIME_DIR/stub-ready"
    echo "stub daemon ready"
    exec sleep 600
    ;;
  ping) test -e "$XDG_RUNTIME_DIR/stub-ready" ;;
  echo) cat; echo " (args: $*)"; echo "to stderr" >&2; exit 7 ;;
esac
"#;

fn write_stub(env: &TestEnv) -> PathBuf {
    let path = env.root().join("stub-sessctl");
    fs::write(&path, STUB).expect("write stub");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod stub");
    path
}

fn is_running(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn start_daemon_returns_once_ping_answers_and_kill9_ends_it() {
    let env = TestEnv::new();
    let stub = write_stub(&env);
    let mut daemon = env.start_daemon_of(&stub, &[]);
    assert!(env.runtime_dir().join("stub-ready").exists());
    assert!(is_running(daemon.pid()));
    assert!(
        daemon.log().contains("stub daemon ready"),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains(&env.home().display().to_string()),
        "the daemon runs with the env's HOME"
    );
    let pid = daemon.pid();
    daemon.kill9();
    assert!(!is_running(pid), "kill9 reaps the daemon");
}

#[test]
fn dropping_the_daemon_kills_it() {
    let env = TestEnv::new();
    let stub = write_stub(&env);
    let daemon = env.start_daemon_of(&stub, &[]);
    let pid = daemon.pid();
    drop(daemon);
    assert!(!is_running(pid));
}

#[test]
fn terminate_sends_sigterm_and_reports_how_it_exited() {
    let env = TestEnv::new();
    let stub = write_stub(&env);
    let mut daemon = env.start_daemon_of(&stub, &[]);
    let status = daemon.terminate(Duration::from_secs(10));
    assert!(!status.success(), "sleep dies of SIGTERM: {status}");
}

#[test]
#[should_panic(expected = "exited (exit status: 3) before answering ping")]
fn a_daemon_that_exits_early_fails_the_test_at_once() {
    let env = TestEnv::new();
    let stub = write_stub(&env);
    env.start_daemon_of(&stub, &["fail"]);
}

#[test]
fn cli_helper_passes_stdin_and_captures_output_and_exit_code() {
    let env = TestEnv::new();
    let stub = write_stub(&env);
    let out = env.run_cli(&stub, &["echo", "x"], Some(b"hello"));
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello (args: echo x)\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to stderr\n");
}

#[test]
fn write_config_puts_the_file_where_sessctl_looks_by_default() {
    let env = TestEnv::new();
    env.write_config("providers: {}\n");
    let expected = env.config_dir().join("sessctl/config.yaml");
    assert_eq!(env.config_path(), expected);
    assert_eq!(
        fs::read_to_string(expected).expect("config"),
        "providers: {}\n"
    );
}
