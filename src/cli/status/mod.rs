//! `sessctl status [--json]`: every slot's health as a table with the next step for anything
//! not healthy, or as the JSON documented in the README. Exit 0 when every slot is active,
//! 1 when some is degraded or inactive, 2 when none is active, 3 when the daemon cannot be
//! reached.

mod advice;
mod table;
#[cfg(test)]
mod tests;

use std::process::ExitCode;

use chrono::Utc;

use crate::cli::exit;
use crate::client;
use crate::config::Config;
use crate::paths::Paths;
use crate::protocol::{Request, Response, StatusReport};
use crate::state::SlotState;

pub use advice::Advisor;

pub fn run(paths: &Paths, json: bool) -> anyhow::Result<ExitCode> {
    let reply = client::call(&paths.socket, Request::Status)?;
    let Response::Status(report) = reply else {
        anyhow::bail!("unexpected reply to status: {reply:?}");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        // The config only names each provider's login flow; a broken config (which the
        // daemon would refuse at its next start) must not hide the status.
        let config = Config::load(&paths.config_file, paths.config_explicit).ok();
        let login = |name: &str, provider: &str| login_command(config.as_ref(), name, provider);
        let advisor = Advisor {
            now: Utc::now(),
            config_file: &paths.config_file,
            state_file: &paths.state_file,
            credentials_file: &paths.credentials_file,
            login_command: &login,
        };
        print!("{}", table::render(&report, &advisor));
    }
    Ok(ExitCode::from(exit_code(&report)))
}

/// The command that logs slot `name` in again: the flow that fits this machine and the
/// provider as configured, or a bare `login` when the provider is not in the config.
pub fn login_command(config: Option<&Config>, name: &str, provider: &str) -> String {
    match config.and_then(|c| c.providers.get(provider)) {
        Some(p) => crate::relogin::command_here(name, p),
        None => format!("sessctl login {name} --provider {provider}"),
    }
}

/// 0 all active with fresh quota data, 1 some degraded, inactive or stale, 2 none active
/// (none configured or all inactive).
pub fn exit_code(report: &StatusReport) -> u8 {
    let states = || report.slots.iter().map(|s| s.state);
    let stale = report
        .slots
        .iter()
        .any(|s| s.quota.as_ref().is_some_and(|q| q.stale));
    if report.slots.is_empty() || states().all(|s| s == SlotState::Inactive) {
        exit::NONE_ACTIVE
    } else if states().all(|s| s == SlotState::Active) && !stale {
        exit::OK
    } else {
        exit::FAILED
    }
}
