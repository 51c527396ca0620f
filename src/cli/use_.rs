//! `sessctl use NAME [--claude-code DIR]`: for a single `~/.claude` shared by several
//! accounts, moves slot NAME's login into DIR's Claude Code store and the login there out
//! into sessctl's store (`crate::daemon::core::moving`), so a plain `claude` runs on NAME's
//! account. Exit code [`super::exit::CLAUDE_CODE_STORE`] when Claude Code's store cannot
//! take the move now (nothing changed).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::client;
use crate::paths::Paths;
use crate::protocol::{Request, Response, UseRequest};

#[derive(Debug, clap::Args)]
#[allow(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
pub struct Args {
    /// The slot whose account Claude Code is to use.
    pub name: String,
    /// The Claude Code config dir to move it into (what CLAUDE_CONFIG_DIR is set to);
    /// without it, ~/.claude.
    #[arg(long = "claude-code", value_name = "DIR")]
    pub claude_code: Option<PathBuf>,
}

pub fn run(paths: &Paths, args: Args) -> anyhow::Result<ExitCode> {
    let Args { name, claude_code } = args;
    let dir = super::adopt::config_dir(claude_code.as_deref())?;
    let reply = client::call(
        &paths.socket,
        Request::Use(UseRequest {
            name: name.clone(),
            claude_code: dir.clone(),
        }),
    )
    .with_context(|| format!("use of slot {name} in {} failed", dir.display()))?;
    let Response::Use(used) = reply else {
        anyhow::bail!("unexpected reply to use: {reply:?}");
    };
    if used.already {
        println!(
            "slot {} is already the login in Claude Code's store in {}; nothing to do",
            used.name,
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "slot {} is now the login in Claude Code's store in {}",
        used.name,
        dir.display()
    );
    if let Some(previous) = &used.previous {
        println!(
            "slot {previous}'s login moved to sessctl's store; the daemon keeps refreshing it (`sessctl use {previous}` moves it back)"
        );
    }
    println!(
        "Claude Code sessions already running keep their current token until they next read the store; start new ones to switch"
    );
    Ok(ExitCode::SUCCESS)
}
