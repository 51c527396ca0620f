//! An inactive Claude Code slot comes back when the user logs in again with Claude Code
//! itself (`CLAUDE_CONFIG_DIR=DIR claude`, then `/login`), which writes a new login into
//! DIR's store without telling sessctl.
//!
//! Each inactive Claude Code slot's store is probed by a job
//! (`crate::daemon::jobs::claude_code_reload`): a stat of the file, and only when its
//! modification time or size changed since the last probe, a read. A login there whose
//! refresh token is not the one that died makes the slot active again with it, unless the
//! provider says it is another account's: then the slot stays inactive and `status` says
//! so. Probes ride on the manager's existing wakeups (every event, and the timer, which
//! fires at least every `schedule::MAX_SLEEP`), at most one per slot per [`PROBE_EVERY`]:
//! they add no wakeup of their own. Nothing here reads a file or a clock.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::account::{AccountKey, Identity, Match};
use crate::config::Provider;
use crate::secret::Secret;
use crate::slot_reason::SlotReason;
use crate::state::SlotState;
use crate::store::Tokens;

use super::Manager;
use super::orders::JobOrder;
use super::results::schedule_next;
use super::schedule::delta;
use super::slot::{Creds, Stored};

/// Shortest time between two probes of one slot's store: a stat is cheap, and a user who
/// just ran `/login` sees the slot back within seconds of their next `status`.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);

/// What identifies one version of a store file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStamp {
    pub modified: Option<SystemTime>,
    pub len: u64,
    /// Claude Code replaces the file (a rename): a new inode even within one mtime tick.
    pub inode: u64,
}

/// What a probe found.
pub enum Found {
    /// The file's stamp is the one seen last time: not read.
    Unchanged,
    /// No login there, or still the one that died.
    Nothing,
    /// A login other than the dead one; `identity` when the provider named its account.
    Login {
        tokens: Tokens,
        identity: Option<Identity>,
    },
    /// The store could not be read (logged; probed again later).
    Failed(String),
}

/// A probe of slot `name`'s store: ordered with `found` empty, reported with it set.
pub struct Probe {
    pub name: String,
    pub generation: u64,
    pub dir: PathBuf,
    pub provider: Option<Provider>,
    /// The stamp of the last probe: an unchanged file is not read again.
    pub seen: Option<StoreStamp>,
    /// The refresh token that died (the slot's), which a store still holding it still has.
    pub dead: Option<Secret>,
    pub stamp: Option<StoreStamp>,
    pub found: Option<Found>,
}

/// Per slot: the last probe's stamp and time, and whether one is running.
#[derive(Default)]
pub(in crate::daemon) struct Watch {
    slots: BTreeMap<String, Watched>,
}

struct Watched {
    seen: Option<StoreStamp>,
    last: DateTime<Utc>,
    running: bool,
}

impl Manager {
    /// Starts a probe of every inactive Claude Code slot not probed for [`PROBE_EVERY`].
    pub(in crate::daemon) fn probe_inactive_claude_code(&mut self) {
        let now = self.now;
        // Slots in a `use` move: their store is being rewritten, and no job of theirs runs.
        let moving: Vec<String> = (self.moving.as_ref())
            .map(|m| [Some(m.plan.slot.clone()), m.plan.outgoing.clone()])
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        let watch = &mut self.claude_code_reload.slots;
        watch.retain(|name, _| self.slots.contains_key(name));
        for slot in self.slots.values() {
            let Some(dir) = &slot.record.claude_code else {
                continue;
            };
            if slot.record.state != SlotState::Inactive
                || slot.job.is_some()
                || moving.contains(&slot.name)
            {
                continue;
            }
            // A new login cannot cure a refused client or a provider gone from the config.
            if matches!(
                slot.record.reason,
                Some(SlotReason::ClientRejected | SlotReason::UnknownProvider)
            ) {
                continue;
            }
            let entry = watch.entry(slot.name.clone()).or_insert(Watched {
                seen: None,
                last: DateTime::<Utc>::MIN_UTC,
                running: false,
            });
            if entry.running || now < entry.last + delta(PROBE_EVERY) {
                continue;
            }
            entry.running = true;
            entry.last = now;
            self.jobs.push(JobOrder::ProbeClaudeCode(Box::new(Probe {
                name: slot.name.clone(),
                generation: slot.record.generation,
                dir: dir.clone(),
                provider: self.config.providers.get(&slot.record.provider).cloned(),
                seen: entry.seen,
                dead: slot.creds.tokens().map(|t| t.refresh_token.clone()),
                stamp: None,
                found: None,
            })));
        }
    }

    /// A probe ended: a new login of the slot's account makes it active again.
    pub(in crate::daemon) fn on_claude_code_probed(&mut self, probe: Probe) {
        if let Some(watched) = self.claude_code_reload.slots.get_mut(&probe.name) {
            watched.running = false;
            watched.seen = probe.stamp;
        }
        if self.in_move(&probe.name) {
            return;
        }
        let Some(slot) = self.slots.get_mut(&probe.name) else {
            return;
        };
        if slot.record.generation != probe.generation
            || slot.record.state != SlotState::Inactive
            || slot.job.is_some()
        {
            return;
        }
        let (tokens, identity) = match probe.found {
            Some(Found::Login { tokens, identity }) => (tokens, identity),
            Some(Found::Failed(error)) => {
                tracing::debug!(
                    slot = probe.name,
                    "cannot probe Claude Code's store: {error}"
                );
                return;
            }
            _ => return,
        };
        let provider = slot.record.provider.clone();
        let theirs = identity
            .as_ref()
            .and_then(|i| AccountKey::new(&provider, i));
        if let (Some(theirs), Some(ours)) = (&theirs, &slot.record.account_key)
            && theirs.matches(ours) == Match::None
        {
            let error = format!(
                "Claude Code's store in {} now holds a login of {}, not of this slot's account; to keep that login as this slot: sessctl logout {} && sessctl adopt {} --claude-code {}",
                probe.dir.display(),
                theirs.label(),
                slot.name,
                slot.name,
                probe.dir.display()
            );
            if slot.record.last_refresh_error.as_deref() != Some(&error) {
                tracing::warn!(slot = probe.name, "{error}");
                slot.record.last_refresh_error = Some(error);
                self.persist();
            }
            return;
        }
        let generation = slot.record.generation;
        slot.creds = Creds::Present {
            tokens,
            stored: Stored::Yes {
                generation,
                version: 1,
            },
        };
        slot.transition(SlotState::Active, None, None);
        let unit = self.rng.f64();
        schedule_next(slot, self.config.refresh_before_expiry, unit);
        tracing::info!(
            slot = probe.name,
            "Claude Code's store holds a new login: the slot is active again"
        );
        self.persist();
    }
}
