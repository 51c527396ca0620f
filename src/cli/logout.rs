//! `sessctl logout NAME`: revoke at the provider, delete the credentials and the slot.

use std::process::ExitCode;

use anyhow::Context;

use crate::client;
use crate::paths::Paths;
use crate::protocol::{Request, Response, SlotRef};

pub fn run(paths: &Paths, name: String) -> anyhow::Result<ExitCode> {
    let reply = client::call(
        &paths.socket,
        Request::Logout(SlotRef { name: name.clone() }),
    )
    .with_context(|| format!("logout of slot {name} failed"))?;
    let Response::Logout(logout) = reply else {
        anyhow::bail!("unexpected reply to logout: {reply:?}");
    };
    let revoked = if logout.revoked {
        "refresh token revoked at the provider"
    } else {
        "refresh token NOT revoked at the provider"
    };
    println!("logged out slot {} ({revoked})", logout.name);
    if let Some(warning) = logout.warning {
        eprintln!("sessctl: warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
