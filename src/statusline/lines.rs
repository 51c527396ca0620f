//! Renders the statusline straight from the text of `quota.lines` (format:
//! [`crate::cache_lines`]), one line of the file at a time, with no map, no `String` per slot
//! and no [`crate::cache::QuotaCache`] built: at 1,000 slots building the cache cost more
//! than rendering it (docs/benchmarks.md).
//!
//! It only takes the files it can vouch for: a whole version-1 file made from the `quota.json`
//! on disk, every field as [`crate::cache_lines::decode`] would accept it, with slot names in
//! strictly increasing order (the order `decode`'s map would render them in) and no
//! backslash escape anywhere. For any other text it answers `None` and the caller goes the
//! long way (`decode`, then `quota.json`), so the line is byte for byte the one that way
//! renders. Staleness is judged here at read time, from the times in the file, at both levels.
//!
//! Claude Code's stdin figures are laid over the slot they were attributed to as they are in
//! the long way ([`super::claude_code::apply`]), so that line too is byte for byte the same
//! ([`attributed`]): every slot is rendered as usual while what choosing needs of each is
//! recorded, then the chosen one is rendered again with the figures and put in its place.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::Range;

use chrono::{DateTime, TimeZone, Utc};

use super::attribute::Candidate;
use super::{LineRenderer, Options, Piece, SlotView};
use crate::cache::Window;
use crate::cache_lines::{decode_head, parse_time};
use crate::state::SlotState;

/// The line for the lines file `text`, made from the JSON file with identity `source`, or
/// `None` when this fast path cannot vouch for the file (see the module header).
pub fn render<Tz: TimeZone>(
    text: &str,
    source: &str,
    opts: &Options,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Option<String>
where
    Tz::Offset: Display,
{
    let mut seen = Seen::default();
    let line = render_all(text, source, &mut seen, opts, now, tz)?;
    Some(line.finish())
}

/// [`render`] with Claude Code's figures (`claude`, by window) laid over the slot `choose`
/// picks from every slot's [`Candidate`] (in name order), which is marked current; `None`
/// also when the chosen slot is not in the file (the long way adds it).
pub fn render_attributed<'a, Tz: TimeZone>(
    text: &'a str,
    source: &str,
    claude: &BTreeMap<String, Window>,
    choose: impl FnOnce(&[Candidate<'a>]) -> Option<String>,
    opts: &Options,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Option<String>
where
    Tz::Offset: Display,
{
    let mut seen = Seen {
        record: true,
        ..Seen::default()
    };
    let mut line = render_all(text, source, &mut seen, opts, now, tz)?;
    if let Some(chosen) = choose(&seen.candidates) {
        let i = seen.candidates.iter().position(|c| c.name == chosen)?;
        let (block, range) = seen.blocks.get(i)?.clone();
        let laid = attributed::render_slot(block, claude, &mut line, now)?;
        line.replace(range, &laid);
    }
    Some(line.finish())
}

/// Renders every slot of `text` in turn; the renderer, or `None` for a file the fast path
/// does not take.
fn render_all<'a, 'o, Tz: TimeZone>(
    text: &'a str,
    source: &str,
    seen: &mut Seen<'a>,
    opts: &'o Options,
    now: DateTime<Utc>,
    tz: &'o Tz,
) -> Option<LineRenderer<'o, Tz>>
where
    Tz::Offset: Display,
{
    // A whole file ends with a newline (as `decode` requires).
    if !text.ends_with('\n') {
        return None;
    }
    // The three head lines, checked by `decode`'s own code.
    let head_len = text.match_indices('\n').nth(2)?.0 + 1;
    let (updated_at, stale_after_secs, _) = decode_head(&text[..head_len], source)?;
    let mut line = LineRenderer::start(opts, now, tz, updated_at, stale_after_secs);
    let needs_resets = opts
        .template
        .pieces()
        .iter()
        .any(|p| matches!(p, Piece::Reset(_) | Piece::ResetIn(_)));
    let mut fields = Fields {
        rest: &text[head_len..],
        needs_resets,
    };
    let count = render_slots(&mut fields, &mut line, seen)?;
    (count == line.slots).then_some(line)
}

/// What a render records of every slot while Claude Code's figures wait for theirs to be
/// chosen, so none is looked for in the file twice.
#[derive(Default)]
struct Seen<'a> {
    /// Whether to record at all (else this stays empty).
    record: bool,
    candidates: Vec<Candidate<'a>>,
    /// Per slot, in the same order: the file from its `slot` line on, and where its text
    /// went in the line.
    blocks: Vec<(&'a str, Range<usize>)>,
}

/// The fields of the lines after the head, read one at a time with a plain byte loop
/// (`str::split` costs more per field than everything else a field needs).
struct Fields<'a> {
    rest: &'a str,
    /// Whether reset times are built (else they are checked only): when the template shows
    /// them, and for the slot Claude Code's figures are weighed against.
    needs_resets: bool,
}

impl<'a> Fields<'a> {
    /// The next field and whether it ends its line; `None` at the end of the text, or at a
    /// backslash: with no escape, every text field is its own unescaped value, borrowed as is.
    fn next(&mut self) -> Option<(&'a str, bool)> {
        let end = delimiter(self.rest.as_bytes())?;
        let (field, rest) = self.rest.split_at(end);
        self.rest = &rest[1..];
        match rest.as_bytes()[0] {
            b'\\' => None,
            last => Some((field, last == b'\n')),
        }
    }

    /// The next `N` fields when they are exactly the rest of the line.
    fn line<const N: usize>(&mut self) -> Option<[&'a str; N]> {
        let mut out = [""; N];
        for (i, slot) in out.iter_mut().enumerate() {
            let (field, last) = self.next()?;
            if last != (i + 1 == N) {
                return None;
            }
            *slot = field;
        }
        Some(out)
    }

    /// A time field: `-`, or `SECONDS.NANOS` as `decode` takes it. The common form (up to 11
    /// digits of seconds, 9 of nanoseconds, no sign) is always in range, so it is checked
    /// by hand and built only when `build`; any other form goes through `parse_time`.
    #[allow(
        clippy::option_option,
        reason = "None: junk; Some(None): the field is absent"
    )]
    fn time(text: &str, build: bool) -> Option<Option<DateTime<Utc>>> {
        let Some((secs, nanos)) = plain_time(text.as_bytes()) else {
            return parse_time(text);
        };
        if !build {
            // Never read: the template shows no reset time.
            return Some(Some(DateTime::UNIX_EPOCH));
        }
        DateTime::from_timestamp(secs, nanos).map(Some)
    }
}

