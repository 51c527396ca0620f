//! The library's error type. Each module has its own typed error; this enum gathers them
//! for callers that cross modules (the daemon's start-up, the CLI edge adds anyhow context).

use std::path::PathBuf;

/// Any error the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot find the home directory; set HOME")]
    NoHome,
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("already running (pid {pid})")]
    AlreadyRunning { pid: String },
    /// Another daemon, over another state directory, answers on the same socket path.
    #[error(
        "another daemon (pid {pid}) over another state directory already listens on {}; give each state directory its own XDG_RUNTIME_DIR",
        socket.display()
    )]
    SocketInUse { socket: PathBuf, pid: String },
    /// The daemon listens on a Unix socket, which this platform (Windows) lacks.
    #[error("sessctl does not run on Windows yet: its daemon listens on a Unix socket")]
    UnsupportedPlatform,
}

impl Error {
    /// An I/O error that names what was being done and to which file.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
