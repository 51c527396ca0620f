//! Logging set-up. The daemon logs to stderr (journald or launchd capture it) and to
//! rotating files in the log directory (`log_rotation`, `log_retention` in the config); the
//! CLI logs warnings to stderr only. Nothing logged ever holds a token: tokens are
//! [`crate::secret::Secret`]s, whose `Debug`/`Display` are redacted.
//!
//! The level comes from `SESSCTL_LOG`, an `EnvFilter` string (`RUST_LOG` is not read: a
//! value meant for other Rust programs must not turn on sessctl's, or its HTTP crates',
//! debug output). A bare level (`debug`) applies to sessctl's own targets only; other crates
//! stay at `warn` unless a directive names them (`debug,hyper=trace`). An invalid value is
//! reported on stderr and in the log, and the default is used: a daemon that refused to
//! start over a log setting would stop refreshing tokens, which is worse.
//!
//! Retention is ours, not tracing-appender's: its `max_log_files` deletes any file whose
//! name merely starts with `sessctl` and ends with `log` (`sessctl-notes.log` too), orders
//! by file birth time (wrong for a copied or restored file), and with one file kept deletes
//! the very file it reopens after a restart. [`crate::logfiles::prune`] deletes only the
//! appender's own names, oldest by the date in the name, never the current file; it runs at
//! start-up and on the first write after each rotation (see [`PruningAppender`]).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::config::LogRotation;
use crate::logfiles;

/// The environment variable holding the log filter.
pub const LEVEL_VAR: &str = "SESSCTL_LOG";
/// The daemon's level for sessctl's own targets when `SESSCTL_LOG` is unset or invalid:
/// every refresh, login, failure and state change; no per-request chatter (a successful
/// usage fetch is `debug`: with many slots it would be most of the log).
const DAEMON_DEFAULT_LEVEL: &str = "info";
/// The CLI's level: it prints its results itself; logs are for trouble only.
const CLI_DEFAULT_LEVEL: &str = "warn";
/// Level of every other crate (HTTP, TLS, D-Bus) unless a directive names it.
const DEPENDENCY_LEVEL: &str = "warn";
/// The target prefix of every sessctl event.
const OWN_TARGET: &str = "sessctl";

/// Turns a `SESSCTL_LOG` value into filter directives: dependencies at `warn`, a bare
/// level applied to sessctl's targets, every named directive kept as written.
pub fn filter_directives(value: &str) -> String {
    let mut directives = vec![DEPENDENCY_LEVEL.to_owned()];
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if directive.parse::<LevelFilter>().is_ok() {
            directives.push(format!("{OWN_TARGET}={directive}"));
        } else {
            directives.push(directive.to_owned());
        }
    }
    directives.join(",")
}

/// The filter from `value` (the content of `SESSCTL_LOG`, if set), or the default with
/// `default_level` and a warning saying why the value was not used.
fn filter_for(value: Option<&str>, default_level: &str) -> (EnvFilter, Option<String>) {
    let default = || EnvFilter::new(filter_directives(default_level));
    let Some(value) = value else {
        return (default(), None);
    };
    match EnvFilter::builder().parse(filter_directives(value)) {
        Ok(filter) => (filter, None),
        Err(e) => (
            default(),
            Some(format!(
                "{LEVEL_VAR}={value:?} is not a valid log filter ({e}); using the default \
                 ({default_level}); write a level such as debug, or directives such as \
                 sessctl::daemon=debug,warn"
            )),
        ),
    }
}

/// `SESSCTL_LOG` as text; a value that is not UTF-8 counts as invalid.
fn level_var() -> Option<String> {
    std::env::var_os(LEVEL_VAR).map(|v| v.to_string_lossy().into_owned())
}

/// How the daemon's log files rotate and how many are kept (from the config).
#[derive(Debug, Clone, Copy)]
pub struct FileSettings {
    pub rotation: LogRotation,
    pub retention: usize,
}

/// Lines queued for the log-file writer thread before new ones are dropped (as
/// tracing-appender's default of 128,000 does, so a stalled disk never stalls the daemon;
/// stderr still gets every line). The queue is allocated and initialized whole at start:
/// the default cost 4 MB of resident memory, most of an idle daemon's heap.
const FILE_QUEUE_LINES: usize = 4096;

/// Sets up the daemon's logging; keep the guard alive until exit so buffered lines are
/// flushed. Falls back to stderr alone (saying so) when the log directory is unusable.
pub fn init_daemon(log_dir: &Path, settings: FileSettings) -> Option<WorkerGuard> {
    let (filter, filter_warning) = filter_for(level_var().as_deref(), DAEMON_DEFAULT_LEVEL);
    let guard = match PruningAppender::open(log_dir, settings) {
        Ok((appender, deleted)) => {
            let (file, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(FILE_QUEUE_LINES)
                .finish(appender);
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr.and(file))
                .with_ansi(false)
                .try_init();
            if !deleted.is_empty() {
                tracing::info!(
                    deleted = deleted.len(),
                    log_retention = settings.retention,
                    "deleted old log files"
                );
            }
            Some(guard)
        }
        Err(e) => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .try_init();
            tracing::error!(
                "cannot write logs to {}: {e}; logging to stderr only",
                log_dir.display()
            );
            None
        }
    };
    if let Some(warning) = filter_warning {
        tracing::warn!("{warning}");
    }
    guard
}

/// Sets up the CLI's logging: warnings and errors on stderr (`SESSCTL_LOG` may say more).
pub fn init_cli() {
    let (filter, warning) = filter_for(level_var().as_deref(), CLI_DEFAULT_LEVEL);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
}

