//! An inactive Claude Code slot comes back when the user logs in again with Claude Code
//! itself (`CLAUDE_CONFIG_DIR=DIR claude`, then `/login`), which writes a new login into
//! DIR's store without telling sessctl.
//!
//! Each inactive Claude Code slot's store is probed by a job
//! (`crate::daemon::jobs::claude_code_reload`): a stat of the file, and only when its
//! modification time or size changed since the last probe, a read. A login there whose
//! refresh token is not the one that died makes the slot active again with it, unless the
//! provider says it is another account's: then the slot stays inactive and `status` says
//! so.
//!
//! Which refresh token died is remembered across restarts without keeping it: while the
//! slot is inactive, the state file holds the token's keyed fingerprint
//! (`crate::fingerprint`, `StateFile::dead_logins`), taken the first time the slot is
//! looked at inactive, while its credentials are still the ones that died, and dropped
//! when it is active again. So a `/login` made while no daemon ran is told from the dead
//! login by the next daemon's first probe, although that daemon loads the new login as the
//! slot's credentials. Without the key (keychain unreachable at start) the token held in
//! memory is the dead one, as before. Probes ride on the manager's existing wakeups (every event, and the timer, which
//! fires at least every `schedule::MAX_SLEEP`), at most one per slot per [`PROBE_EVERY`]:
//! they add no wakeup of their own. Nothing here reads a file or a clock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::account::{AccountKey, Identity, Match};
use crate::config::Provider;
use crate::fingerprint::FingerprintKey;
use crate::secret::Secret;
use crate::slot_reason::SlotReason;
use crate::state::SlotState;
use crate::store::Tokens;

use super::Manager;
use super::orders::JobOrder;
use super::results::schedule_next;
use super::schedule::delta;
use super::slot::{Creds, Slot, Stored};

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
    /// How to know the refresh token that died, which a store still holding it still has.
    pub dead: Option<Dead>,
    pub stamp: Option<StoreStamp>,
    pub found: Option<Found>,
}

/// The refresh token that died, as a probe recognises it.
pub enum Dead {
    /// Its keyed fingerprint, as the state file keeps it.
    Print {
        key: Arc<FingerprintKey>,
        print: String,
    },
    /// The token itself, held in memory (no key this run).
    Token(Secret),
}

impl Dead {
    /// Whether `token` is the one that died.
    pub fn is(&self, token: &Secret) -> bool {
        match self {
            Dead::Print { key, print } => key.of(token) == *print,
            Dead::Token(dead) => dead == token,
        }
    }
}

/// Per slot: the last probe's stamp and time, and whether one is running; and the
/// fingerprints of the refresh tokens seen die.
pub(in crate::daemon) struct Watch {
    slots: BTreeMap<String, Watched>,
    /// The inactive Claude Code slots, the only ones probed: kept up to date from the
    /// slots each event changed ([`Watch::track`]), so a probe round does not walk every slot.
    inactive: BTreeSet<String>,
    /// `StateFile::dead_logins`.
    dead: BTreeMap<String, String>,
    key: Option<Arc<FingerprintKey>>,
}

impl Watch {
    /// Watching starts from the fingerprints the state file kept.
    pub fn new(dead: BTreeMap<String, String>, key: Option<Arc<FingerprintKey>>) -> Self {
        Watch {
            slots: BTreeMap::new(),
            inactive: BTreeSet::new(),
            dead,
            key,
        }
    }

    /// Slot `name` changed (`slot` is `None` when it was removed): whether it is an inactive
    /// Claude Code slot now.
    pub(super) fn track(&mut self, name: &str, slot: Option<&Slot>) {
        let inactive = slot.is_some_and(|slot| {
            slot.record.claude_code.is_some() && slot.record.state == SlotState::Inactive
        });
        if inactive {
            if !self.inactive.contains(name) {
                self.inactive.insert(name.to_owned());
            }
        } else {
            self.inactive.remove(name);
        }
    }

    /// The inactive Claude Code slots tracked (for the index check).
    #[cfg(test)]
    pub(super) fn inactive(&self) -> &BTreeSet<String> {
        &self.inactive
    }

    /// The fingerprints to save (`StateFile::dead_logins`).
    pub fn dead_logins(&self) -> &BTreeMap<String, String> {
        &self.dead
    }
}

struct Watched {
    seen: Option<StoreStamp>,
    last: DateTime<Utc>,
    running: bool,
}

impl Manager {
    /// Starts a probe of every inactive Claude Code slot not probed for [`PROBE_EVERY`].
    pub(in crate::daemon) fn probe_inactive_claude_code(&mut self) {
        // The set of inactive Claude Code slots follows every change made so far.
        self.reindex();
        let now = self.now;
        // Slots in a `use` move: their store is being rewritten, and no job of theirs runs.
        let moving: Vec<String> = (self.moving.as_ref())
            .map(|m| [Some(m.plan.slot.clone()), m.plan.outgoing.clone()])
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        let reload = &mut self.claude_code_reload;
        let watch = &mut reload.slots;
        watch.retain(|name, _| self.slots.contains_key(name));
        let before = reload.dead.len();
        reload.dead.retain(|name, _| {
            (self.slots.get(name)).is_some_and(|s| {
                s.record.state == SlotState::Inactive && s.record.claude_code.is_some()
            })
        });
        let mut remembered = reload.dead.len() != before;
        for name in &reload.inactive {
            let Some(slot) = self.slots.get(name) else {
                continue;
            };
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
            remembered |= remember_dead(&mut reload.dead, reload.key.as_deref(), slot);
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
                dead: dead_of(&reload.dead, reload.key.as_ref(), slot),
                stamp: None,
                found: None,
            })));
        }
        if remembered {
            self.persist();
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
        self.claude_code_reload.dead.remove(&probe.name);
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

/// Keeps the fingerprint of `slot`'s refresh token as the one that died, unless one is
/// kept already (after a restart the slot's credentials are whatever its store holds then,
/// maybe a new login). True when it kept one.
fn remember_dead(
    dead: &mut BTreeMap<String, String>,
    key: Option<&FingerprintKey>,
    slot: &super::slot::Slot,
) -> bool {
    let (Some(key), Some(tokens)) = (key, slot.creds.tokens()) else {
        return false;
    };
    if dead.contains_key(&slot.name) {
        return false;
    }
    dead.insert(slot.name.clone(), key.of(&tokens.refresh_token));
    true
}

/// How a probe of `slot` knows the dead refresh token: by its kept fingerprint, else by
/// the token in memory.
fn dead_of(
    dead: &BTreeMap<String, String>,
    key: Option<&Arc<FingerprintKey>>,
    slot: &super::slot::Slot,
) -> Option<Dead> {
    match (key, dead.get(&slot.name)) {
        (Some(key), Some(print)) => Some(Dead::Print {
            key: Arc::clone(key),
            print: print.clone(),
        }),
        _ => (slot.creds.tokens()).map(|t| Dead::Token(t.refresh_token.clone())),
    }
}
