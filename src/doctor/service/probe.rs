//! Asking the service manager about sessctl's service: `systemctl --user` on Linux,
//! `launchctl print` on macOS, each call with a deadline; their answers are read by pure
//! functions, tested here.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[cfg(unix)]
use super::LAUNCHD_LABEL;
use super::{Probe, RunState, SYSTEMD_UNIT};

/// How long one `systemctl` or `launchctl` call may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks `systemctl --user` about the unit.
pub fn systemd() -> Probe {
    if let Err(why) = systemd_user_instance() {
        return Probe::NoManager(why);
    }
    let enabled = match systemctl(&["is-enabled", SYSTEMD_UNIT]) {
        Ok(out) => out,
        Err(why) => return Probe::NoManager(why),
    };
    let active = match systemctl(&["is-active", SYSTEMD_UNIT]) {
        Ok(out) => out,
        Err(why) => return Probe::NoManager(why),
    };
    let main_pid = systemctl(&["show", "--property=MainPID", "--value", SYSTEMD_UNIT])
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .filter(|pid| *pid != 0);
    parse_systemd(&enabled, &active, main_pid)
}

/// Reads `systemctl --user is-enabled` and `is-active` (their stdout is one word; errors
/// go to stderr).
pub fn parse_systemd(enabled: &Output, active: &Output, main_pid: Option<u32>) -> Probe {
    let word = |out: &Output| String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).trim().to_owned();
    for out in [enabled, active] {
        let err = stderr(out);
        if err.contains("Failed to connect to bus") || err.contains("No medium found") {
            return Probe::NoManager(format!("no systemd user instance: {err}"));
        }
    }
    let installed = match word(enabled).as_str() {
        "enabled" | "enabled-runtime" => Some(true),
        "" | "not-found" => None,
        // disabled, static, linked, masked, indirect, generated, transient, alias
        _ => Some(false),
    };
    let Some(enabled) = installed else {
        return Probe::NotInstalled;
    };
    let state = match word(active).as_str() {
        "active" | "reloading" | "activating" => RunState::Running,
        "failed" => RunState::Failed,
        _ => RunState::Stopped,
    };
    Probe::Installed {
        enabled,
        state,
        main_pid,
    }
}

/// Asks launchd about the agent in the user's GUI domain.
#[cfg(unix)]
pub fn launchd() -> Probe {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let target = format!("gui/{uid}/{LAUNCHD_LABEL}");
    match run(Command::new("launchctl").args(["print", &target])) {
        Ok(out) if out.status.success() => {
            parse_launchctl_print(&String::from_utf8_lossy(&out.stdout))
        }
        Ok(_) => Probe::NotInstalled,
        Err(why) => Probe::NoManager(why),
    }
}

/// launchd runs only on macOS.
#[cfg(not(unix))]
pub fn launchd() -> Probe {
    Probe::NoManager("launchd runs only on macOS".to_owned())
}

/// Reads `launchctl print gui/UID/LABEL` (a loaded agent): its `state =` and `pid =` lines.
#[cfg(unix)]
pub fn parse_launchctl_print(text: &str) -> Probe {
    let field = |name: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(name)?.trim().strip_prefix('='))
            .map(|v| v.trim().to_owned())
    };
    let main_pid = field("pid").and_then(|p| p.parse().ok());
    let state = match field("state").as_deref() {
        Some("running") => RunState::Running,
        _ if field("last exit code").is_some_and(|c| c != "0" && c != "(never exited)") => {
            RunState::Failed
        }
        _ => RunState::Stopped,
    };
    Probe::Installed {
        enabled: true,
        state,
        main_pid,
    }
}

/// Whether a systemd user instance runs for this user (`systemctl --user` can work); `Err`
/// says why not. Without one (containers, WSL, ssh sessions without lingering) `systemctl
/// --user is-enabled` still reads unit files, so this is asked first.
pub fn systemd_user_instance() -> Result<(), String> {
    parse_is_system_running(&systemctl(&["is-system-running"])?)
}

