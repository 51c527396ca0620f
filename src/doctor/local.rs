//! Doctor's local checks: does the config load, does the daemon answer (and with which
//! protocol), and which providers the slots use.

use std::collections::BTreeSet;

use crate::cli::fixes;
use crate::client::{self, ClientError};
use crate::config::{Config, ConfigError};
use crate::paths::Paths;
use crate::protocol::{PROTOCOL_VERSION, Request, Response, StatusReport};
use crate::state::StateFile;

use super::Check;

/// The config check, and the config when it loads.
pub fn config(paths: &Paths) -> (Check, Option<Config>) {
    let path = &paths.config_file;
    match Config::load(path, paths.config_explicit) {
        Ok(config) if path.exists() => (
            Check::pass("config", format!("{} loads", path.display())),
            Some(config),
        ),
        Ok(config) => (
            Check::pass(
                "config",
                format!("no file at {}: built-in defaults", path.display()),
            ),
            Some(config),
        ),
        Err(error @ ConfigError::Invalid { .. }) => (
            Check::fail(
                "config",
                error.to_string(),
                "correct that line (config/config.yaml in the sources documents every key); the daemon refuses to start until then",
            ),
            None,
        ),
        Err(error) => (
            Check::fail(
                "config",
                error.to_string(),
                "create the file or point --config / SESSCTL_CONFIG at one that exists",
            ),
            None,
        ),
    }
}

/// What doctor learned from the daemon.
pub struct Daemon {
    pub check: Check,
    /// The daemon's pid, when it answered.
    pub pid: Option<u32>,
    /// Its `status`, for the slots it holds.
    pub status: Option<StatusReport>,
}

/// Pings the daemon and, when it answers, asks for its status.
pub fn daemon(paths: &Paths) -> Daemon {
    let socket = paths.socket.display();
    let pong = match client::call(&paths.socket, Request::Ping) {
        Ok(Response::Pong(pong)) => pong,
        Ok(other) => {
            return not_answering(Check::fail(
                "daemon",
                format!("unexpected reply to ping on {socket}: {other:?}"),
                fixes::RESTART_DAEMON,
            ));
        }
        Err(ClientError::NotRunning { .. }) => {
            return not_answering(Check::fail(
                "daemon",
                format!("not running (no answer on {socket})"),
                fixes::START_DAEMON,
            ));
        }
        Err(error) => {
            return not_answering(Check::fail(
                "daemon",
                error.to_string(),
                fixes::RESTART_DAEMON,
            ));
        }
    };
    let status = match client::call(&paths.socket, Request::Status) {
        Ok(Response::Status(report)) => Some(report),
        _ => None,
    };
    let this = env!("CARGO_PKG_VERSION");
    let check = if pong.version == this {
        Check::pass(
            "daemon",
            format!(
                "sessctl {} answers on {socket} (pid {}, protocol {})",
                pong.version, pong.pid, pong.protocol
            ),
        )
    } else {
        Check::warn(
            "daemon",
            format!(
                "the daemon (pid {}) runs sessctl {}, this is {this}; both speak protocol {PROTOCOL_VERSION}",
                pong.pid, pong.version
            ),
            fixes::RESTART_DAEMON,
        )
    };
    Daemon {
        check,
        pid: Some(pong.pid),
        status,
    }
}

fn not_answering(check: Check) -> Daemon {
    Daemon {
        check,
        pid: None,
        status: None,
    }
}

/// The providers the slots use: from the daemon's status when it answered, else from the
/// state file. `Err` says why neither could be read.
pub fn providers_in_use(
    paths: &Paths,
    status: Option<&StatusReport>,
) -> Result<BTreeSet<String>, String> {
    if let Some(status) = status {
        return Ok(status.slots.iter().map(|s| s.provider.clone()).collect());
    }
    StateFile::load(&paths.state_file)
        .map(|state| state.slots.into_values().map(|s| s.provider).collect())
        .map_err(|e| e.to_string())
}
