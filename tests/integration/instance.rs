//! One daemon per state, whatever the environment: the instance lock lives beside the state
//! file, so a daemon started from cron, ssh or `env -i` (another or no `XDG_RUNTIME_DIR`)
//! over the same state is refused; a daemon over another state that shares the runtime
//! directory is refused too instead of taking the first one's socket.

use std::path::Path;
use std::time::Duration;

use crate::flows::{Running, code_and_stderr};
use crate::support::process::output_with_deadline;

/// A refused daemon exits at once; one that was not refused would run until killed.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(20);

/// Runs `sessctl daemon` in `t`'s environment with `XDG_RUNTIME_DIR` set to `runtime` (or
/// removed) and `XDG_STATE_HOME` to `state` (when given); returns its exit code and stderr.
fn second_daemon(
    t: &Running,
    runtime: Option<&Path>,
    state: Option<&Path>,
) -> (Option<i32>, String) {
    let mut cmd = t.env.sessctl_command(&["daemon"]);
    match runtime {
        Some(dir) => cmd.env("XDG_RUNTIME_DIR", dir),
        None => cmd.env_remove("XDG_RUNTIME_DIR"),
    };
    if let Some(dir) = state {
        cmd.env("XDG_STATE_HOME", dir);
    }
    code_and_stderr(&output_with_deadline(
        cmd,
        None,
        REFUSAL_DEADLINE,
        "a second sessctl daemon",
    ))
}

fn private_dir(t: &Running, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let dir = t.env.root().join(name);
    std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    dir
}

#[test]
fn a_second_daemon_with_another_runtime_dir_is_refused() {
    let t = Running::start("");
    let other = private_dir(&t, "other-runtime");
    let (code, stderr) = second_daemon(&t, Some(&other), None);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(
        stderr.contains(&format!("already running (pid {}", t.daemon.pid())),
        "{stderr}"
    );
    // It says where the running daemon answers, since this environment would not find it.
    assert!(
        stderr.contains(&t.env.socket_path().display().to_string()),
        "{stderr}"
    );
    assert!(!other.join("sessctl/sessctl.sock").exists());
    assert!(t.env.sessctl(&["ping"]).status.success());
}

#[test]
fn a_second_daemon_without_a_runtime_dir_is_refused() {
    let t = Running::start("");
    let (code, stderr) = second_daemon(&t, None, None);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(
        stderr.contains(&format!("already running (pid {}", t.daemon.pid())),
        "{stderr}"
    );
    assert!(t.env.sessctl(&["ping"]).status.success());
}

#[test]
fn a_daemon_over_another_state_does_not_take_the_socket() {
    let t = Running::start("");
    let other_state = private_dir(&t, "other-state");
    let (code, stderr) = second_daemon(&t, Some(&t.env.runtime_dir()), Some(&other_state));
    assert_eq!(code, Some(5), "{stderr}");
    assert!(
        stderr.contains(&format!("another daemon (pid {})", t.daemon.pid())),
        "{stderr}"
    );
    assert!(stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    // The first daemon still owns its socket.
    let pong = t.env.sessctl(&["ping"]);
    assert!(pong.status.success());
}
