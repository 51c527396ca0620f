//! `sessctl login NAME --provider P --refresh-token-stdin`: hands a refresh token to the
//! daemon, which redeems it at once and stores the rotated result.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::exit::UsageError;
use crate::client;
use crate::paths::Paths;
use crate::protocol::{LoginAction, LoginReply, LoginRequest, Request, Response};
use crate::secret::Secret;

/// Largest refresh token read from stdin; real ones are a few hundred bytes.
const MAX_TOKEN_BYTES: u64 = 16 * 1024;

pub fn run(
    paths: &Paths,
    name: String,
    provider: String,
    refresh_token_stdin: bool,
) -> anyhow::Result<ExitCode> {
    if let Err(message) = crate::slot_name::validate(&name) {
        return Err(UsageError(message).into());
    }
    if !refresh_token_stdin {
        return Err(UsageError(
            "pass the refresh token on stdin with --refresh-token-stdin (interactive login is not available yet)".into(),
        )
        .into());
    }
    let token = read_token()?;
    let reply = client::call(
        &paths.socket,
        Request::Login(LoginRequest {
            name: name.clone(),
            provider,
            refresh_token: token,
        }),
    )
    .with_context(|| format!("login of slot {name} failed"))?;
    let Response::Login(login) = reply else {
        anyhow::bail!("unexpected reply to login: {reply:?}");
    };
    println!("{}", describe(&login));
    if let Some(warning) = login.warning {
        eprintln!("sessctl: warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The line that says what the login did: which slot, created or updated, which account.
fn describe(login: &LoginReply) -> String {
    let account = login.account.as_deref().unwrap_or("account unknown");
    let name = &login.name;
    let mut line = match (&login.action, &login.requested_name) {
        (Some(LoginAction::UpdatedAccountSlot), Some(typed)) => {
            format!(
                "account {account} already has slot {name}; updated it (no slot {typed} created)"
            )
        }
        _ if login.created => format!("created slot {name} ({account})"),
        _ => format!("updated slot {name} ({account})"),
    };
    if login.reactivated {
        line.push_str("; it was inactive and is active again");
    }
    line
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(created: bool, action: LoginAction, typed: Option<&str>) -> LoginReply {
        LoginReply {
            name: "work".into(),
            account: Some("a@x".into()),
            created,
            warning: None,
            action: Some(action),
            requested_name: typed.map(str::to_owned),
            reactivated: false,
        }
    }

    #[test]
    fn the_output_names_the_slot_actually_used_and_the_account() {
        assert_eq!(
            describe(&reply(true, LoginAction::Created, None)),
            "created slot work (a@x)"
        );
        assert_eq!(
            describe(&reply(false, LoginAction::Updated, None)),
            "updated slot work (a@x)"
        );
        assert_eq!(
            describe(&reply(
                false,
                LoginAction::UpdatedAccountSlot,
                Some("personal")
            )),
            "account a@x already has slot work; updated it (no slot personal created)"
        );
        let mut reactivated = reply(false, LoginAction::Updated, None);
        reactivated.reactivated = true;
        assert!(describe(&reactivated).ends_with("it was inactive and is active again"));
    }

    #[test]
    fn a_reply_from_an_older_daemon_still_reads() {
        let old: LoginReply = serde_json::from_str(
            r#"{"name":"work","account":null,"created":false,"warning":null}"#,
        )
        .unwrap();
        assert_eq!(describe(&old), "updated slot work (account unknown)");
    }
}
