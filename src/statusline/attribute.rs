//! Which slot Claude Code's stdin figures belong to, and which of two figures for one window
//! is the fresher.
//!
//! A Claude Code session keeps its login in the store of one config dir (`CLAUDE_CONFIG_DIR`,
//! overridden by `CLAUDE_SECURESTORAGE_CONFIG_DIR`, else `~/.claude`: see
//! [`crate::claude_code::ConfigDir::from_env`]); a slot adopted with `--claude-code DIR`
//! records that dir. So the statusline, running as that session's `statusLine` command with
//! its environment, attributes the figures to the slot whose dir is the session's. Dirs are
//! compared as paths, not strings: `~` expanded, made absolute, `.` and trailing slashes
//! dropped, and, only when no slot matches so, with symlinks resolved.
//!
//! Reads no file but the file system's answers to `canonicalize`, and only when a slot is
//! backed by Claude Code's store.

use std::path::{Component, Path, PathBuf};

use crate::cache::Window;

/// Two reset times this close apart are one window: the usage endpoint gives sub-second
/// times, Claude Code whole seconds.
const SAME_WINDOW_SLACK_SECS: i64 = 60;

/// What choosing a slot needs to know of one, borrowed from the cache or from the text of
/// `quota.lines`.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub provider: Option<&'a str>,
    pub account: Option<&'a str>,
    /// The Claude Code config dir of a slot backed by Claude Code's store.
    pub claude_code: Option<&'a str>,
}

/// Where the choice of slot came from, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// `--slot NAME` or `statusline.claude_code_slot`: used even if the cache lacks it.
    Named,
    /// The slot backed by the store of the config dir this Claude Code session uses.
    ConfigDir,
    /// The cache's only slot whose provider is `claude`.
    OnlyClaudeSlot,
    /// The slot whose account is the one Claude Code is logged in with.
    AccountMatch,
}

/// The slot Claude Code's figures belong to: `named` (flag, else config) first; else the slot
/// whose Claude Code dir is `session()`'s; else the only `claude` slot; else the slot whose
/// account is `email()`. `session` and `email` are called only when needed (they look at the
/// file system).
pub fn choose_slot(
    slots: &[Candidate<'_>],
    named: Option<&str>,
    session: impl FnOnce() -> Option<SessionDir>,
    email: impl FnOnce() -> Option<String>,
) -> Option<(String, Chosen)> {
    if let Some(name) = named {
        return Some((name.to_owned(), Chosen::Named));
    }
    let chosen = |c: &Candidate<'_>, how| Some((c.name.to_owned(), how));
    if slots.iter().any(|c| c.claude_code.is_some())
        && let Some(session) = session()
    {
        let backed = || slots.iter().filter_map(|c| Some((c, c.claude_code?)));
        // Spelled alike first; resolving every slot's symlinks only when none is.
        if let Some((c, _)) = backed().find(|(_, dir)| session.matches(dir)) {
            return chosen(c, Chosen::ConfigDir);
        }
        if let Some((c, _)) = backed().find(|(_, dir)| session.matches_resolved(dir)) {
            return chosen(c, Chosen::ConfigDir);
        }
    }
    let mut claude = slots
        .iter()
        .filter(|c| c.provider == Some(crate::config::CLAUDE));
    if let (Some(only), None) = (claude.next(), claude.next()) {
        return chosen(only, Chosen::OnlyClaudeSlot);
    }
    let email = email()?;
    let by_account = slots
        .iter()
        .find(|c| c.account.is_some_and(|a| a.eq_ignore_ascii_case(&email)))?;
    chosen(by_account, Chosen::AccountMatch)
}

/// The config dir whose store a Claude Code session uses, ready to compare with slots' dirs.
#[derive(Debug, Clone)]
pub struct SessionDir {
    home: PathBuf,
    /// Absolute, `~` expanded, without `.` components or a trailing slash.
    plain: PathBuf,
    /// With symlinks resolved; `None` when the dir does not exist.
    resolved: Option<PathBuf>,
}

impl SessionDir {
    /// The dir a Claude Code started with this process's environment would use; `None`
    /// without a home directory.
    pub fn from_env() -> Option<SessionDir> {
        let home = PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?);
        let config = crate::claude_code::ConfigDir::from_env(&home, |name| {
            std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
        });
        Some(SessionDir::new(config.dir(), &home))
    }

    /// The session dir `dir`, with `~` standing for `home`.
    pub fn new(dir: &Path, home: &Path) -> SessionDir {
        let plain = plain(dir, home);
        let resolved = std::fs::canonicalize(&plain).ok();
        SessionDir {
            home: home.to_path_buf(),
            plain,
            resolved,
        }
    }

    /// Whether a slot's dir names this one as written (up to `~`, `.` and slashes).
    pub fn matches(&self, slot_dir: &str) -> bool {
        let dir = plain(Path::new(slot_dir), &self.home);
        dir == self.plain || self.resolved.as_ref() == Some(&dir)
    }

    /// Whether a slot's dir is this one once symlinks are resolved.
    pub fn matches_resolved(&self, slot_dir: &str) -> bool {
        let Some(resolved) = &self.resolved else {
            return false;
        };
        std::fs::canonicalize(plain(Path::new(slot_dir), &self.home)).ok() == Some(resolved.clone())
    }
}

/// `dir` with a leading `~` expanded to `home`, made absolute, without `.` components or a
/// trailing slash.
fn plain(dir: &Path, home: &Path) -> PathBuf {
    let mut parts = dir.components().peekable();
    let expanded = match parts.peek() {
        Some(Component::Normal(first)) if *first == "~" => {
            parts.next();
            home.join(parts.collect::<PathBuf>())
        }
        _ => dir.to_path_buf(),
    };
    let absolute = std::path::absolute(&expanded).unwrap_or(expanded);
    absolute.components().collect()
}

/// Whether Claude Code's figure for a window is to be shown rather than the cached one. The
/// later window wins; within one window (reset times within a minute) usage only grows, so
/// the higher figure is the newer one (a tie goes to Claude Code). Without both reset times
/// nothing tells them apart, and Claude Code's figure, from the session's last reply, wins.
pub fn claude_code_is_fresher(cached: Option<&Window>, claude: &Window) -> bool {
    let Some(cached) = cached else { return true };
    match (cached.resets_at, claude.resets_at) {
        (Some(old), Some(new)) if (new - old).num_seconds().abs() <= SAME_WINDOW_SLACK_SECS => {
            claude.utilization >= cached.utilization || cached.utilization.is_nan()
        }
        (Some(old), Some(new)) => new > old,
        _ => true,
    }
}

#[cfg(test)]
#[path = "attribute_tests.rs"]
mod tests;
