//! The slot Claude Code's figures were attributed to, rendered again from its block of
//! `quota.lines` with the figures laid over its windows as [`super::super::claude_code::apply`]
//! lays them over a cache slot, and marked current.

use std::collections::BTreeMap;
use std::fmt::Display;

use chrono::{DateTime, TimeZone, Utc};

use super::{Fields, LineSlot, parse_slot};
use crate::cache::Window;
use crate::statusline::attribute::claude_code_is_fresher;
use crate::statusline::{Current, LineRenderer, SlotView};

/// The text of the slot whose block of the file starts at `block` (its `slot` line, then its
/// `claude_code` and `window` lines), with Claude Code's `claude` figures where they are the
/// fresher; `None` for a block the first pass would not have taken either.
pub(super) fn render_slot<Tz: TimeZone>(
    block: &str,
    claude: &BTreeMap<String, Window>,
    line: &mut LineRenderer<'_, Tz>,
    now: DateTime<Utc>,
) -> Option<String>
where
    Tz::Offset: Display,
{
    let mut fields = Fields {
        rest: block,
        // The cached reset times are weighed against Claude Code's.
        needs_resets: true,
    };
    let ("slot", false) = fields.next()? else {
        return None;
    };
    let slot = parse_slot(fields.line::<5>()?)?;
    let mut windows: Vec<(&str, Window)> = Vec::new();
    loop {
        match fields.next()? {
            ("window", false) => {
                let [name, utilization, resets_at] = fields.line::<3>()?;
                let window = Window {
                    utilization: utilization.parse().ok()?,
                    resets_at: Fields::time(resets_at, true)?,
                };
                windows.push((name, window));
            }
            ("claude_code", false) => {
                fields.line::<1>()?;
            }
            // The next slot, or the end.
            _ => break,
        }
    }
    let mut fetched_at = slot.fetched_at;
    for (name, figure) in claude {
        let cached = LineSlot {
            slot: &slot,
            windows: &windows,
        }
        .window(name)
        .cloned();
        if claude_code_is_fresher(cached.as_ref(), figure) {
            // Pushed last, so it is the one `window` finds.
            windows.push((name.as_str(), figure.clone()));
            fetched_at = Some(now);
        }
    }
    let laid = super::SlotLine { fetched_at, ..slot };
    let view = LineSlot {
        slot: &laid,
        windows: &windows,
    };
    Some(line.render_alone(slot.name, &Current(&view)))
}
