//! The statusline's read-optimised copy of the quota cache: `quota.lines`, beside
//! `quota.json`, written by the daemon's cache writer right after the JSON file and read by
//! `sessctl statusline` on every prompt.
//!
//! Why a second file: the statusline runs once per prompt, so its cost should not grow with
//! the number of slots. At 1,000 slots `quota.json` is ~300-430 KB of JSON with three
//! RFC 3339 timestamps a slot; parsing it (`serde_json`, `chrono`) is a third of a render's
//! instructions, which this file saves (docs/benchmarks.md). This file holds exactly what rendering needs, one tab-separated line per slot and
//! per window, times as integer `seconds.nanoseconds`, floats in Rust's round-trip notation,
//! with no error texts: it parses with `split` and integer parsing, no allocation per
//! timestamp, and renders to the same bytes as the JSON it was made from (the reader builds
//! the same [`QuotaCache`]; `sessctl statusline` renders straight from the text instead, see
//! `statusline::lines`). Staleness is still judged at read time, from the times stored
//! here, at both levels (the cache's `updated_at` and each slot's `fetched_at`).
//!
//! It is trusted only while it describes the JSON file on disk: its `source` line names that
//! file's identity (device, inode, size, modification time) when it was written, and a
//! reader that sees any other `quota.json` (rewritten since, by this daemon or an older
//! sessctl that knows nothing of this file, or restored from a backup) ignores it. Any
//! other doubt (missing, truncated, corrupt, unknown version, over [`MAX_BYTES`]) also means
//! "read the JSON instead", so this file can never make a prompt worse than `quota.json`
//! alone would. Never holds a token; written atomically, mode 0600.
//!
//! Format (version 1): lines separated by `\n`, fields by `\t` (shown as ` → `); text
//! fields escape `\\`, `\t`, `\n` and `\r` with a backslash; an optional field is `-` when
//! absent and `=TEXT` when present; a time is `SECONDS.NANOS` (9 digits) or `-`:
//! ```text
//! sessctl-quota-lines → 1
//! source → DEV:INODE → SIZE → MTIME_NANOS
//! cache → UPDATED_AT → STALE_AFTER_SECS|-
//! slot → NAME → ACCOUNT? → PROVIDER? → STATE → FETCHED_AT
//! window → NAME → UTILIZATION → RESETS_AT        (belongs to the slot above)
//! claude_code → DIR                              (the slot above's Claude Code config dir)
//! end → SLOT_COUNT
//! ```
//! A `claude_code` line follows only a slot backed by Claude Code's store, so a file without
//! such slots is what it was before the line kind existed; an older reader refuses the line
//! and reads `quota.json` instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::cache::{QuotaCache, SlotQuota, Window};
use crate::state::SlotState;

/// The file's first line; a reader refuses any other (a future format is read as JSON).
const MAGIC: &str = "sessctl-quota-lines\t1";
/// A file bigger than this is not one the daemon wrote (1,000 slots take ~100 KB).
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Where the lines file for the JSON cache at `json` lives: beside it.
pub fn path_beside(json: &Path) -> PathBuf {
    json.with_file_name("quota.lines")
}

/// Writes the lines file for `cache`, which has just been written to `json`, atomically
/// with mode 0600. Call it after every write of `json`: the file records `json`'s identity.
///
/// # Errors
/// `json` cannot be examined, or the file cannot be written.
pub fn write(json: &Path, cache: &QuotaCache) -> std::io::Result<()> {
    let source = identity(&std::fs::metadata(json)?);
    let text = encode(cache, &source);
    crate::fsutil::write_atomic_private(&path_beside(json), text.as_bytes())
}

/// The cache from the lines file beside `json`, when that file exists, parses, and was made
/// from the `json` file whose metadata is `json_meta`; else `None` (read the JSON).
pub fn read_current(json: &Path, json_meta: &Metadata) -> Option<QuotaCache> {
    let (text, source) = read_text(json, json_meta)?;
    decode(&text, &source)
}

/// The text of the lines file beside `json` (at most [`MAX_BYTES`]) and the identity of the
/// `json` file whose metadata is `json_meta`, for [`decode`] or a reader that renders
/// straight from the text (`statusline::lines`); `None` when there is no such file.
pub fn read_text(json: &Path, json_meta: &Metadata) -> Option<(String, String)> {
    let path = path_beside(json);
    if std::fs::metadata(&path).ok()?.len() > MAX_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    Some((text, identity(json_meta)))
}

