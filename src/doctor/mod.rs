//! `sessctl doctor`: checks everything sessctl depends on and prints one line per check,
//! `pass`, `warn` or `fail`, with the fix for anything not passing. It runs in the daemon
//! binary (`sessctl doctor` execs `sessctl-daemon doctor`) because the credential-store
//! probe and the HTTP checks need the keychain and HTTP crates the light CLI leaves out.
//!
//! Only what breaks sessctl fails (exit 1): a config that does not load, no daemon, a
//! credential store that cannot keep a secret, an unreachable token endpoint, a clock off
//! by more than five minutes, a service the service manager gave up on. What does not apply
//! here (no systemd, a daemon started by hand, no desktop) is a warning (exit 0).
//!
//! Doctor never spends a refresh token and never touches a slot's credentials: its store
//! probe uses an item name outside the slot-name alphabet (see `store_probe`).

mod alert_command;
mod clock;
mod endpoints;
mod local;
mod notifications;
pub(crate) mod service;
mod store_probe;

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::exit;
use crate::paths::Paths;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    /// Worth knowing, or does not apply here; sessctl still works.
    Warn,
    /// Something sessctl needs is broken.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `config`, `daemon`, `credential store`, `token endpoint`, ...
    pub check: &'static str,
    #[serde(rename = "status")]
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
    /// What to do about it (never for a pass).
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            outcome: Outcome::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            check,
            outcome: Outcome::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            check,
            outcome: Outcome::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The `--json` report.
#[derive(Debug, Serialize)]
struct Report<'a> {
    /// False when some check failed.
    ok: bool,
    checks: &'a [Check],
}

/// `sessctl-daemon doctor [--json]`: runs every check, prints the report, and exits 1 when
/// some check failed, else 0.
pub fn main(paths: &Paths, json: bool) -> ExitCode {
    let checks = run(paths);
    if json {
        let report = Report {
            ok: exit_code(&checks) == exit::OK,
            checks: &checks,
        };
        // Serializing our own plain structs cannot fail.
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", render(&checks));
    }
    ExitCode::from(exit_code(&checks))
}

/// Every check, in the order they are printed.
pub fn run(paths: &Paths) -> Vec<Check> {
    let mut checks = Vec::new();
    let (config_check, config) = local::config(paths);
    checks.push(config_check);
    // The other checks go on with the defaults when the config does not load.
    let config = config.unwrap_or_default();
    let daemon = local::daemon(paths);
    checks.push(daemon.check.clone());
    checks.push(store_probe::check(config.credential_store, paths));
    let providers = local::providers_in_use(paths, daemon.status.as_ref());
    let probes = endpoints::probe_all(&config, &providers);
    checks.extend(probes.checks);
    checks.push(clock::check(&probes.clocks));
    checks.push(notifications::check(
        config.notifications == crate::config::Notifications::Desktop,
    ));
    let path = std::env::var_os("PATH");
    checks.push(alert_command::check(
        config.alert_command.as_ref(),
        path.as_deref(),
    ));
    checks.push(service::check(daemon.pid));
    checks
}

/// The text report: `outcome  check  detail; fix: ...`, one line per check.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let outcome = match c.outcome {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
        };
        let _ = write!(out, "{outcome}  {:<width$}  {}", c.check, c.detail);
        if let Some(fix) = &c.fix {
            let _ = write!(out, "; fix: {fix}");
        }
        out.push('\n');
    }
    out
}

/// 1 when some check failed, else 0 (warnings do not fail).
pub fn exit_code(checks: &[Check]) -> u8 {
    if checks.iter().any(|c| c.outcome == Outcome::Fail) {
        exit::FAILED
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_check_with_the_fix_for_what_did_not_pass() {
        let checks = [
            Check::pass("config", "defaults"),
            Check::warn("service", "no systemd", "nothing to do"),
            Check::fail("daemon", "not running", "start it"),
        ];
        assert_eq!(
            render(&checks),
            "pass  config   defaults\n\
             warn  service  no systemd; fix: nothing to do\n\
             fail  daemon   not running; fix: start it\n"
        );
    }

    #[test]
    fn only_a_failure_makes_doctor_exit_non_zero() {
        let pass = Check::pass("a", "");
        let warn = Check::warn("b", "", "");
        let fail = Check::fail("c", "", "");
        assert_eq!(exit_code(&[pass.clone(), warn.clone()]), exit::OK);
        assert_eq!(exit_code(&[pass, warn, fail]), exit::FAILED);
        assert_eq!(exit_code(&[]), exit::OK);
    }

    #[test]
    fn the_json_report_names_each_check_and_its_status() {
        let checks = [Check::fail("daemon", "not running", "start it")];
        let json = serde_json::to_value(Report {
            ok: false,
            checks: &checks,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ok": false, "checks": [
                {"check": "daemon", "status": "fail", "detail": "not running", "fix": "start it"}
            ]})
        );
    }
}