/// The rolling file appender with our retention: after the first write of each new period
/// (the write that made tracing-appender open the new file) it prunes the directory. It runs
/// on the non-blocking writer's thread, so it never holds up the daemon; it reports problems
/// on stderr, not through `tracing` (which would feed its own queue).
pub struct PruningAppender {
    inner: RollingFileAppender,
    dir: PathBuf,
    settings: FileSettings,
    /// The start of the next period; `None` when the file never rotates.
    next_rotation: Option<DateTime<Utc>>,
}

impl PruningAppender {
    /// Creates the directory (0700), prunes it, and opens the current file. Returns the
    /// appender and the files pruned.
    ///
    /// # Errors
    /// The directory cannot be created or read, or the file cannot be opened.
    pub fn open(dir: &Path, settings: FileSettings) -> Result<(Self, Vec<PathBuf>), String> {
        crate::fsutil::create_private_dir(dir).map_err(|e| e.to_string())?;
        let now = Utc::now();
        let current = logfiles::current_file_name(settings.rotation, now);
        let deleted =
            logfiles::prune(dir, settings.retention, &current).map_err(|e| e.to_string())?;
        let inner = tracing_appender::rolling::Builder::new()
            .rotation(appender_rotation(settings.rotation))
            .filename_prefix(logfiles::FILE_PREFIX)
            .filename_suffix(logfiles::FILE_SUFFIX)
            .build(dir)
            .map_err(|e| e.to_string())?;
        make_private(&dir.join(&current));
        let appender = PruningAppender {
            inner,
            dir: dir.to_path_buf(),
            settings,
            next_rotation: logfiles::next_rotation_at(settings.rotation, now),
        };
        Ok((appender, deleted))
    }

    fn prune_if_rotated(&mut self) {
        let now = Utc::now();
        if self.next_rotation.is_none_or(|at| now < at) {
            return;
        }
        self.next_rotation = logfiles::next_rotation_at(self.settings.rotation, now);
        let current = logfiles::current_file_name(self.settings.rotation, now);
        make_private(&self.dir.join(&current));
        if let Err(e) = logfiles::prune(&self.dir, self.settings.retention, &current) {
            eprintln!(
                "sessctl: cannot prune old logs in {}: {e}",
                self.dir.display()
            );
        }
    }
}

impl Write for PruningAppender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.prune_if_rotated();
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes a log file 0600, like every other file sessctl writes: its lines name accounts
/// (never tokens). tracing-appender creates files with the default mode; this runs right
/// after it opens each one, and the directory is 0700 meanwhile.
#[cfg(unix)]
fn make_private(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let private = std::fs::Permissions::from_mode(0o600);
    if let Err(e) = std::fs::set_permissions(file, private)
        && e.kind() != io::ErrorKind::NotFound
    {
        eprintln!("sessctl: cannot make {} private: {e}", file.display());
    }
}

/// Elsewhere files keep the platform's default permissions (see `fsutil`).
#[cfg(not(unix))]
fn make_private(_file: &Path) {}

fn appender_rotation(rotation: LogRotation) -> Rotation {
    match rotation {
        LogRotation::Daily => Rotation::DAILY,
        LogRotation::Hourly => Rotation::HOURLY,
        LogRotation::Minutely => Rotation::MINUTELY,
        LogRotation::Never => Rotation::NEVER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_applies_to_sessctl_and_dependencies_stay_at_warn() {
        assert_eq!(filter_directives("info"), "warn,sessctl=info");
        assert_eq!(filter_directives("DEBUG"), "warn,sessctl=DEBUG");
        assert_eq!(
            filter_directives(" debug , hyper=trace,"),
            "warn,sessctl=debug,hyper=trace"
        );
        assert_eq!(
            filter_directives("sessctl::daemon=trace"),
            "warn,sessctl::daemon=trace"
        );
        assert_eq!(filter_directives(""), "warn");
    }

    #[test]
    fn an_invalid_filter_falls_back_to_the_default_with_a_warning() {
        for bad in ["sessctl=loud", "=info", "[{"] {
            let (filter, warning) = filter_for(Some(bad), "info");
            let warning = warning.unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(warning.contains("SESSCTL_LOG") && warning.contains("default"));
            assert_eq!(
                filter.to_string(),
                EnvFilter::new("warn,sessctl=info").to_string()
            );
        }
        for good in ["debug", "off", "sessctl::daemon::jobs=debug,info", "warn"] {
            assert!(filter_for(Some(good), "info").1.is_none(), "{good}");
        }
        assert!(filter_for(None, "info").1.is_none());
    }

    /// Our pruning must recognise exactly the files tracing-appender writes.
    #[test]
    fn the_appenders_file_names_are_the_ones_logfiles_expects() {
        for rotation in [
            LogRotation::Daily,
            LogRotation::Hourly,
            LogRotation::Minutely,
            LogRotation::Never,
        ] {
            let dir = crate::test_dirs::fresh(&format!("logging-{rotation:?}"));
            let before = Utc::now();
            let settings = FileSettings {
                rotation,
                retention: 2,
            };
            let (mut appender, _) = PruningAppender::open(&dir, settings).unwrap();
            appender.write_all(b"line\n").unwrap();
            let after = Utc::now();
            let files = logfiles::list(&dir).unwrap();
            assert!(!files.is_empty());
            for file in files {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    [before, after]
                        .iter()
                        .any(|t| logfiles::current_file_name(rotation, *t) == name),
                    "{rotation:?}: {name}"
                );
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
