//! The command line: clap types, one file per subcommand, and the exit codes. Errors gain
//! context here (anyhow) and map to the distinct exit codes of [`exit`].

mod adopt;
pub mod daemon;
mod doctor;
pub mod exit;
pub mod fixes;
mod generate;
mod login;
mod logout;
mod logs;
mod ping;
mod refresh;
mod service;
mod shutdown;
mod status;
mod statusline;
mod statusline_args;
mod switch;
mod token;
mod use_;
pub mod when;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::paths::Paths;

/// sessctl keeps several OAuth accounts healthy: a daemon refreshes every slot's tokens
/// before they expire and keeps them in the OS keychain.
#[derive(Debug, Parser)]
#[command(name = "sessctl", version, about, long_about = None)]
#[allow(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
pub struct Cli {
    /// Config file (default: $XDG_CONFIG_HOME/sessctl/config.yaml).
    #[arg(long, global = true, env = "SESSCTL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (what systemd and launchd start).
    Daemon,
    /// Show every slot's health; exit 0 all active, 1 some degraded or inactive, 2 none
    /// active, 3 daemon unreachable.
    Status {
        /// Print the status as JSON, for scripts (every field is documented in the README).
        #[arg(long)]
        json: bool,
    },
    /// Print a valid access token for slot NAME and nothing else (refreshing first when it is
    /// due); exit 4 when the slot needs a new login.
    Token {
        /// The slot.
        name: String,
    },
    /// Refresh slot NAME (or every slot) now and report the outcome.
    Refresh {
        /// The slot (omit with --all).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Refresh every slot.
        #[arg(long)]
        all: bool,
    },
    /// Log slot NAME in (creating or replacing it): in a browser by default, --manual to
    /// paste the code the provider's page shows, --device to enter a code on another
    /// device, or --refresh-token-stdin to redeem a refresh token.
    Login(login::Args),
    /// Revoke slot NAME's refresh token at the provider and delete the slot; cancels a pending
    /// login of NAME, and a revocation the provider cannot take now is retried until done.
    Logout {
        /// The slot.
        name: String,
    },
    /// Make slot NAME of the login in a Claude Code config dir; its credentials stay in
    /// Claude Code's store, and the daemon refreshes them under Claude Code's own locks.
    Adopt(adopt::Args),
    #[allow(
        clippy::doc_markdown,
        reason = "--help text, where backticks would show"
    )]
    /// Run CMD with CLAUDE_CONFIG_DIR set to Claude Code slot NAME's config dir, so Claude
    /// Code uses that account (e.g. `sessctl run work -- claude`).
    Run {
        /// The slot (one made by `sessctl adopt --claude-code`).
        name: String,
        /// The command and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
    #[allow(
        clippy::doc_markdown,
        reason = "--help text, where backticks would show"
    )]
    /// Print the export CLAUDE_CONFIG_DIR=… line for Claude Code slot NAME, for shell
    /// aliases: `eval "$(sessctl env work)"`.
    Env {
        /// The slot (one made by `sessctl adopt --claude-code`).
        name: String,
    },
    /// Move slot NAME's login into a Claude Code config dir's store (default ~/.claude),
    /// and the login there into sessctl's store, so a plain `claude` uses NAME's account.
    Use(use_::Args),
    /// Check that the daemon answers.
    Ping,
    /// Check everything sessctl depends on, one line each with the fix; exit 1 when a
    /// check fails.
    Doctor {
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the daemon.
    Shutdown,
    /// Print the last lines of the daemon's log files, or follow them with -f; exit 66 when
    /// there are none yet.
    Logs(logs::Args),
    /// Print every slot's quota as one short line for a prompt, tmux or Claude Code, from
    /// the cache file alone; always exits 0.
    Statusline(statusline::Args),
    /// Install, remove or inspect the daemon as a user service (systemd on Linux, launchd on
    /// macOS): `sessctl service install` writes the unit for this installation and starts it.
    #[command(subcommand)]
    Service(service::Action),
    /// Print the completion script for SHELL, e.g.
    /// `sessctl completions bash > ~/.local/share/bash-completion/completions/sessctl`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `sessctl man > ~/.local/share/man/man1/sessctl.1`.
    Man,
}

// `sessctl statusline ...` alone: the command a prompt runs on every render, parsed without
// building the whole command tree (about a third of its run time otherwise). Its help is the
// user's, so the about text is written out here, not taken from this comment.
#[derive(Debug, Parser)]
#[command(
    name = "sessctl statusline",
    bin_name = "sessctl statusline",
    about = "Print every slot's quota as one short line for a shell prompt, tmux or Claude Code. \
             Reads only the daemon's cache file, never the network; always exits 0 (a problem \
             shows as a marker in the line).",
    after_help = "Examples:\n  sessctl statusline --format '{name} {5h} ({reset_in:5h})'\n  \
                  tmux: set -g status-right '#(sessctl statusline --no-stdin)'\n\
                  Each flag overrides its statusline.* key in the config; see docs/statusline.md."
)]
#[allow(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
struct StatuslineOnly {
    /// Config file (default: $XDG_CONFIG_HOME/sessctl/config.yaml).
    #[arg(long, env = "SESSCTL_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(flatten)]
    args: statusline::Args,
}

/// Runs `sessctl statusline` from `command_line` (program name, then `statusline`, then its flags).
/// Like the command itself it never fails a prompt: bad flags print a marker and exit 0.
pub fn run_statusline(command_line: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    let command_line: Vec<std::ffi::OsString> = command_line.skip(1).collect();
    let parsed = match statusline_args::parse(command_line.get(1..).unwrap_or_default()) {
        Some(parsed) => Ok(parsed),
        None => StatuslineOnly::try_parse_from(command_line).map(|only| (only.config, only.args)),
    };
    let (config, args) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.print();
            if error.use_stderr() {
                println!("{}", crate::statusline::BAD_ARGUMENTS);
            }
            return ExitCode::SUCCESS;
        }
    };
    match Paths::resolve(config) {
        Ok(paths) => statusline::run(&paths, &args),
        Err(error) => {
            eprintln!("sessctl: {error}");
            println!("{}", crate::statusline::NO_DATA);
            ExitCode::SUCCESS
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Generated from the command tree alone: no config or home directory needed.
    match cli.command {
        Command::Completions { shell } => return generate::completions(shell),
        Command::Man => return generate::man(),
        Command::Service(action) => return service::run(&action),
        _ => {}
    }
    let config_override = cli.config.clone();
    let paths = Paths::resolve(cli.config)?;
    match cli.command {
        Command::Daemon => daemon::exec(config_override),
        Command::Status { json } => status::run(&paths, json),
        Command::Token { name } => token::run(&paths, &name),
        Command::Refresh { name, .. } => refresh::run(&paths, name),
        Command::Login(args) => login::run(&paths, args),
        Command::Logout { name } => logout::run(&paths, &name),
        Command::Adopt(args) => adopt::run(&paths, args),
        Command::Run { name, command } => switch::run(&paths, &name, &command),
        Command::Env { name } => switch::env(&paths, &name),
        Command::Use(args) => use_::run(&paths, args),
        Command::Ping => ping::run(&paths),
        Command::Doctor { json } => doctor::exec(config_override, json),
        Command::Shutdown => shutdown::run(&paths),
        Command::Statusline(args) => Ok(statusline::run(&paths, &args)),
        Command::Logs(args) => logs::run(&paths, &args),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man => generate::man(),
        Command::Service(action) => service::run(&action),
    }
}
