//! `sessctl daemon`: the daemon lives in its own binary, `sessctl-daemon`, installed beside
//! `sessctl`. `sessctl daemon` replaces itself with it (exec: same pid, so systemd, launchd
//! and `already running (pid N)` see one process).
//!
//! Why two binaries: `sessctl` runs on every prompt render (`statusline`) and for every
//! `status`; linking the daemon's tokio, rustls, reqwest and keyring into it made each start
//! cost about 1 ms more (relocations and page faults of a 15 MB binary). The daemon's code is
//! reachable only from `sessctl-daemon`'s `main`, so the linker leaves it out of `sessctl`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::config::Config;
use crate::paths::Paths;

/// File name of the daemon binary, looked for beside the running `sessctl`.
pub const DAEMON_BINARY: &str = "sessctl-daemon";

/// `sessctl daemon`: execs `sessctl-daemon` with the same config override. Returns only on
/// failure.
pub fn exec(config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    exec_daemon_binary(config, &[])
}

/// Replaces this process with `sessctl-daemon [--config PATH] ARGS...`. Returns only on
/// failure.
pub fn exec_daemon_binary(config: Option<PathBuf>, args: &[&str]) -> anyhow::Result<ExitCode> {
    let sibling = std::env::current_exe()
        .context("cannot find where sessctl is installed")?
        .with_file_name(DAEMON_BINARY);
    let mut command = std::process::Command::new(&sibling);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.args(args);
    run_in_place(&mut command).with_context(|| {
        format!(
            "cannot start the daemon {} (it is installed beside sessctl: reinstall with `cargo install --path .`)",
            sibling.display()
        )
    })
}

/// Replaces this process with `command`; returns only why it could not.
#[cfg(unix)]
fn run_in_place(command: &mut std::process::Command) -> std::io::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    Err(command.exec())
}

/// Without `exec`, runs `command` as a child and passes its exit status on.
#[cfg(not(unix))]
fn run_in_place(command: &mut std::process::Command) -> std::io::Result<ExitCode> {
    let status = command.status()?;
    let code = status.code().and_then(|c| u8::try_from(c).ok());
    Ok(ExitCode::from(code.unwrap_or(1)))
}

/// The command line of `sessctl-daemon`.
#[derive(Debug, Parser)]
#[command(
    name = "sessctl-daemon",
    version,
    about = "The sessctl daemon (started by `sessctl daemon`)"
)]
#[allow(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
struct DaemonArgs {
    /// Config file (default: $XDG_CONFIG_HOME/sessctl/config.yaml).
    #[arg(long, global = true, env = "SESSCTL_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<DaemonCommand>,
}

/// What `sessctl-daemon` does besides running the daemon (its default).
#[derive(Debug, clap::Subcommand)]
enum DaemonCommand {
    /// Check the config, daemon, credential store, token endpoints, notifications, service
    /// and clock (what `sessctl doctor` runs).
    Doctor {
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `main` of `sessctl-daemon`: runs the daemon in the foreground, logging to stderr and to
/// the rotating log files; maps failures to the documented exit codes.
pub fn main(command_line: impl Iterator<Item = OsString>) -> ExitCode {
    let args = match DaemonArgs::try_parse_from(command_line) {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(super::exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let paths = Paths::resolve(args.config).map_err(anyhow::Error::from);
    match paths.and_then(|paths| match args.command {
        None => run(&paths),
        Some(DaemonCommand::Doctor { json }) => Ok(crate::doctor::main(&paths, json)),
    }) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sessctl: {error:#}");
            super::exit::for_error(&error)
        }
    }
}

fn run(paths: &Paths) -> anyhow::Result<ExitCode> {
    // The config says how log files rotate, so it is read first; a config that is refused
    // still gets its error into the log files (with the default rotation).
    let loaded = Config::load(&paths.config_file, paths.config_explicit);
    let defaults = Config::default();
    let config = loaded.as_ref().unwrap_or(&defaults);
    let _guard = crate::logging::init_daemon(
        &paths.log_dir,
        crate::logging::FileSettings {
            rotation: config.log_rotation,
            retention: config.log_retention,
        },
    );
    let config = loaded
        .inspect_err(|e| tracing::error!("refusing to start: {e}"))
        .map_err(crate::error::Error::from)
        .context("refusing to start")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(crate::daemon::run(config, paths.clone()));
    if let Err(error) = &result {
        tracing::error!("daemon stopped: {error}");
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
