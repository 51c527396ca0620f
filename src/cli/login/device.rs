//! The device login (`--device`, RFC 8628): show the user code and where to enter it, then
//! wait for the daemon's polling to end. The daemon holds each wait at most
//! [`crate::protocol::LOGIN_WAIT_SLICE_SECS`] (socket replies have a deadline), so the CLI
//! asks again until the login ends or `--timeout` passes.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::client;
use crate::paths::Paths;
use crate::protocol::{FlowRef, LoginFlow, Request, Response};

use super::{Args, TimedOut, cancel, report};

pub fn run(paths: &Paths, args: &Args, deadline: Instant) -> anyhow::Result<ExitCode> {
    let begun = super::begin(paths, args, LoginFlow::Device)?;
    let device = begun.device.context("the daemon sent no device code")?;
    eprintln!(
        "To log in slot {}, open {} on any device and enter the code\n\n    {}\n",
        args.name, device.verification_uri, device.user_code
    );
    if let Some(complete) = &device.verification_uri_complete {
        eprintln!("(or open {complete}, which fills the code in)");
    }
    eprintln!(
        "Waiting for approval (the code expires at {})...",
        device.expires_at.format("%H:%M:%S UTC")
    );
    loop {
        if Instant::now() >= deadline {
            cancel(paths, &begun.flow_id);
            return Err(TimedOut(args.timeout).into());
        }
        let reply = client::call(
            &paths.socket,
            Request::LoginWait(FlowRef {
                flow_id: begun.flow_id.clone(),
            }),
        )
        .with_context(|| format!("login of slot {}", args.name))?;
        match reply {
            Response::LoginPending => {}
            other => return report(other),
        }
    }
}
