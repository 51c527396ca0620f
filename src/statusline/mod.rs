//! `sessctl statusline`: the quota cache as one short line for a shell prompt, a tmux bar or
//! Claude Code's status line, e.g. `work 5h 16% · 7d 42%  personal 5h 3%`.
//!
//! This module owns rendering: a pure function of the cache, the options, the time and a
//! time zone, so every rule is unit-tested without touching the disk. It flags staleness at
//! both levels independently (the cache's `updated_at` and each slot's own `fetched_at`), so
//! a fresh cache over old slot data still shows the marker.
//!
//! It must never wake the daemon, open the socket, start an async runtime, touch the network
//! or panic on any cache content: a status line is rendered on every prompt.

pub mod attribute;
pub mod claude_code;
pub mod format;
pub mod lines;
mod text;
mod view;

use std::fmt::{Display, Write as _};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::cache::{QuotaCache, Window};
use crate::state::SlotState;
pub use format::{DEFAULT_FORMAT, Piece, Template};
use text::{push_collapsed, push_percent};
pub use view::{Current, SlotView};

/// Printed when there is no cache file yet (the daemon has not run).
pub const NO_DATA: &str = "sessctl: no data";
/// Printed when the cache file exists but cannot be read or parsed.
pub const CACHE_UNREADABLE: &str = "sessctl: cache unreadable";
/// Printed when the config file is refused (the details go to stderr).
pub const CONFIG_ERROR: &str = "sessctl: config error";
/// Printed when `--format` is refused (the details go to stderr).
pub const BAD_FORMAT: &str = "sessctl: bad --format";
/// Printed when the cache lists no slot.
pub const NO_SLOTS: &str = "sessctl: no slots";
/// The command line of `sessctl statusline` was refused (clap said why on stderr).
pub const BAD_ARGUMENTS: &str = "sessctl: bad arguments";
/// Printed if rendering ever panicked: the prompt still gets a line and exit 0.
pub const INTERNAL_ERROR: &str = "sessctl: internal error";

/// The stale marker unless `statusline.stale_marker` says otherwise.
pub const STALE_MARKER: &str = "🔺";
/// The stale marker in ASCII mode: spelled out, since no ASCII symbol says "stale".
pub const STALE_MARKER_ASCII: &str = "[stale]";
/// `{current}`: the slot the Claude Code session running the statusline uses.
pub const CURRENT_MARKER: &str = "▸";
/// `{current}` in ASCII mode.
pub const CURRENT_MARKER_ASCII: &str = ">";
/// Slots separate with two spaces by default: wide enough to tell slots apart, narrow
/// enough for a tmux bar.
pub const DEFAULT_SEPARATOR: &str = "  ";
/// A utilization at or above this shows red (with colour on).
pub const RED_AT: f64 = 90.0;
/// A utilization at or above this shows yellow (with colour on).
pub const YELLOW_AT: f64 = 75.0;
/// Names and accounts from the cache are cut to this many characters, so a junk cache
/// cannot flood a prompt.
const MAX_TEXT: usize = 64;

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// When to colour the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ColorChoice {
    /// Only when stdout is a terminal (so tmux and prompts get plain text).
    #[default]
    Auto,
    /// Always (for Claude Code, whose status line shows ANSI colours).
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour: `NO_COLOR` (set and non-empty) always wins.
    pub fn resolve(self, stdout_is_terminal: bool, no_color: bool) -> bool {
        !no_color
            && match self {
                ColorChoice::Auto => stdout_is_terminal,
                ColorChoice::Always => true,
                ColorChoice::Never => false,
            }
    }
}

/// Everything rendering needs besides the cache and the clock, already resolved from flags,
/// config and environment.
#[derive(Debug, Clone)]
pub struct Options {
    pub template: Template,
    pub separator: String,
    pub ascii: bool,
    pub color: bool,
    /// `None`: [`STALE_MARKER`], or [`STALE_MARKER_ASCII`] in ASCII mode.
    pub stale_marker: Option<String>,
    /// The config's `stale_after`; the cache's own `stale_after_secs` wins when present.
    pub stale_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            template: Template::default(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            ascii: false,
            color: false,
            stale_marker: None,
            stale_after: crate::config::DEFAULT_STALE_AFTER,
        }
    }
}

