//! What work is due for each slot and starting it: credential loads, store write retries,
//! scheduled and asked-for refreshes (the single flight: one job per slot), usage fetches,
//! revocation retries, the cache heartbeat and alert reminders; and the earliest moment
//! any of it is next due, for the runner's timer.

use chrono::{DateTime, Utc};

use crate::protocol::{ErrorCode, ErrorReply};
use crate::state::SlotState;

use super::Manager;
use super::due_index::SlotDeadlines;
use super::orders::{JobOrders, Urgency};
use super::pacing;
use super::schedule;
use super::slot::{Creds, Job, Slot, Stored};

impl Manager {
    /// Starts whatever is due for idle slots: credential loads, store write retries,
    /// scheduled refreshes. Compares against the wall clock, so time spent suspended counts.
    pub(super) fn start_due_work(&mut self, now: DateTime<Utc>) {
        // From the deadline index: what is due costs what is due, not a walk over every slot.
        self.reindex();
        let mut due: Vec<&Slot> = self
            .due
            .work_due(now)
            .iter()
            .filter_map(|name| self.slots.get(name))
            .collect();
        // Most urgent first, so the first token requests go to the soonest expiries.
        due.sort_by_key(|slot| expiry_guess(slot));
        let due: Vec<String> = due.into_iter().map(|slot| slot.name.clone()).collect();
        for name in due {
            self.start_next_job(&name, true);
        }
        self.reindex();
        for name in self.due.usage_due(now) {
            self.start_usage_fetch(&name, now);
        }
        self.start_due_revocations(now);
        self.advance_move();
        if now >= self.cache_heartbeat_at() {
            self.publish_cache();
        }
        if let Some(reminder) = self.alerts.due_reminder(&self.slots, &self.config, now) {
            self.alert_queue.push(reminder);
        }
    }

    /// The earliest moment some slot has work of its own to start.
    pub fn earliest_deadline(&mut self) -> Option<DateTime<Utc>> {
        self.reindex();
        // A slot held by a `use` move starts nothing until the move ends: its deadline,
        // maybe long past, must not wake the timer meanwhile (it stays indexed).
        let work = (self.due.work_in_order())
            .find(|(_, name)| !self.held_by_move(name))
            .map(|(at, _)| at);
        work.into_iter()
            .chain(self.due.earliest_usage().map(gather_usage))
            .chain(std::iter::once(self.cache_heartbeat_at()))
            .chain(self.cache_deadline())
            .chain(self.alerts.reminder_at())
            .chain(self.revocations.deadline())
            .chain(self.move_deadline())
            .min()
    }

    /// A slot's entry in the deadline index: its own work while it runs no job, and its
    /// usage fetch.
    pub(super) fn slot_deadlines(&self, slot: &Slot) -> SlotDeadlines {
        SlotDeadlines {
            work: if slot.job.is_none() {
                deadline(slot)
            } else {
                None
            },
            usage: self.usage_deadline(slot),
        }
    }

    /// Whether the deadline index matches a walk over every slot (for the simulator and
    /// the tests: the index must never fall out of step with the slots).
    #[cfg(test)]
    pub(in crate::daemon) fn check_index(&mut self) -> Result<(), String> {
        self.reindex();
        let scanned: std::collections::BTreeMap<String, SlotDeadlines> = self
            .slots
            .values()
            .map(|slot| (slot.name.clone(), self.slot_deadlines(slot)))
            .collect();
        if &scanned != self.due.all() {
            let differ: Vec<_> = scanned
                .iter()
                .filter(|(name, d)| self.due.all().get(*name) != Some(d))
                .map(|(name, d)| {
                    format!(
                        "{name}: scanned {d:?}, indexed {:?}",
                        self.due.all().get(name)
                    )
                })
                .collect();
            return Err(format!("the deadline index is out of step: {differ:?}"));
        }
        let probed: std::collections::BTreeSet<String> = self
            .slots
            .values()
            .filter(|s| s.record.claude_code.is_some() && s.record.state == SlotState::Inactive)
            .map(|s| s.name.clone())
            .collect();
        if &probed != self.claude_code_reload.inactive() {
            return Err(format!(
                "the inactive Claude Code slots are out of step: scanned {probed:?}, tracked {:?}",
                self.claude_code_reload.inactive()
            ));
        }
        let inactive: std::collections::BTreeSet<String> = self
            .slots
            .values()
            .filter(|s| s.record.state == SlotState::Inactive)
            .map(|s| s.name.clone())
            .collect();
        let records_behind = (self.records.len() != self.slots.len())
            || (self.slots.iter())
                .any(|(name, slot)| self.records.get(name).is_none_or(|r| **r != slot.record));
        if self.unobserved.is_empty() && records_behind {
            return Err("the published records differ from the slots' own".to_owned());
        }
        if self.unobserved.is_empty() && &inactive != self.alerts.inactive() {
            return Err(format!(
                "alerts count {:?} inactive, the slots say {inactive:?}",
                self.alerts.inactive()
            ));
        }
        Ok(())
    }

