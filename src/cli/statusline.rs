//! `sessctl statusline`: prints the quota cache as one line for a prompt, a tmux bar or
//! Claude Code. Reads the config, the cache file and (from Claude Code) stdin; nothing else.
//!
//! It never breaks a prompt: every failure (no cache, a corrupt one, a bad config, even a
//! panic) prints a short `sessctl: ...` marker, with any detail on stderr, and exits 0. It
//! never opens the daemon's socket, starts an async runtime or touches the network.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use chrono::{DateTime, Local, Utc};

use std::collections::BTreeMap;

use crate::cache::{CacheError, QuotaCache, SlotQuota, Window};
use crate::cache_lines;
use crate::config::Config;
use crate::paths::Paths;
use crate::statusline::attribute::{self, Candidate, Chosen, SessionDir};
use crate::statusline::{self, ColorChoice, Options, Template, claude_code};

/// A cache file bigger than this is not one the daemon wrote (200 slots take ~100 KiB);
/// refusing it keeps a junk file from stalling the prompt.
const CACHE_MAX: u64 = 16 * 1024 * 1024;

/// The flags of `sessctl statusline`; each overrides its `statusline.*` config key.
#[derive(Debug, Default, clap::Args)]
#[allow(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
pub struct Args {
    /// Per-slot template, e.g. '{name} {5h} ({reset:5h})'; placeholders: {name} {account}
    /// {state} {stale} {current} {windows} {5h} {7d} {window:W} {reset:W} {reset_in:W}.
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Text between two slots (default: two spaces).
    #[arg(long, value_name = "TEXT")]
    pub separator: Option<String>,
    /// Plain ASCII output, for terminals without emoji.
    #[arg(long)]
    pub ascii: bool,
    /// Colour high utilization: auto (only on a terminal), always, never. NO_COLOR wins.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
    /// The slot Claude Code's stdin figures belong to (overrides
    /// statusline.claude_code_slot).
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    /// Never read stdin (Claude Code's JSON).
    #[arg(long)]
    pub no_stdin: bool,
}

/// Prints the line; always exits 0.
pub fn run(paths: &Paths, args: &Args) -> ExitCode {
    let mut line = std::panic::catch_unwind(|| line(paths, args))
        .unwrap_or_else(|_| statusline::INTERNAL_ERROR.to_owned());
    line.push('\n');
    // One write; a closed stdout (the prompt went away) is not worth an error.
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
    ExitCode::SUCCESS
}

/// The line to print, markers included.
fn line(paths: &Paths, args: &Args) -> String {
    let config = match Config::load(&paths.config_file, paths.config_explicit) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sessctl: {e}");
            return statusline::CONFIG_ERROR.to_owned();
        }
    };
    let opts = match options(&config, args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("sessctl: --format: {e}");
            return statusline::BAD_FORMAT.to_owned();
        }
    };
    let now = Utc::now();
    let claude = if args.no_stdin {
        None
    } else {
        claude_code::read_stdin_bounded().and_then(|b| claude_code::parse_rate_limits(&b))
    };
    let named = args
        .slot
        .as_deref()
        .or(config.statusline.claude_code_slot.as_deref());
    let claude = claude.as_ref().map(|windows| (windows, named));
    if let Some(line) = line_from_lines_file(paths, &opts, now, claude) {
        return line;
    }
    let cache = read_cache(paths);
    let (cache, current) = with_claude_code(cache, claude, now);
    let line = match &cache {
        Ok(cache) if opts.template.uses_local_time() => {
            statusline::render_line_marked(cache, current.as_deref(), &opts, now, &Local)
        }
        Ok(cache) => statusline::render_line_marked(cache, current.as_deref(), &opts, now, &Utc),
        Err(marker) => (*marker).to_owned(),
    };
    // The process exits right after printing: freeing 1,000 slots' maps one by one costs
    // an eighth of a render, for memory the exit frees anyway.
    std::mem::forget(cache);
    line
}

/// Claude Code's figures, by window, and the slot named for them (flag, else config).
type ClaudeCode<'a> = (&'a BTreeMap<String, Window>, Option<&'a str>);