impl Options {
    fn stale_marker(&self) -> &str {
        match (&self.stale_marker, self.ascii) {
            (Some(marker), _) => marker,
            (None, false) => STALE_MARKER,
            (None, true) => STALE_MARKER_ASCII,
        }
    }
}

/// The whole line for `cache` at `now`, reset times shown in `tz`. A stale cache puts the
/// marker first; a stale slot gets it where its template says `{stale}`; an inactive slot
/// renders as `⚠ re-login: NAME` whatever the template.
pub fn render_line<Tz: TimeZone>(
    cache: &QuotaCache,
    opts: &Options,
    now: DateTime<Utc>,
    tz: &Tz,
) -> String
where
    Tz::Offset: Display,
{
    render_line_marked(cache, None, opts, now, tz)
}

/// [`render_line`], with slot `current` (if any) marked where the template says
/// `{current}`: the slot Claude Code's figures were attributed to.
pub fn render_line_marked<Tz: TimeZone>(
    cache: &QuotaCache,
    current: Option<&str>,
    opts: &Options,
    now: DateTime<Utc>,
    tz: &Tz,
) -> String
where
    Tz::Offset: Display,
{
    let mut line = LineRenderer::start(opts, now, tz, cache.updated_at, cache.stale_after_secs);
    for (name, slot) in &cache.slots {
        if current == Some(name.as_str()) {
            line.slot(name, &Current(slot));
        } else {
            line.slot(name, slot);
        }
    }
    line.finish()
}

/// Builds the line one slot at a time, in the order given (the cache's name order).
pub struct LineRenderer<'a, Tz> {
    ctx: Ctx<'a, Tz>,
    line: String,
    /// One slot's text before its spaces collapse, reused from slot to slot.
    scratch: String,
    slots: usize,
}

impl<'a, Tz: TimeZone> LineRenderer<'a, Tz>
where
    Tz::Offset: Display,
{
    /// Starts the line of a cache written at `updated_at`, with the stale marker first when
    /// that is too old.
    pub fn start(
        opts: &'a Options,
        now: DateTime<Utc>,
        tz: &'a Tz,
        updated_at: DateTime<Utc>,
        stale_after_secs: Option<u64>,
    ) -> Self {
        let stale_after = stale_after_secs.map_or(opts.stale_after, Duration::from_secs);
        let mut line = String::new();
        if crate::cache::older_than(Some(updated_at), now, stale_after) {
            line.push_str(opts.stale_marker());
            line.push(' ');
        }
        let ctx = Ctx {
            opts,
            now,
            tz,
            stale_after,
        };
        LineRenderer {
            ctx,
            line,
            scratch: String::new(),
            slots: 0,
        }
    }

    /// Appends slot `name`; where its text went in the line.
    pub fn slot(&mut self, name: &str, slot: &impl SlotView) -> std::ops::Range<usize> {
        if self.slots > 0 {
            self.line.push_str(&self.ctx.opts.separator);
        }
        self.slots += 1;
        let start = self.line.len();
        self.ctx.slot(&mut self.line, &mut self.scratch, name, slot);
        start..self.line.len()
    }

    /// Slot `name`'s text as [`LineRenderer::slot`] would append it, for
    /// [`LineRenderer::replace`].
    pub fn render_alone(&mut self, name: &str, slot: &impl SlotView) -> String {
        let mut out = String::new();
        self.ctx.slot(&mut out, &mut self.scratch, name, slot);
        out
    }

    /// Puts `text` where a slot's text went (a range [`LineRenderer::slot`] gave).
    pub fn replace(&mut self, range: std::ops::Range<usize>, text: &str) {
        self.line.replace_range(range, text);
    }

    /// The whole line ([`NO_SLOTS`] after the marker when no slot was given).
    pub fn finish(mut self) -> String {
        if self.slots == 0 {
            self.line.push_str(NO_SLOTS);
        }
        self.line
    }
}

/// What rendering one slot needs.
struct Ctx<'a, Tz> {
    opts: &'a Options,
    now: DateTime<Utc>,
    tz: &'a Tz,
    stale_after: Duration,
}

