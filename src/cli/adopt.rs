//! `sessctl adopt NAME --claude-code [DIR] [--provider P]`: make slot NAME of the login in
//! Claude Code's store for config dir DIR (default `~/.claude`). The credentials stay
//! there; the daemon refreshes them under Claude Code's locks
//! (`crate::daemon::jobs::claude_code`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::client;
use crate::paths::Paths;
use crate::protocol::{AdoptRequest, Request, Response};

#[derive(Debug, clap::Args)]
#[allow(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
pub struct Args {
    /// The slot to create.
    pub name: String,
    /// The Claude Code config dir whose login to adopt (what CLAUDE_CONFIG_DIR is set to);
    /// without a value, ~/.claude.
    #[arg(long = "claude-code", value_name = "DIR", num_args = 0..=1, default_missing_value = "", value_parser = crate::cli::adopt::dir_or_default, required = true)]
    pub claude_code: Option<PathBuf>,
    /// The provider the login belongs to.
    #[arg(long, default_value = "claude")]
    pub provider: String,
}

pub fn run(paths: &Paths, args: Args) -> anyhow::Result<ExitCode> {
    let dir = config_dir(args.claude_code.as_deref().map(Path::new))?;
    let reply = client::call(
        &paths.socket,
        Request::Adopt(AdoptRequest {
            name: args.name.clone(),
            provider: args.provider,
            claude_code: dir.clone(),
        }),
    )
    .with_context(|| format!("adopt of {} as slot {} failed", dir.display(), args.name))?;
    let Response::Login(adopted) = reply else {
        anyhow::bail!("unexpected reply to adopt: {reply:?}");
    };
    let account = adopted.account.as_deref().unwrap_or("unknown account");
    println!(
        "adopted slot {} ({account}); its credentials stay in Claude Code's store in {}",
        adopted.name,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Parses `--claude-code`'s value as given: clap's own path parser refuses the empty value
/// that `--claude-code` without a DIR stands for (`~/.claude`, see [`config_dir`]).
#[allow(clippy::unnecessary_wraps, reason = "clap's value_parser signature")]
pub fn dir_or_default(value: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(value))
}

/// The config dir, absolute and without `.` components or a trailing slash (so one dir
/// is always spelled one way); an empty value means `~/.claude`.
pub fn config_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => directories::BaseDirs::new()
            .context("no home directory")?
            .home_dir()
            .join(".claude"),
    };
    let absolute =
        std::path::absolute(&dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    Ok(absolute.components().collect())
}
