//! `sessctl login NAME --provider P --refresh-token-stdin`: hands a refresh token to the
//! daemon, which redeems it at once and stores the rotated result.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::exit::UsageError;
use crate::client;
use crate::paths::Paths;
use crate::protocol::{LoginRequest, Request};
use crate::secret::Secret;

/// Largest refresh token read from stdin; real ones are a few hundred bytes.
const MAX_TOKEN_BYTES: u64 = 16 * 1024;

pub fn run(paths: &Paths, name: &str, provider: String) -> anyhow::Result<ExitCode> {
    let token = read_token()?;
    let reply = client::call(
        &paths.socket,
        Request::Login(LoginRequest {
            name: name.to_owned(),
            provider,
            refresh_token: token,
        }),
    )
    .with_context(|| format!("login of slot {name}"))?;
    super::report(reply)
}

/// Reads one refresh token from stdin: surrounding whitespace trimmed, non-empty, one line.
fn read_token() -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("paste the refresh token, then press Enter and Ctrl-D:");
    }
    let mut raw = String::new();
    stdin
        .lock()
        .take(MAX_TOKEN_BYTES + 1)
        .read_to_string(&mut raw)
        .context("cannot read the refresh token from stdin (it must be UTF-8 text)")?;
    if raw.len() as u64 > MAX_TOKEN_BYTES {
        return Err(UsageError(format!(
            "the refresh token on stdin is over {MAX_TOKEN_BYTES} bytes"
        ))
        .into());
    }
    let token = raw.trim();
    if token.is_empty() {
        return Err(UsageError("no refresh token on stdin".into()).into());
    }
    if token.chars().any(char::is_whitespace) {
        return Err(UsageError(
            "stdin holds more than one word; give only the refresh token".into(),
        )
        .into());
    }
    Ok(Secret::new(token))
}
