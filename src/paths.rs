//! Every path sessctl uses, in one place. Linux follows XDG (`$XDG_CONFIG_HOME`,
//! `$XDG_STATE_HOME`, `$XDG_CACHE_HOME`, `$XDG_RUNTIME_DIR`); macOS uses the platform
//! directories. Tests point HOME and the XDG variables at a temporary directory.

use std::path::PathBuf;

/// Resolved locations of sessctl's files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The config file (it may not exist: defaults apply).
    pub config_file: PathBuf,
    /// True when the config path was given explicitly (`--config`/`SESSCTL_CONFIG`): then a
    /// missing file is an error, not "use defaults".
    pub config_explicit: bool,
    /// Directory of the state file, logs and the file credential store.
    pub state_dir: PathBuf,
    /// The slot registry and non-secret per-slot state.
    pub state_file: PathBuf,
    /// The opt-in plaintext credential store (`credential_store: file`).
    pub credentials_file: PathBuf,
    /// Rotating daemon logs.
    pub log_dir: PathBuf,
    /// Cache directory (quota cache).
    pub cache_dir: PathBuf,
    /// 0700 directory holding the socket and the single-instance lock.
    pub runtime_dir: PathBuf,
    /// The daemon's Unix socket.
    pub socket: PathBuf,
    /// The single-instance lock file (holds the daemon's pid).
    pub lock_file: PathBuf,
}

impl Paths {
    /// Resolves all paths; `config_override` comes from `--config` or `SESSCTL_CONFIG`.
    pub fn resolve(config_override: Option<PathBuf>) -> Result<Paths, crate::error::Error> {
        todo!("helper {config_override:?}")
    }
}
