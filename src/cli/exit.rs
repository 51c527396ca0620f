//! Exit codes, one meaning each, documented in the README.

use std::process::ExitCode;

use crate::client::ClientError;
use crate::protocol::ErrorCode;

/// Success.
pub const OK: u8 = 0;
/// The operation failed (or `status`: some slot is degraded or inactive; `doctor`: some
/// check failed — warnings alone exit 0).
pub const FAILED: u8 = 1;
/// `status`: no slot is active (none configured, or every one inactive).
pub const NONE_ACTIVE: u8 = 2;
/// The daemon is not running or cannot be reached.
pub const UNREACHABLE: u8 = 3;
/// The slot needs a new login (its server-side session is gone).
pub const NEEDS_LOGIN: u8 = 4;
/// Another daemon is already running.
pub const ALREADY_RUNNING: u8 = 5;
/// Client and daemon speak different protocol versions.
pub const VERSION_MISMATCH: u8 = 6;
/// `use`: Claude Code's store cannot take the move now (it holds a login sessctl does not
/// know, or a running Claude Code holds its lock); nothing changed.
pub const CLAUDE_CODE_STORE: u8 = 7;
/// Bad command-line usage (sysexits `EX_USAGE`).
pub const USAGE: u8 = 64;
/// `logs`: there are no log files to show yet (sysexits `EX_NOINPUT`).
pub const NO_LOGS: u8 = 66;
/// The configuration is invalid (sysexits `EX_CONFIG`).
pub const CONFIG: u8 = 78;

/// The exit code for an error that reached `main`.
pub fn for_error(error: &anyhow::Error) -> ExitCode {
    for cause in error.chain() {
        if let Some(client) = cause.downcast_ref::<ClientError>() {
            return ExitCode::from(for_client_error(client));
        }
        if let Some(lib) = cause.downcast_ref::<crate::error::Error>() {
            return ExitCode::from(match lib {
                crate::error::Error::Config(_) => CONFIG,
                crate::error::Error::AlreadyRunning { .. }
                | crate::error::Error::SocketInUse { .. } => ALREADY_RUNNING,
                _ => FAILED,
            });
        }
        if cause.downcast_ref::<crate::config::ConfigError>().is_some() {
            return ExitCode::from(CONFIG);
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return ExitCode::from(USAGE);
        }
    }
    ExitCode::from(FAILED)
}

/// The exit code for a failed daemon call.
pub fn for_client_error(error: &ClientError) -> u8 {
    match error {
        ClientError::NotRunning { .. } | ClientError::Io { .. } => UNREACHABLE,
        ClientError::VersionMismatch { .. } => VERSION_MISMATCH,
        ClientError::BadReply(_) | ClientError::UnsupportedPlatform => FAILED,
        ClientError::Daemon(reply) => for_daemon_error(reply.code),
    }
}

/// The exit code for a typed daemon error.
pub fn for_daemon_error(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::SlotInactive => NEEDS_LOGIN,
        ErrorCode::ClaudeCodeStore => CLAUDE_CODE_STORE,
        ErrorCode::VersionMismatch => VERSION_MISMATCH,
        ErrorCode::InvalidName | ErrorCode::UnknownProvider | ErrorCode::FlowUnsupported => USAGE,
        _ => FAILED,
    }
}

/// A command line that clap accepted but that cannot work (e.g. `login` without a token).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
