//! `sessctl login NAME --provider P`: the user-facing half of every login flow. The daemon
//! does all OAuth traffic and keeps the tokens; the CLI opens the browser, listens for the
//! loopback redirect, reads a pasted code or shows a device code, and never sees a token.
//!
//! - default: authorization code with PKCE, redirected to a loopback listener ([`loopback`])
//! - `--manual`: the provider's page shows a code to paste ([`paste`])
//! - `--device`: the RFC 8628 device grant ([`device`])
//! - `--refresh-token-stdin`: redeem a refresh token ([`refresh_token`])

mod browser;
mod device;
mod headless;
mod listeners;
mod loopback;
mod paste;
mod refresh_token;

use std::fmt::Write as _;
#[cfg(unix)]
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::exit::UsageError;
use crate::client;
use crate::paths::Paths;
use crate::protocol::{
    ErrorCode, FlowRef, LoginAction, LoginBegin, LoginBegun, LoginComplete, LoginFlow, LoginReply,
    Request, Response,
};
use crate::secret::Secret;

/// `sessctl login` arguments.
#[derive(Debug, clap::Args)]
#[allow(
    clippy::struct_excessive_bools,
    clippy::doc_markdown,
    reason = "each is a command-line switch clap parses; conflicts are declared on the flags; clap prints the doc comments as --help text, where backticks would show"
)]
pub struct Args {
    /// The slot: 1-32 characters of a-z, 0-9, '_' and '-'.
    pub name: String,
    /// The provider (a name under `providers:` in the config, or the built-in `claude`).
    #[arg(long)]
    pub provider: String,
    /// Paste the code the provider's page shows after login (no local browser needed: open
    /// the URL on any machine).
    #[arg(long, conflicts_with_all = ["device", "refresh_token_stdin"])]
    pub manual: bool,
    /// Device login (RFC 8628): enter a short code on any device's browser.
    #[arg(long, conflicts_with = "refresh_token_stdin")]
    pub device: bool,
    /// Read a refresh token from stdin instead of logging in interactively.
    #[arg(long)]
    pub refresh_token_stdin: bool,
    /// Give up after this long (e.g. 90s, 5m, 1h).
    #[arg(long, default_value = "5m", value_parser = parse_timeout, value_name = "DURATION")]
    pub timeout: Duration,
    /// Do not start a browser; only print the URL to open.
    #[arg(long, conflicts_with_all = ["device", "refresh_token_stdin"])]
    pub no_browser: bool,
    /// Put the login into Claude Code's store for config dir DIR (what CLAUDE_CONFIG_DIR
    /// is set to; created when missing; without a value, ~/.claude) instead of sessctl's
    /// own store. A refresh token from stdin cannot go there: some other program holds it.
    #[arg(long = "claude-code", value_name = "DIR", num_args = 0..=1, default_missing_value = "", value_parser = crate::cli::adopt::dir_or_default, conflicts_with = "refresh_token_stdin")]
    pub claude_code: Option<std::path::PathBuf>,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = crate::config::parse_duration(text)?;
    if timeout < Duration::from_secs(1) {
        return Err("the timeout must be at least 1s".into());
    }
    Ok(timeout)
}

/// The login did not finish within `--timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the login did not finish within {}s and was cancelled; run the command again (a longer --timeout gives more time)", .0.as_secs())]
pub struct TimedOut(pub Duration);

pub fn run(paths: &Paths, args: Args) -> anyhow::Result<ExitCode> {
    if let Err(message) = crate::slot_name::validate(&args.name) {
        return Err(UsageError(message).into());
    }
    if args.refresh_token_stdin {
        return refresh_token::run(paths, &args.name, args.provider);
    }
    let deadline = Instant::now() + args.timeout;
    let flow = if args.device {
        headless::Flow::Device
    } else if args.manual {
        headless::Flow::Manual
    } else if args.no_browser {
        headless::Flow::Loopback
    } else {
        let browser = crate::relogin::browser_available(|v| std::env::var_os(v));
        let provider = headless::provider(paths, &args.provider);
        let (flow, note) = headless::choose(provider.as_ref(), browser);
        if let Some(note) = note {
            eprintln!("{note}");
        }
        flow
    };
    match flow {
        headless::Flow::Device => device::run(paths, &args, deadline),
        headless::Flow::Manual => paste::run(paths, &args, deadline),
        headless::Flow::Loopback => loopback::run(paths, &args, deadline),
    }
}