/// Reads `systemctl --user is-system-running`: any state but `offline` (or no answer) means
/// a manager runs; `degraded` only means some unit failed.
pub fn parse_is_system_running(out: &Output) -> Result<(), String> {
    let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    match state.as_str() {
        "running" | "degraded" | "starting" | "initializing" | "maintenance" | "stopping" => Ok(()),
        "" => Err(format!(
            "no systemd user instance (`systemctl --user is-system-running`: {})",
            if err.is_empty() { "no answer" } else { &err }
        )),
        other => Err(format!(
            "no systemd user instance (`systemctl --user is-system-running`: {other})"
        )),
    }
}

pub(crate) fn systemctl(args: &[&str]) -> Result<Output, String> {
    run(Command::new("systemctl").arg("--user").args(args))
}

/// Kills our child `pid`, which did not answer in time; the waiting thread reaps it.
#[cfg(unix)]
fn kill_child(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own
        // child, not yet reaped (the waiting thread still holds it).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Elsewhere the child is left to finish on its own (doctor's service probes ask systemd
/// and launchd, which exist only on Unix).
#[cfg(not(unix))]
fn kill_child(_pid: u32) {}

/// Runs `command` with a deadline; `Err` says why there was no answer.
pub(crate) fn run(command: &mut Command) -> Result<Output, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("no {program} on PATH"),
            _ => format!("cannot run {program}: {e}"),
        })?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(format!("{program} failed: {e}")),
        Err(_) => {
            kill_child(pid);
            Err(format!(
                "{program} did not answer within {}s",
                COMMAND_TIMEOUT.as_secs()
            ))
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn out(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_user_instance_is_told_from_none() {
        assert_eq!(parse_is_system_running(&out(0, "running\n", "")), Ok(()));
        assert_eq!(parse_is_system_running(&out(256, "degraded\n", "")), Ok(()));
        let offline = parse_is_system_running(&out(256, "offline\n", "")).unwrap_err();
        assert!(offline.contains("no systemd user instance") && offline.contains("offline"));
        let no_bus =
            parse_is_system_running(&out(256, "", "Failed to connect to bus: No medium found"));
        assert!(no_bus.unwrap_err().contains("No medium found"));
    }

    #[test]
    fn systemctl_answers_are_read() {
        let no_bus = out(1, "", "Failed to connect to bus: No such file or directory");
        assert!(matches!(
            parse_systemd(&out(0, "enabled\n", ""), &no_bus, None),
            Probe::NoManager(_)
        ));
        let missing = out(
            1,
            "",
            "Failed to get unit file state for sessctl.service: No such file or directory",
        );
        assert_eq!(
            parse_systemd(&missing, &out(3, "inactive\n", ""), None),
            Probe::NotInstalled
        );
        assert_eq!(
            parse_systemd(&out(4, "not-found\n", ""), &out(3, "inactive\n", ""), None),
            Probe::NotInstalled
        );
        assert_eq!(
            parse_systemd(&out(0, "enabled\n", ""), &out(0, "active\n", ""), Some(7)),
            Probe::Installed {
                enabled: true,
                state: RunState::Running,
                main_pid: Some(7)
            }
        );
        assert_eq!(
            parse_systemd(&out(1, "disabled\n", ""), &out(3, "failed\n", ""), None),
            Probe::Installed {
                enabled: false,
                state: RunState::Failed,
                main_pid: None
            }
        );
    }

    #[test]
    fn launchctl_print_is_read() {
        let running = "gui/501/dev.sessctl.daemon = {\n\tactive count = 1\n\tstate = running\n\tpid = 812\n\tlast exit code = (never exited)\n}";
        assert_eq!(
            parse_launchctl_print(running),
            Probe::Installed {
                enabled: true,
                state: RunState::Running,
                main_pid: Some(812)
            }
        );
        let crashed = "gui/501/dev.sessctl.daemon = {\n\tstate = not running\n\tlast exit code = 78: EX_CONFIG\n}";
        assert!(matches!(
            parse_launchctl_print(crashed),
            Probe::Installed {
                state: RunState::Failed,
                ..
            }
        ));
    }
}
