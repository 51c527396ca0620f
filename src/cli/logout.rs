//! `sessctl logout NAME`: revoke at the provider, delete the credentials and the slot, and
//! cancel pending logins of NAME.

use std::process::ExitCode;

use anyhow::Context;

use crate::client;
use crate::paths::Paths;
use crate::protocol::{LogoutReply, Request, Response, SlotRef};

pub fn run(paths: &Paths, name: &str) -> anyhow::Result<ExitCode> {
    let reply = client::call(
        &paths.socket,
        Request::Logout(SlotRef {
            name: name.to_owned(),
        }),
    )
    .with_context(|| format!("logout of slot {name} failed"))?;
    let Response::Logout(logout) = reply else {
        anyhow::bail!("unexpected reply to logout: {reply:?}");
    };
    println!("{}", describe(&logout));
    if let Some(warning) = logout.warning {
        eprintln!("sessctl: warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The line `logout` prints: what happened to the slot, its token and pending logins.
fn describe(logout: &LogoutReply) -> String {
    let cancelled = match logout.cancelled_logins {
        0 => String::new(),
        1 => "; cancelled 1 pending login".to_owned(),
        n => format!("; cancelled {n} pending logins"),
    };
    if logout.cancelled_logins > 0 && !logout.revoked && logout.warning.is_none() {
        // No slot existed: only pending logins were cancelled.
        return format!("no slot {} to log out{cancelled}", logout.name);
    }
    if let Some(dir) = &logout.left_in_claude_code {
        return format!(
            "logged out slot {}: its login is left in Claude Code's store for {}, untouched (Claude Code keeps using it; sessctl no longer refreshes it){cancelled}",
            logout.name,
            dir.display()
        );
    }
    let revoked = if logout.revoked {
        "refresh token revoked at the provider"
    } else if logout.revocation_pending {
        "the provider could not be reached: the refresh token is kept in the credential store and will be revoked later; `sessctl status` lists it until then"
    } else {
        "refresh token NOT revoked at the provider"
    };
    format!("logged out slot {} ({revoked}){cancelled}", logout.name)
}
