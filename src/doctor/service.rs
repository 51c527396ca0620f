//! Doctor's service check: is the daemon installed and running under the service manager
//! (a systemd user unit `sessctl.service` on Linux, the launchd agent `dev.sessctl.daemon`
//! on macOS)? What the service manager says is probed with its own commands; judging it is
//! a pure function ([`classify`]), tested for both managers.
//!
//! No service manager, no user instance of it, or a daemon started by hand are warnings:
//! sessctl works, it just will not be restarted at login or after a crash.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::Check;

/// How long one `systemctl` or `launchctl` call may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

const CHECK: &str = "service";

/// The systemd user unit (systemd/sessctl.service in the sources).
const SYSTEMD_UNIT: &str = "sessctl.service";
/// The launchd agent's label (launchd/dev.sessctl.daemon.plist in the sources).
const LAUNCHD_LABEL: &str = "dev.sessctl.daemon";

/// What the service manager said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No service manager to ask (no systemctl, no user instance, ...): why.
    NoManager(String),
    /// The service is not installed.
    NotInstalled,
    Installed {
        /// Starts at login (systemd `enabled`; launchd agents loaded from
        /// ~/Library/LaunchAgents do).
        enabled: bool,
        state: RunState,
        main_pid: Option<u32>,
    },
}

/// Whether the installed service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    /// The service manager gave up on it.
    Failed,
    Stopped,
}

/// The check, given the pid of the daemon answering the socket (if any).
pub fn check(daemon_pid: Option<u32>) -> Check {
    let probe = if cfg!(target_os = "macos") {
        probe_launchd()
    } else {
        probe_systemd()
    };
    classify(&probe, daemon_pid)
}

/// Judges what the service manager said against the daemon that answers.
pub fn classify(probe: &Probe, daemon_pid: Option<u32>) -> Check {
    let by_hand = |pid: u32| format!("; the daemon (pid {pid}) was started by hand");
    match probe {
        Probe::NoManager(why) => Check::warn(
            CHECK,
            format!(
                "no service manager here ({why}){}",
                daemon_pid.map(by_hand).unwrap_or_default()
            ),
            "does not apply here; keep the daemon running some other way (e.g. `sessctl daemon &` from a login script)",
        ),
        Probe::NotInstalled => Check::warn(
            CHECK,
            format!(
                "the service is not installed{}",
                daemon_pid.map(by_hand).unwrap_or_default()
            ),
            install_fix(),
        ),
        Probe::Installed {
            state: RunState::Running,
            main_pid,
            enabled,
        } => match (daemon_pid, main_pid) {
            (Some(daemon), Some(service)) if daemon != *service => Check::warn(
                CHECK,
                format!(
                    "the service runs pid {service}, but the daemon answering is pid {daemon}, started by hand"
                ),
                format!("`sessctl shutdown`, then {}", restart_fix()),
            ),
            _ if !enabled => Check::warn(
                CHECK,
                "running, but not enabled: it will not start at the next login",
                enable_fix(),
            ),
            _ => Check::pass(
                CHECK,
                match main_pid {
                    Some(pid) => format!("installed, enabled and running (pid {pid})"),
                    None => "installed, enabled and running".to_owned(),
                },
            ),
        },
        Probe::Installed {
            state: RunState::Failed,
            ..
        } => {
            let detail = "the service manager gave up on the daemon (failed)";
            match daemon_pid {
                Some(pid) => Check::warn(
                    CHECK,
                    format!("{detail}{}", by_hand(pid)),
                    format!("see {}, then {}", logs_fix(), restart_fix()),
                ),
                None => Check::fail(
                    CHECK,
                    detail,
                    format!("see {}, then {}", logs_fix(), restart_fix()),
                ),
            }
        }
        Probe::Installed {
            state: RunState::Stopped,
            ..
        } => Check::warn(
            CHECK,
            format!(
                "installed but not running{}",
                daemon_pid.map(by_hand).unwrap_or_default()
            ),
            match daemon_pid {
                Some(_) => format!("`sessctl shutdown`, then {}", restart_fix()),
                None => restart_fix().to_owned(),
            },
        ),
    }
}