/// The seconds and nanoseconds of `SECONDS.NANOS` with 1 to 11 digits of seconds and exactly
/// 9 of nanoseconds (always a time `DateTime` can hold); `None` for any other form.
fn plain_time(text: &[u8]) -> Option<(i64, u32)> {
    if !(11..=21).contains(&text.len()) {
        return None;
    }
    let (secs, nanos) = text.split_at(text.len() - 10);
    let nanos = u32::try_from(digits(nanos.strip_prefix(b".")?)?).ok()?;
    Some((i64::try_from(digits(secs)?).ok()?, nanos))
}

/// The value of up to 19 ASCII digits; `None` if any byte is not one.
fn digits(bytes: &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for &b in bytes {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

/// The index of the first tab, newline or backslash in `bytes`, eight bytes at a time
/// (fields are short, and a byte loop was a quarter of a 1,000-slot render).
fn delimiter(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        // The lowest flagged byte of each test is exact (only bytes above a match can be
        // flagged falsely), so the lowest of all three is the first delimiter.
        let found = has(word, b'\t') | has(word, b'\n') | has(word, b'\\');
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = chunks
        .remainder()
        .iter()
        .position(|&b| matches!(b, b'\t' | b'\n' | b'\\'));
    tail.map(|i| at + i)
}

/// One slot's line of the file.
#[derive(Clone, Copy)]
struct SlotLine<'a> {
    name: &'a str,
    account: Option<&'a str>,
    provider: Option<&'a str>,
    state: SlotState,
    fetched_at: Option<DateTime<Utc>>,
}

/// One slot with its windows (the window lines that follow its slot line).
struct LineSlot<'s, 'a> {
    slot: &'s SlotLine<'a>,
    windows: &'s [(&'a str, Window)],
}