    /// The cache is rewritten at least this often even when nothing changed, so its
    /// `updated_at` tells readers the daemon is alive (the cache-level staleness check).
    pub(super) fn cache_heartbeat_at(&self) -> DateTime<Utc> {
        self.cache_published_at + schedule::delta(self.config.stale_after / 3)
    }

    /// Starts the job a slot needs next, if it is idle: load, write, logout or refresh.
    /// `scheduled` says whether the timer asked (then a refresh starts when its time has
    /// come) or a caller did (then one starts when a waiter wants it).
    pub(in crate::daemon) fn start_next_job(&mut self, name: &str, scheduled: bool) {
        // A slot being moved between stores waits for the move (its end starts it again).
        if self.held_by_move(name) {
            self.answer_waiters_while_moving(name);
            return;
        }
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        if slot.job.is_some() {
            return;
        }
        let now = self.now;
        if self.jobs.drain.is_closed() {
            slot.refuse_work_while_stopping(now);
            return;
        }
        if !slot.logouts.is_empty() {
            self.start_logout(name);
            return;
        }
        match &slot.creds {
            // A failed load is retried when its backoff ends or a caller asks, never at
            // once: a locked keychain must not be read in a loop.
            Creds::NotLoaded { retry_at, .. }
                if scheduled || *retry_at <= now || !slot.waiters.is_empty() =>
            {
                slot.job = Some(Job::Loading);
                let claude_code = slot.record.claude_code.clone();
                self.jobs
                    .load(slot.name.clone(), slot.record.generation, claude_code);
            }
            Creds::NotLoaded { .. } => {}
            Creds::Missing => {
                let refusal = slot.refusal(&self.config).unwrap_or_else(|| {
                    ErrorReply::new(
                        ErrorCode::SlotInactive,
                        format!("slot {name} has no stored credentials; log in again"),
                    )
                });
                slot.resolve_waiters(Err(refusal), now);
            }
            Creds::Present {
                stored: Stored::No { retry_at, .. },
                ..
            } if scheduled && *retry_at <= now => {
                start_store_write(&mut self.jobs, slot);
            }
            // Journaled tokens the store may or may not hold: restored first, never refreshed
            // under a guessed condition; callers meanwhile hear why.
            Creds::Present {
                stored: Stored::No { retry_at, .. },
                ..
            } if slot.restoring.is_some() => {
                if *retry_at <= now {
                    if let Some(item) = slot.restoring.clone() {
                        slot.job = Some(Job::Writing);
                        let (name, generation) = (slot.name.clone(), slot.record.generation);
                        self.jobs.push(super::orders::JobOrder::Restore {
                            name,
                            generation,
                            item,
                        });
                    }
                } else {
                    let error = ErrorReply::new(
                        ErrorCode::StoreUnavailable,
                        format!(
                            "slot {name}'s newest tokens are in the journal and the credential store is not taking them yet; retrying"
                        ),
                    );
                    slot.resolve_waiters(Err(error), now);
                }
            }
            Creds::Present { tokens, .. } => {
                if let Some(refusal) = slot.refusal(&self.config) {
                    slot.resolve_waiters(Err(refusal), now);
                    return;
                }
                let before = slot.refresh_before(self.config.refresh_before_expiry);
                let due = schedule::is_due(tokens, before, now);
                // An explicit `refresh` goes at once; anything else waits out the pacing.
                let explicit = slot.waiters.iter().any(|w| !w.token_only);
                let asked = slot.refresh_wanted || (due && !slot.waiters.is_empty());
                let paced = pacing::may_request(slot.last_reply_at, now);
                let timed = scheduled && slot.next_refresh_at.is_some_and(|at| at <= now);
                if explicit || timed || (asked && paced) {
                    self.start_refresh(name);
                } else if asked && let Some(replied) = slot.last_reply_at {
                    // Callers wait (the timer starts the refresh when the interval is over).
                    let earliest = pacing::earliest_after(replied);
                    slot.next_refresh_at =
                        Some(slot.next_refresh_at.map_or(earliest, |at| at.min(earliest)));
                } else {
                    slot.resolve_waiters(Ok(()), now);
                }
            }
        }
    }

