//! `sessctl token NAME`: prints only the access token on stdout (the one place a token is
//! ever printed); warnings and errors go to stderr.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::client;
use crate::paths::Paths;
use crate::protocol::{Request, Response, SlotRef};

pub fn run(paths: &Paths, name: &str) -> anyhow::Result<ExitCode> {
    let reply = client::call(
        &paths.socket,
        Request::Token(SlotRef {
            name: name.to_owned(),
        }),
    )
    .with_context(|| format!("no token for slot {name}"))?;
    let Response::Token(token) = reply else {
        anyhow::bail!("unexpected reply to token: {reply:?}");
    };
    if let Some(warning) = &token.warning {
        eprintln!("sessctl: warning: {warning}");
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", token.access_token.expose())
        .and_then(|()| stdout.flush())
        .context("cannot write the token to stdout")?;
    Ok(ExitCode::SUCCESS)
}
