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
//! the long way ([`super::claude_code::apply`]), so that line too is byte for byte the same;
//! [`candidates`] gives the attribution what it needs of every slot without building them.

use std::collections::BTreeMap;
use std::fmt::Display;

use chrono::{DateTime, TimeZone, Utc};

use super::attribute::{Candidate, claude_code_is_fresher};
use super::{Current, LineRenderer, Options, Piece, SlotView};
use crate::cache::Window;
use crate::cache_lines::{decode_head, parse_time};
use crate::state::SlotState;

/// Claude Code's stdin figures and the slot they were attributed to.
#[derive(Debug, Clone, Copy)]
pub struct Attributed<'a> {
    pub slot: &'a str,
    pub windows: &'a BTreeMap<String, Window>,
}

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
    render_attributed(text, source, None, opts, now, tz)
}

/// [`render`] with Claude Code's figures laid over the slot they belong to, which is marked
/// current; `None` also when that slot is not in the file (the long way adds it).
pub fn render_attributed<Tz: TimeZone>(
    text: &str,
    source: &str,
    claude: Option<Attributed<'_>>,
    opts: &Options,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Option<String>
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
    // Claude Code's figures are weighed against the cached reset times.
    let needs_resets = claude.is_some()
        || opts
            .template
            .pieces()
            .iter()
            .any(|p| matches!(p, Piece::Reset(_) | Piece::ResetIn(_)));
    let mut fields = Fields {
        rest: &text[head_len..],
        needs_resets,
    };
    let mut emit = Emit {
        claude,
        now,
        found: false,
    };
    let count = render_slots(&mut fields, &mut line, &mut emit)?;
    let whole = count == line.slots && (claude.is_none() || emit.found);
    whole.then(|| line.finish())
}

/// What choosing the slot for Claude Code's figures needs of every slot in `text`, in file
/// order. A loose scan: when the file is one [`render_attributed`] does not take, the caller
/// goes the long way and chooses again from the decoded cache.
pub fn candidates(text: &str) -> Vec<Candidate<'_>> {
    let mut out: Vec<Candidate<'_>> = Vec::new();
    for line in text.split('\n') {
        if let Some(rest) = line.strip_prefix("slot\t") {
            let mut fields = rest.split('\t');
            let (Some(name), Some(account), Some(provider)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            out.push(Candidate {
                name,
                account: account.strip_prefix('='),
                provider: provider.strip_prefix('='),
                claude_code: None,
            });
        } else if let Some(dir) = line.strip_prefix("claude_code\t")
            && let Some(last) = out.last_mut()
        {
            last.claude_code = Some(dir);
        }
    }
    out
}

/// Hands each slot to the line, laying Claude Code's figures over theirs.
struct Emit<'c> {
    claude: Option<Attributed<'c>>,
    now: DateTime<Utc>,
    /// Whether the attributed slot was met.
    found: bool,
}

impl<'c> Emit<'c> {
    fn slot<'a, Tz: TimeZone>(
        &mut self,
        line: &mut LineRenderer<'_, Tz>,
        slot: &SlotLine<'a>,
        windows: &mut Vec<(&'a str, Window)>,
    ) where
        Tz::Offset: Display,
        'c: 'a,
    {
        let Some(claude) = self.claude.filter(|c| c.slot == slot.name) else {
            line.slot(slot.name, &LineSlot { slot, windows });
            return;
        };
        self.found = true;
        let mut fetched_at = slot.fetched_at;
        for (name, figure) in claude.windows {
            let cached = LineSlot { slot, windows }.window(name).cloned();
            if claude_code_is_fresher(cached.as_ref(), figure) {
                // Pushed last, so it is the one `window` finds.
                windows.push((name.as_str(), figure.clone()));
                fetched_at = Some(self.now);
            }
        }
        let laid = SlotLine {
            fetched_at,
            ..*slot
        };
        let view = LineSlot {
            slot: &laid,
            windows,
        };
        line.slot(slot.name, &Current(&view));
    }
}

/// The fields of the lines after the head, read one at a time with a plain byte loop
/// (`str::split` costs more per field than everything else a field needs).
struct Fields<'a> {
    rest: &'a str,
    /// Whether the template shows reset times (else they are checked, not built).
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

/// Renders every slot up to the `end` line into `line`; the count that line states, or
/// `None` for anything the fast path does not take.
fn render_slots<'a, Tz: TimeZone>(
    fields: &mut Fields<'a>,
    line: &mut LineRenderer<'_, Tz>,
    emit: &mut Emit<'a>,
) -> Option<usize>
where
    Tz::Offset: Display,
{
    let mut slot: Option<SlotLine<'_>> = None;
    // One window list, reused by every slot.
    let mut windows = Vec::new();
    loop {
        match fields.next()? {
            ("slot", false) => {
                let next = parse_slot(fields.line::<5>()?)?;
                if let Some(done) = slot.replace(next) {
                    // Strictly increasing: the order (and uniqueness) of `decode`'s map.
                    if slot.as_ref()?.name <= done.name {
                        return None;
                    }
                    emit.slot(line, &done, &mut windows);
                    windows.clear();
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
                // Not shown; checked as `decode` checks it.
                slot.as_ref()?;
                fields.line::<1>()?;
            }
            ("end", false) => {
                let [count] = fields.line::<1>()?;
                if let Some(done) = slot.take() {
                    emit.slot(line, &done, &mut windows);
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
    optional(provider)?; // checked, not shown
    let state = match state {
        "active" => SlotState::Active,
        "degraded" => SlotState::Degraded,
        "inactive" => SlotState::Inactive,
        _ => return None,
    };
    Some(SlotLine {
        name,
        account,
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

#[cfg(test)]
#[path = "lines_tests.rs"]
mod tests;