    /// Starts the one refresh job of a slot whose credentials are present.
    fn start_refresh(&mut self, name: &str) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let (Some(tokens), Some(condition)) = (slot.creds.tokens(), slot.creds.write_condition())
        else {
            return;
        };
        let Some(provider) = self.config.providers.get(&slot.record.provider) else {
            let error = format!(
                "provider {} is not in the configuration",
                slot.record.provider
            );
            slot.transition(
                SlotState::Degraded,
                Some(crate::slot_reason::SlotReason::UnknownProvider),
                Some(error.clone()),
            );
            slot.next_refresh_at = None;
            let now = self.now;
            slot.resolve_waiters(Err(ErrorReply::new(ErrorCode::UnknownProvider, error)), now);
            self.persist();
            return;
        };
        tracing::debug!(slot = name, "refreshing");
        slot.job = Some(Job::Refreshing);
        slot.refresh_wanted = false;
        // Someone waiting goes before the timer's refreshes; those go soonest expiry first.
        let urgency = if slot.waiters.is_empty() {
            Urgency::Scheduled(tokens.expires_at)
        } else {
            Urgency::Asked
        };
        self.jobs.refresh(
            (name.to_owned(), slot.record.generation),
            provider.clone(),
            tokens.clone(),
            condition,
            (urgency, slot.record.claude_code.clone()),
        );
    }
}

/// Usage fetches due within one span of this length start together, on one timer wakeup:
/// at 1,000 slots polled every 5 minutes, one is due every 0.3 s, and a wakeup each is most
/// of a steady state's timer wakeups. A fetch goes at most this much late (its interval only
/// lengthens, so no account's budget is exceeded); refreshes keep their exact deadlines.
const USAGE_GATHER_MS: i64 = 2_000;

/// The timer's moment for a usage fetch due at `at`: the end of its gathering span.
fn gather_usage(at: DateTime<Utc>) -> DateTime<Utc> {
    let ms = at.timestamp_millis();
    let end = ms.div_euclid(USAGE_GATHER_MS).saturating_add(1) * USAGE_GATHER_MS;
    if ms.rem_euclid(USAGE_GATHER_MS) == 0 && at.timestamp_subsec_nanos().is_multiple_of(1_000_000)
    {
        return at;
    }
    DateTime::from_timestamp_millis(end).unwrap_or(at)
}

/// When an idle slot next has work of its own (not counting callers).
fn deadline(slot: &Slot) -> Option<DateTime<Utc>> {
    match &slot.creds {
        Creds::NotLoaded { retry_at, .. } => Some(*retry_at),
        Creds::Missing => None,
        Creds::Present { .. } if slot.record.state == SlotState::Inactive => None,
        // Unsaved tokens: the write retry, but the refresh schedule still runs (the held
        // tokens must not expire while the keychain is away).
        Creds::Present {
            stored: Stored::No { retry_at, .. },
            ..
        } => Some(
            slot.next_refresh_at
                .map_or(*retry_at, |at| at.min(*retry_at)),
        ),
        Creds::Present { .. } => slot.next_refresh_at,
    }
}

/// Starts writing the slot's held tokens to the store (the write its `Stored::No` is
/// waiting for), under the write condition they need. Does nothing without tokens.
pub(in crate::daemon) fn start_store_write(jobs: &mut JobOrders, slot: &mut Slot) {
    let (Some(tokens), Some(condition)) = (slot.creds.tokens(), slot.creds.write_condition())
    else {
        return;
    };
    slot.job = Some(Job::Writing);
    jobs.write(
        slot.name.clone(),
        slot.record.generation,
        tokens.clone(),
        (condition, slot.record.claude_code.clone()),
    );
}

/// When a slot's access token expires, or, before its credentials are loaded (a restart),
/// when it was last refreshed or logged in: with tokens of one lifetime, the same order.
fn expiry_guess(slot: &Slot) -> Option<DateTime<Utc>> {
    match slot.creds.tokens() {
        Some(tokens) => tokens.expires_at,
        None => Some(
            slot.record
                .last_refresh_at
                .unwrap_or(slot.record.created_at),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        format!("2030-01-01T00:00:{s}Z").parse().unwrap()
    }

    #[test]
    fn usage_deadlines_gather_at_the_end_of_their_two_second_span() {
        assert_eq!(gather_usage(at("10.000")), at("10.000"));
        assert_eq!(gather_usage(at("10.001")), at("12.000"));
        assert_eq!(gather_usage(at("11.999")), at("12.000"));
        assert_eq!(gather_usage(at("11.9995")), at("12.000"));
        assert_eq!(gather_usage(at("12.000")), at("12.000"));
    }
}