/// What tells one `quota.json` from another: an atomic replacement is a new inode, and any
/// change moves the size or the modification time.
fn identity(meta: &Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        format!("{}:{}", meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let inode = "-";
    format!("{inode}\t{}\t{mtime}", meta.len())
}

/// The file's text for `cache` made from the JSON file with identity `source`.
pub fn encode(cache: &QuotaCache, source: &str) -> String {
    let mut out = String::with_capacity(64 + cache.slots.len() * 160);
    let stale_after = cache
        .stale_after_secs
        .map_or_else(|| "-".to_owned(), |s| s.to_string());
    let _ = writeln!(out, "{MAGIC}\nsource\t{source}");
    let _ = writeln!(
        out,
        "cache\t{}\t{stale_after}",
        time(Some(cache.updated_at))
    );
    for (name, slot) in &cache.slots {
        let _ = writeln!(
            out,
            "slot\t{}\t{}\t{}\t{}\t{}",
            escape(name),
            optional(slot.account.as_deref()),
            optional(slot.provider.as_deref()),
            state_name(slot.state),
            time(slot.fetched_at),
        );
        if let Some(dir) = &slot.claude_code {
            let _ = writeln!(out, "claude_code\t{}", escape(dir));
        }
        for (window, w) in &slot.windows {
            let (name, resets_at) = (escape(window), time(w.resets_at));
            let _ = writeln!(out, "window\t{name}\t{:?}\t{resets_at}", w.utilization);
        }
    }
    let _ = writeln!(out, "end\t{}", cache.slots.len());
    out
}

/// The cache in `text`, if it is a whole version-1 file made from the JSON file `source`.
pub fn decode(text: &str, source: &str) -> Option<QuotaCache> {
    let (updated_at, stale_after_secs, lines) = decode_head(text, source)?;
    let mut slots: BTreeMap<String, SlotQuota> = BTreeMap::new();
    let mut last: Option<(String, SlotQuota)> = None;
    for line in lines {
        let mut fields = line.split('\t');
        match fields.next()? {
            "slot" => {
                if let Some((name, slot)) = last.replace(parse_slot(&mut fields)?) {
                    slots.insert(name, slot);
                }
            }
            "window" => {
                let (name, window) = parse_window(&mut fields)?;
                last.as_mut()?.1.windows.insert(name, window);
            }
            "claude_code" => {
                let dir = unescape(fields.next()?)?;
                fields.next().is_none().then_some(())?;
                last.as_mut()?.1.claude_code = Some(dir);
            }
            "end" => {
                if let Some((name, slot)) = last.take() {
                    slots.insert(name, slot);
                }
                let count: usize = fields.next()?.parse().ok()?;
                return (count == slots.len()).then_some(QuotaCache {
                    updated_at,
                    stale_after_secs,
                    slots,
                });
            }
            _ => return None,
        }
    }
    None
}

/// The cache line's `updated_at` and `stale_after_secs` when `text` starts as a version-1
/// file made from the JSON file `source`, and the lines after it (still to check).
pub fn decode_head<'a>(
    text: &'a str,
    source: &str,
) -> Option<(DateTime<Utc>, Option<u64>, std::str::Split<'a, char>)> {
    let mut lines = text.strip_suffix('\n')?.split('\n');
    if lines.next()? != MAGIC || lines.next()?.strip_prefix("source\t")? != source {
        return None;
    }
    let mut head = lines.next()?.strip_prefix("cache\t")?.split('\t');
    let updated_at = parse_time(head.next()?)??;
    let stale_after_secs = match head.next()? {
        "-" => None,
        secs => Some(secs.parse().ok()?),
    };
    Some((updated_at, stale_after_secs, lines))
}

fn parse_slot<'a>(fields: &mut impl Iterator<Item = &'a str>) -> Option<(String, SlotQuota)> {
    let name = unescape(fields.next()?)?;
    let account = parse_optional(fields.next()?)?;
    let provider = parse_optional(fields.next()?)?;
    let state = match fields.next()? {
        "active" => SlotState::Active,
        "degraded" => SlotState::Degraded,
        "inactive" => SlotState::Inactive,
        _ => return None,
    };
    let fetched_at = parse_time(fields.next()?)?;
    let slot = SlotQuota {
        account,
        provider,
        state,
        fetched_at,
        windows: BTreeMap::new(),
        error: None,
        // Credit spend is not rendered by the statusline, so the lines file does not carry it.
        extra_usage: None,
        claude_code: None,
    };
    fields.next().is_none().then_some((name, slot))
}

fn parse_window<'a>(fields: &mut impl Iterator<Item = &'a str>) -> Option<(String, Window)> {
    let name = unescape(fields.next()?)?;
    let utilization = fields.next()?.parse().ok()?;
    let resets_at = parse_time(fields.next()?)?;
    let window = Window {
        utilization,
        resets_at,
    };
    fields.next().is_none().then_some((name, window))
}

fn state_name(state: SlotState) -> &'static str {
    match state {
        SlotState::Active => "active",
        SlotState::Degraded => "degraded",
        SlotState::Inactive => "inactive",
    }
}

/// `SECONDS.NANOS`, or `-`.
fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| format!("{}.{:09}", at.timestamp(), at.timestamp_subsec_nanos()),
    )
}

/// `Some(None)` for `-`, `Some(Some(time))` for a valid time, `None` for junk.
#[allow(
    clippy::option_option,
    reason = "None: junk; Some(None): the field is absent"
)]
pub fn parse_time(text: &str) -> Option<Option<DateTime<Utc>>> {
    if text == "-" {
        return Some(None);
    }
    let (secs, nanos) = text.split_once('.')?;
    if nanos.len() != 9 {
        return None;
    }
    DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?).map(Some)
}

fn optional(text: Option<&str>) -> String {
    text.map_or_else(|| "-".to_owned(), |t| format!("={}", escape(t)))
}

/// `Some(None)` for `-`, `Some(Some(text))` for `=text`, `None` for junk.
#[allow(
    clippy::option_option,
    reason = "None: junk; Some(None): the field is absent"
)]
fn parse_optional(text: &str) -> Option<Option<String>> {
    match text {
        "-" => Some(None),
        _ => Some(Some(unescape(text.strip_prefix('=')?)?)),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> Option<String> {
    if !text.contains('\\') {
        return Some(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.next()? {
                '\\' => '\\',
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                _ => return None,
            },
            c => c,
        });
    }
    Some(out)
}

#[cfg(test)]
#[path = "cache_lines_tests.rs"]
mod tests;
