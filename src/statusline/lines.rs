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

use std::fmt::Display;
use std::str::Split;

use chrono::{DateTime, TimeZone, Utc};

use super::{LineRenderer, Options, SlotView};
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
    // No escapes: every text field is then its own unescaped value, borrowed as is.
    if text.contains('\\') {
        return None;
    }
    let (updated_at, stale_after_secs, lines) = decode_head(text, source)?;
    let mut line = LineRenderer::start(opts, now, tz, updated_at, stale_after_secs);
    let count = render_slots(lines, &mut line)?;
    (count == line.slots).then(|| line.finish())
}

/// One slot's line of the file.
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
fn render_slots<Tz: TimeZone>(
    lines: Split<'_, char>,
    line: &mut LineRenderer<'_, Tz>,
) -> Option<usize>
where
    Tz::Offset: Display,
{
    let mut slot: Option<SlotLine<'_>> = None;
    // One window list, reused by every slot.
    let mut windows = Vec::new();
    for text in lines {
        let mut fields = text.split('\t');
        match fields.next()? {
            "slot" => {
                let next = parse_slot(&mut fields)?;
                if let Some(done) = slot.replace(next) {
                    // Strictly increasing: the order (and uniqueness) of `decode`'s map.
                    if slot.as_ref()?.name <= done.name {
                        return None;
                    }
                    line.slot(
                        done.name,
                        &LineSlot {
                            slot: &done,
                            windows: &windows,
                        },
                    );
                    windows.clear();
                }
            }
            "window" => {
                slot.as_ref()?;
                windows.push(parse_window(&mut fields)?);
            }
            "end" => {
                if let Some(done) = slot.take() {
                    line.slot(
                        done.name,
                        &LineSlot {
                            slot: &done,
                            windows: &windows,
                        },
                    );
                }
                return fields.next()?.parse().ok();
            }
            _ => return None,
        }
    }
    None
}

fn parse_slot<'a>(fields: &mut impl Iterator<Item = &'a str>) -> Option<SlotLine<'a>> {
    let name = fields.next()?;
    let account = optional(fields.next()?)?;
    optional(fields.next()?)?; // the provider: checked, not shown
    let state = match fields.next()? {
        "active" => SlotState::Active,
        "degraded" => SlotState::Degraded,
        "inactive" => SlotState::Inactive,
        _ => return None,
    };
    let fetched_at = parse_time(fields.next()?)?;
    let slot = SlotLine {
        name,
        account,
        state,
        fetched_at,
    };
    fields.next().is_none().then_some(slot)
}

fn parse_window<'a>(fields: &mut impl Iterator<Item = &'a str>) -> Option<(&'a str, Window)> {
    let name = fields.next()?;
    let utilization = fields.next()?.parse().ok()?;
    let resets_at = parse_time(fields.next()?)?;
    let window = Window {
        utilization,
        resets_at,
    };
    fields.next().is_none().then_some((name, window))
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
