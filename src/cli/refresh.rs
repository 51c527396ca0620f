//! `sessctl refresh [NAME | --all]`: refresh now (joining a refresh in flight), report each
//! slot's outcome, exit non-zero when any failed.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::exit;
use crate::client;
use crate::paths::Paths;
use crate::protocol::{RefreshRequest, Request, Response};
use crate::state::SlotState;

pub fn run(paths: &Paths, name: Option<String>) -> anyhow::Result<ExitCode> {
    let reply = client::call(&paths.socket, Request::Refresh(RefreshRequest { name }))
        .context("refresh failed")?;
    let Response::Refresh(report) = reply else {
        anyhow::bail!("unexpected reply to refresh: {reply:?}");
    };
    if report.results.is_empty() {
        println!("no slots to refresh");
        return Ok(ExitCode::from(exit::NONE_ACTIVE));
    }
    let mut code = exit::OK;
    for result in &report.results {
        match &result.error {
            // A refresh succeeds with the slot degraded only when the store did not take
            // the new tokens (unreachable, locked or not answering): say so.
            None if result.state == SlotState::Degraded => println!(
                "{}: refreshed, but the new tokens are held in memory only: the credential store did not take them (see sessctl status; the daemon keeps retrying)",
                result.name
            ),
            None => println!("{}: refreshed", result.name),
            Some(error) => {
                eprintln!("{}: {}", result.name, error.message);
                let this = exit::for_daemon_error(error.code);
                code = if code == exit::OK {
                    this
                } else {
                    code.max(exit::FAILED)
                };
            }
        }
    }
    Ok(ExitCode::from(code))
}
