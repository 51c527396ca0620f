//! Doctor's service check: is the daemon installed and running under the service manager
//! (a systemd user unit `sessctl.service` on Linux, the launchd agent `dev.sessctl.daemon`
//! on macOS)? What the service manager says is probed with its own commands; judging it is
//! a pure function ([`classify`]), tested for both managers.
//!
//! No service manager, no user instance of it, or a daemon started by hand are warnings:
//! sessctl works, it just will not be restarted at login or after a crash.

pub(crate) mod probe;

use super::Check;

const CHECK: &str = "service";

/// The systemd user unit (systemd/sessctl.service in the sources).
pub(super) const SYSTEMD_UNIT: &str = "sessctl.service";
/// The launchd agent's label (launchd/dev.sessctl.daemon.plist in the sources).
#[cfg(unix)]
pub(super) const LAUNCHD_LABEL: &str = "dev.sessctl.daemon";

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
        probe::launchd()
    } else {
        probe::systemd()
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
        "`sessctl service install` (writes the launchd agent and loads it)"
    } else {
        "`sessctl service install` (writes the user unit and enables it)"
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

#[cfg(test)]
mod tests {
    use super::super::Outcome;
    use super::*;

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
