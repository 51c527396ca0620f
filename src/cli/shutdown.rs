//! `sessctl shutdown`: stop the daemon.

use std::process::ExitCode;

use crate::client;
use crate::paths::Paths;
use crate::protocol::Request;

pub fn run(paths: &Paths) -> anyhow::Result<ExitCode> {
    client::call(&paths.socket, Request::Shutdown)?;
    println!("the daemon is shutting down");
    Ok(ExitCode::SUCCESS)
}