fn install_fix() -> &'static str {
    if cfg!(target_os = "macos") {
        "install the launchd agent (README, Running as a service): launchd/dev.sessctl.daemon.plist into ~/Library/LaunchAgents, then `launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/dev.sessctl.daemon.plist`"
    } else {
        "install the user unit (README, Running as a service): copy systemd/sessctl.service to ~/.config/systemd/user/, then `systemctl --user daemon-reload && systemctl --user enable --now sessctl`"
    }
}

fn restart_fix() -> &'static str {
    if cfg!(target_os = "macos") {
        "`launchctl kickstart -k gui/$(id -u)/dev.sessctl.daemon`"
    } else {
        "`systemctl --user restart sessctl`"
    }
}

fn enable_fix() -> &'static str {
    if cfg!(target_os = "macos") {
        "move the plist into ~/Library/LaunchAgents so launchd loads it at login"
    } else {
        "`systemctl --user enable sessctl`"
    }
}

fn logs_fix() -> &'static str {
    if cfg!(target_os = "macos") {
        "`sessctl logs`"
    } else {
        "`journalctl --user -u sessctl`"
    }
}

/// Asks `systemctl --user` about the unit.
fn probe_systemd() -> Probe {
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
fn probe_launchd() -> Probe {
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

/// Reads `launchctl print gui/UID/LABEL` (a loaded agent): its `state =` and `pid =` lines.
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

fn systemctl(args: &[&str]) -> Result<Output, String> {
    run(Command::new("systemctl").arg("--user").args(args))
}

/// Runs `command` with a deadline; `Err` says why there was no answer.
fn run(command: &mut Command) -> Result<Output, String> {
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
            // The waiting thread reaps it once killed.
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: kill has no memory-safety preconditions; the pid is our own
                // child, not yet reaped (the waiting thread still holds it).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            Err(format!(
                "{program} did not answer within {}s",
                COMMAND_TIMEOUT.as_secs()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::super::Outcome;
    use super::*;

    fn out(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
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

    #[test]
    fn only_a_service_given_up_with_no_daemon_fails() {
        let installed = |state, main_pid| Probe::Installed {
            enabled: true,
            state,
            main_pid,
        };
        let outcome = |probe: &Probe, pid| classify(probe, pid).outcome;
        assert_eq!(
            outcome(&installed(RunState::Running, Some(5)), Some(5)),
            Outcome::Pass
        );
        assert_eq!(
            outcome(&installed(RunState::Failed, None), None),
            Outcome::Fail
        );
        assert_eq!(
            outcome(&installed(RunState::Failed, None), Some(9)),
            Outcome::Warn
        );
        assert_eq!(
            outcome(&installed(RunState::Stopped, None), None),
            Outcome::Warn
        );
        assert_eq!(outcome(&Probe::NotInstalled, None), Outcome::Warn);
        assert_eq!(
            outcome(&Probe::NoManager("no systemctl".into()), None),
            Outcome::Warn
        );
    }

    #[test]
    fn a_daemon_started_by_hand_is_named() {
        let by_hand = classify(
            &Probe::NoManager("no systemd user instance".into()),
            Some(42),
        );
        assert!(
            by_hand.detail.contains("pid 42) was started by hand"),
            "{by_hand:?}"
        );
        let beside = classify(
            &Probe::Installed {
                enabled: true,
                state: RunState::Running,
                main_pid: Some(5),
            },
            Some(42),
        );
        assert_eq!(beside.outcome, Outcome::Warn);
        assert!(
            beside.detail.contains("pid 42, started by hand"),
            "{beside:?}"
        );
        let not_enabled = classify(
            &Probe::Installed {
                enabled: false,
                state: RunState::Running,
                main_pid: None,
            },
            None,
        );
        assert!(not_enabled.fix.unwrap().contains("enable"));
    }
}