impl<Tz: TimeZone> Ctx<'_, Tz>
where
    Tz::Offset: Display,
{
    fn slot(&self, line: &mut String, out: &mut String, name: &str, slot: &impl SlotView) {
        if slot.state() == SlotState::Inactive {
            let warn = if self.opts.ascii { "!" } else { "⚠" };
            if self.opts.color {
                line.push_str(RED);
            }
            line.push_str(warn);
            line.push_str(" re-login: ");
            self.push_clean(line, name);
            if self.opts.color {
                line.push_str(RESET);
            }
            return;
        }
        // The slot level, independent of the cache's `updated_at` (as `SlotQuota::is_stale`).
        let stale = match slot.fetched_at() {
            None => true,
            at => crate::cache::older_than(at, self.now, self.stale_after),
        };
        out.clear();
        for piece in self.opts.template.pieces() {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Name => self.push_clean(out, name),
                Piece::Account => self.push_clean(out, slot.account().unwrap_or("")),
                Piece::State => out.push_str(slot.state().as_str()),
                Piece::Stale if stale => out.push_str(self.opts.stale_marker()),
                Piece::Current if slot.current() => out.push_str(if self.opts.ascii {
                    CURRENT_MARKER_ASCII
                } else {
                    CURRENT_MARKER
                }),
                Piece::Stale | Piece::Current => {}
                Piece::Windows => self.windows(out, slot),
                Piece::Percent(w) => self.percent(out, slot.window(w)),
                Piece::Reset(w) => self.reset(out, slot.window(w)),
                Piece::ResetIn(w) => self.reset_in(out, slot.window(w)),
            }
        }
        push_collapsed(line, out);
    }

    /// `5h 16% · 7d 42%`, leaving out windows without data.
    fn windows(&self, out: &mut String, slot: &impl SlotView) {
        let joiner = if self.opts.ascii { " / " } else { " · " };
        let mut first = true;
        for (window, label) in crate::cache::LABELLED_WINDOWS {
            if let Some(w) = slot.window(window) {
                if !first {
                    out.push_str(joiner);
                }
                first = false;
                out.push_str(label);
                out.push(' ');
                self.percent(out, Some(w));
            }
        }
    }

    fn percent(&self, out: &mut String, window: Option<&Window>) {
        let Some(w) = window else { return };
        let u = w.utilization;
        let color = match () {
            () if !self.opts.color => "",
            () if u >= RED_AT => RED,
            () if u >= YELLOW_AT => YELLOW,
            () => "",
        };
        out.push_str(color);
        push_percent(out, u);
        if !color.is_empty() {
            out.push_str(RESET);
        }
    }

    /// `14:05` within a day of now, `Tue 14:05` further away, in the time zone.
    fn reset(&self, out: &mut String, window: Option<&Window>) {
        let Some(at) = window.and_then(|w| w.resets_at) else {
            return;
        };
        let local = at.with_timezone(self.tz);
        let near = (at - self.now).num_hours().abs() < 24;
        let shown = local.format(if near { "%H:%M" } else { "%a %H:%M" });
        let _ = write!(out, "{shown}");
    }

    /// `2h13m`, `3d4h`, `45m`; `0m` once passed.
    fn reset_in(&self, out: &mut String, window: Option<&Window>) {
        let Some(at) = window.and_then(|w| w.resets_at) else {
            return;
        };
        let minutes = (at - self.now).num_minutes().max(0);
        let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
        let _ = match (days, hours) {
            (0, 0) => write!(out, "{mins}m"),
            (0, _) => write!(out, "{hours}h{mins}m"),
            _ => write!(out, "{days}d{hours}h"),
        };
    }

    /// Appends cache text made safe for one prompt line: control characters (and, in ASCII
    /// mode, anything non-ASCII) become `?`, and it is cut to [`MAX_TEXT`] characters.
    fn push_clean(&self, out: &mut String, text: &str) {
        // Printable ASCII within the limit is kept as is: the common case, without a walk
        // over its characters.
        if text.len() <= MAX_TEXT && text.bytes().all(|b| (b' '..b'\x7f').contains(&b)) {
            out.push_str(text);
            return;
        }
        out.extend(text.chars().take(MAX_TEXT).map(|c| {
            if c.is_control() || (self.opts.ascii && !c.is_ascii()) {
                '?'
            } else {
                c
            }
        }));
    }
}

#[cfg(test)]
mod tests;
