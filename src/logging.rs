//! Logging. The daemon logs to stderr (journald or launchd capture it) and to daily-rotated
//! files in the state directory, keeping a week; the CLI logs warnings to stderr only.
//! `RUST_LOG` overrides the level. Nothing logged ever holds a token: tokens are
//! [`crate::secret::Secret`]s, whose `Debug`/`Display` are redacted.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Daily log files kept: a week of history.
const LOG_FILES_KEPT: usize = 7;

/// Sets up the daemon's logging; keep the guard alive until exit so buffered lines are
/// flushed. Falls back to stderr alone (saying so) when the log directory is unusable.
pub fn init_daemon(log_dir: &Path) -> Option<WorkerGuard> {
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("sessctl=info"));
    let appender = crate::fsutil::create_private_dir(log_dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("sessctl")
                .filename_suffix("log")
                .max_log_files(LOG_FILES_KEPT)
                .build(log_dir)
                .map_err(|e| e.to_string())
        });
    match appender {
        Ok(appender) => {
            let (file, guard) = tracing_appender::non_blocking(appender);
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::io::stderr.and(file))
                .with_ansi(false)
                .try_init();
            Some(guard)
        }
        Err(e) => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::io::stderr)
                .try_init();
            tracing::error!(
                "cannot write logs to {}: {e}; logging to stderr only",
                log_dir.display()
            );
            None
        }
    }
}

/// Sets up the CLI's logging: warnings and errors on stderr.
pub fn init_cli() {
    let filter = EnvFilter::try_from_env("SESSCTL_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