impl SlotView for LineSlot<'_, '_> {
    fn state(&self) -> SlotState {
        self.slot.state
    }
    fn account(&self) -> Option<&str> {
        self.slot.account
    }
    fn fetched_at(&self) -> Option<DateTime<Utc>> {
        self.slot.fetched_at
    }
    fn window(&self, name: &str) -> Option<&Window> {
        // The last of a repeated name, as `decode`'s map keeps it.
        self.windows
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, w)| w)
    }
}

/// Renders every slot up to the `end` line into `line`, recording each in `seen`; the count
/// that line states, or `None` for anything the fast path does not take.
fn render_slots<'a, Tz: TimeZone>(
    fields: &mut Fields<'a>,
    line: &mut LineRenderer<'_, Tz>,
    seen: &mut Seen<'a>,
) -> Option<usize>
where
    Tz::Offset: Display,
{
    // The slot being read, and the file from its `slot` line on.
    let mut slot: Option<(SlotLine<'_>, &'a str)> = None;
    // One window list, reused by every slot.
    let mut windows = Vec::new();
    let mut emit = |line: &mut LineRenderer<'_, Tz>,
                    (done, block): (SlotLine<'a>, &'a str),
                    windows: &mut Vec<_>| {
        let range = line.slot(
            done.name,
            &LineSlot {
                slot: &done,
                windows,
            },
        );
        windows.clear();
        if seen.record {
            seen.blocks.push((block, range));
        }
    };
    loop {
        let at = fields.rest;
        match fields.next()? {
            ("slot", false) => {
                let next = parse_slot(fields.line::<5>()?)?;
                if seen.record {
                    seen.candidates.push(Candidate {
                        name: next.name,
                        provider: next.provider,
                        account: next.account,
                        claude_code: None,
                    });
                }
                if let Some(done) = slot.replace((next, at)) {
                    // Strictly increasing: the order (and uniqueness) of `decode`'s map.
                    if next.name <= done.0.name {
                        return None;
                    }
                    emit(line, done, &mut windows);
                }
            }
            ("window", false) => {
                slot.as_ref()?;
                let [name, utilization, resets_at] = fields.line::<3>()?;
                let window = Window {
                    utilization: utilization.parse().ok()?,
                    resets_at: Fields::time(resets_at, fields.needs_resets)?,
                };
                windows.push((name, window));
            }
            ("claude_code", false) => {
                slot.as_ref()?;
                let [dir] = fields.line::<1>()?;
                if let Some(last) = seen.candidates.last_mut() {
                    last.claude_code = Some(dir);
                }
            }
            ("end", false) => {
                let [count] = fields.line::<1>()?;
                if let Some(done) = slot.take() {
                    emit(line, done, &mut windows);
                }
                return count.parse().ok();
            }
            _ => return None,
        }
    }
}

fn parse_slot(fields: [&str; 5]) -> Option<SlotLine<'_>> {
    let [name, account, provider, state, fetched_at] = fields;
    let account = optional(account)?;
    let provider = optional(provider)?;
    let state = match state {
        "active" => SlotState::Active,
        "degraded" => SlotState::Degraded,
        "inactive" => SlotState::Inactive,
        _ => return None,
    };
    Some(SlotLine {
        name,
        account,
        provider,
        state,
        fetched_at: Fields::time(fetched_at, true)?,
    })
}

/// `Some(None)` for `-`, `Some(Some(text))` for `=text`, `None` for junk.
#[allow(
    clippy::option_option,
    reason = "None: junk; Some(None): the field is absent"
)]
fn optional(text: &str) -> Option<Option<&str>> {
    match text {
        "-" => Some(None),
        _ => Some(Some(text.strip_prefix('=')?)),
    }
}

mod attributed;

#[cfg(test)]
#[path = "lines_tests.rs"]
mod tests;