/// Flags over config over defaults; colour resolved against stdout and `NO_COLOR`.
fn options(config: &Config, args: &Args) -> Result<Options, statusline::format::FormatError> {
    let s = &config.statusline;
    let template = match &args.format {
        Some(text) => Template::parse(text)?,
        None => s.format.clone(),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = args.color.unwrap_or(s.color);
    Ok(Options {
        template,
        separator: args
            .separator
            .clone()
            .unwrap_or_else(|| s.separator.clone()),
        ascii: args.ascii || s.ascii,
        color: color.resolve(std::io::stdout().is_terminal(), no_color),
        stale_marker: s.stale_marker.clone(),
        stale_after: config.stale_after,
    })
}

/// The line rendered straight from `quota.lines` when that file was made from the
/// `quota.json` on disk and the fast path takes it ([`statusline::lines`]), Claude Code's
/// figures laid over the slot they belong to; `None`: go the long way ([`read_cache`]),
/// which renders the same bytes.
fn line_from_lines_file(
    paths: &Paths,
    opts: &Options,
    now: DateTime<Utc>,
    claude: Option<ClaudeCode<'_>>,
) -> Option<String> {
    let path = &paths.quota_cache;
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > CACHE_MAX {
        return None;
    }
    let (text, source) = cache_lines::read_text(path, &meta)?;
    let line = match claude {
        None if opts.template.uses_local_time() => {
            statusline::lines::render(&text, &source, opts, now, &Local)
        }
        None => statusline::lines::render(&text, &source, opts, now, &Utc),
        Some((windows, named)) => {
            let pick = |slots: &[Candidate<'_>]| choose(slots, named).map(|(slot, _)| slot);
            if opts.template.uses_local_time() {
                statusline::lines::render_attributed(
                    &text, &source, windows, pick, opts, now, &Local,
                )
            } else {
                statusline::lines::render_attributed(&text, &source, windows, pick, opts, now, &Utc)
            }
        }
    };
    // As in `line`: the exit frees it.
    std::mem::forget(text);
    line
}

/// The slot Claude Code's figures belong to ([`attribute::choose_slot`]), from this
/// process's environment and Claude Code's files.
fn choose(slots: &[Candidate<'_>], named: Option<&str>) -> Option<(String, Chosen)> {
    let email = || claude_code::claude_json_path().and_then(|p| claude_code::logged_in_email(&p));
    attribute::choose_slot(slots, named, SessionDir::from_env, email)
}

/// The cache, or the marker to print instead: from the read-optimised `quota.lines` when it
/// was made from the `quota.json` on disk, else from `quota.json` itself
/// (see [`crate::cache_lines`]).
fn read_cache(paths: &Paths) -> Result<QuotaCache, &'static str> {
    let path = &paths.quota_cache;
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(statusline::NO_DATA),
        Ok(m) if m.len() > CACHE_MAX => {
            eprintln!("sessctl: {} is over {CACHE_MAX} bytes", path.display());
            return Err(statusline::CACHE_UNREADABLE);
        }
        Ok(m) => {
            if let Some(cache) = cache_lines::read_current(path, &m) {
                return Ok(cache);
            }
        }
        Err(_) => {}
    }
    QuotaCache::read(path).map_err(|e| {
        eprintln!("sessctl: {e}");
        match e {
            CacheError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                statusline::NO_DATA
            }
            _ => statusline::CACHE_UNREADABLE,
        }
    })
}

/// Lays Claude Code's figures over the slot they belong to, and names that slot. Without a
/// cache, only a slot named by `--slot` or the config can show them (nothing else says
/// which slot it is).
fn with_claude_code(
    cache: Result<QuotaCache, &'static str>,
    claude: Option<ClaudeCode<'_>>,
    now: DateTime<Utc>,
) -> (Result<QuotaCache, &'static str>, Option<String>) {
    let Some((windows, named)) = claude else {
        return (cache, None);
    };
    let candidates: Vec<Candidate<'_>> = cache
        .as_ref()
        .map_or_else(|_| Vec::new(), |c| c.slots.iter().map(candidate).collect());
    let Some((slot, _)) = choose(&candidates, named) else {
        return (cache, None);
    };
    // No cache means no daemon data: the synthetic one is as old as can be, so the line
    // still carries the stale marker while showing Claude Code's fresh figures.
    let mut cache = cache.unwrap_or_else(|_| QuotaCache {
        updated_at: DateTime::UNIX_EPOCH,
        stale_after_secs: None,
        slots: BTreeMap::new(),
    });
    claude_code::apply(&mut cache, &slot, windows.clone(), now);
    (Ok(cache), Some(slot))
}

fn candidate<'a>((name, slot): (&'a String, &'a SlotQuota)) -> Candidate<'a> {
    Candidate {
        name: name.as_str(),
        provider: slot.provider.as_deref(),
        account: slot.account.as_deref(),
        claude_code: slot.claude_code.as_deref(),
    }
}