/// Asks the daemon to begin a login of `flow`.
fn begin(paths: &Paths, args: &Args, flow: LoginFlow) -> anyhow::Result<LoginBegun> {
    let reply = client::call(
        &paths.socket,
        Request::LoginBegin(LoginBegin {
            name: args.name.clone(),
            provider: args.provider.clone(),
            flow,
            timeout_secs: args.timeout.as_secs().max(1),
            claude_code: claude_code_dir(args)?,
        }),
    )
    .with_context(|| format!("login of slot {}", args.name))?;
    match reply {
        Response::LoginBegun(begun) => Ok(begun),
        other => anyhow::bail!("unexpected reply to login_begin: {other:?}"),
    }
}

/// `--claude-code`'s config dir, absolute (as `sessctl adopt` spells it).
fn claude_code_dir(args: &Args) -> anyhow::Result<Option<std::path::PathBuf>> {
    args.claude_code
        .as_deref()
        .map(|dir| crate::cli::adopt::config_dir(Some(dir)))
        .transpose()
}

/// Hands the code and state to the daemon, which checks the state and exchanges the code.
fn complete(
    paths: &Paths,
    name: &str,
    flow_id: &str,
    code: Secret,
    state: String,
) -> anyhow::Result<Response> {
    client::call(
        &paths.socket,
        Request::LoginComplete(LoginComplete {
            flow_id: flow_id.to_owned(),
            code,
            state,
        }),
    )
    .with_context(|| format!("login of slot {name}"))
}

/// How often a browser or pasted-code login asks the daemon whether a logout cancelled it.
const CANCEL_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Fails with the daemon's reason when a logout cancelled login `flow_id`. Any other
/// answer (pending; an older daemon that cannot tell; a socket hiccup) lets the wait go on.
fn check_not_cancelled(paths: &Paths, flow_id: &str) -> anyhow::Result<()> {
    let request = Request::LoginWait(FlowRef {
        flow_id: flow_id.to_owned(),
    });
    match client::call(&paths.socket, request) {
        Err(client::ClientError::Daemon(error)) if error.code == ErrorCode::LoginFailed => {
            // The daemon's reason says what happened; no second "failed" in front of it.
            Err(anyhow::Error::new(error))
        }
        _ => Ok(()),
    }
}

/// Tells the daemon to forget a login the CLI gave up on (best effort: it expires anyway).
fn cancel(paths: &Paths, flow_id: &str) {
    let request = Request::LoginCancel(FlowRef {
        flow_id: flow_id.to_owned(),
    });
    if let Err(e) = client::call(&paths.socket, request) {
        tracing::debug!("cancelling the login: {e}");
    }
}

/// The `state` query parameter of an authorization URL: what the redirect must bring back.
fn state_of(authorize_url: &str) -> Option<String> {
    let url = url::Url::parse(authorize_url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
}

/// Prints a finished login's outcome.
fn report(reply: Response) -> anyhow::Result<ExitCode> {
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
    if let Some(dir) = &login.claude_code_dir {
        let _ = write!(
            line,
            "\nits credentials are in Claude Code's store in {}: start Claude Code on it with `sessctl run {name} -- claude` (or CLAUDE_CONFIG_DIR={} claude)",
            dir.display(),
            dir.display()
        );
    }
    line
}

/// Waits until `fd` has input (true) or `timeout` passes (false); an interrupted wait counts
/// as "not yet". `what` names the wait in an error.
#[cfg(unix)]
fn readable(fd: &impl AsRawFd, timeout: Duration, what: &str) -> anyhow::Result<bool> {
    let mut fds = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
    let ready = unsafe { libc::poll(&raw mut fds, 1, millis.max(1)) };
    if ready < 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(error).with_context(|| what.to_owned());
    }
    Ok(ready > 0)
}

/// Login needs the daemon, which does not run on Windows yet.
#[cfg(not(unix))]
fn readable<T>(_source: &T, _timeout: Duration, _what: &str) -> anyhow::Result<bool> {
    Err(crate::error::Error::UnsupportedPlatform.into())
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
            claude_code_dir: None,
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
        let mut claude_code = reply(true, LoginAction::Created, None);
        claude_code.claude_code_dir = Some("/h/.claude-work".into());
        assert_eq!(
            describe(&claude_code),
            "created slot work (a@x)\nits credentials are in Claude Code's store in /h/.claude-work: start Claude Code on it with `sessctl run work -- claude` (or CLAUDE_CONFIG_DIR=/h/.claude-work claude)"
        );
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
