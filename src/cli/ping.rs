//! `sessctl ping`: does the daemon answer?

use std::process::ExitCode;

use crate::client;
use crate::paths::Paths;
use crate::protocol::{Request, Response};

pub fn run(paths: &Paths) -> anyhow::Result<ExitCode> {
    match client::call(&paths.socket, Request::Ping)? {
        Response::Pong(pong) => {
            println!(
                "sessctl daemon {} is running (pid {}, protocol {})",
                pong.version, pong.pid, pong.protocol
            );
            Ok(ExitCode::SUCCESS)
        }
        other => anyhow::bail!("unexpected reply to ping: {other:?}"),
    }
}
