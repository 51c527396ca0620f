//! The manager's handling of job results. A result for a slot that is gone, or for an older
//! generation of it (a re-login or logout happened meanwhile), is dropped: its tokens
//! belong to a login that no longer exists, and the store's compare-and-set refuses to
//! keep them; the refresh token it carries is revoked (`crate::daemon::core::retire`). A login's results
//! are applied in `crate::daemon::core::login`.

use chrono::{DateTime, Utc};

use crate::protocol::{ErrorCode, ErrorReply};
use crate::slot_reason::SlotReason;
use crate::state::{SlotRecord, SlotState};
use crate::store::{StoreError, StoredCredentials};

use crate::daemon::core::Manager;
use crate::daemon::core::conflict;
use crate::daemon::core::login::LoginWrite;
use crate::daemon::core::pacing::{self, LastReply};
use crate::daemon::core::refreshed::{
    Applied, RefreshAt, StoreSaid, apply_refresh, unusable_reply,
};
use crate::daemon::core::reports::{JobResult, RefreshOutcome};
use crate::daemon::core::schedule::{self, delta};
use crate::daemon::core::slot::{Creds, Slot, Stored, refresh_before};
use crate::daemon::start::reconcile;

impl Manager {
    /// Applies one job result.
    pub fn on_result(&mut self, result: JobResult, clocks: crate::daemon::core::schedule::Clocks) {
        self.at(clocks);
        self.apply_result(result);
    }

    /// [`Manager::on_result`] at the time already taken.
    pub(in crate::daemon) fn apply_result(&mut self, result: JobResult) {
        match result {
            JobResult::Loaded {
                name,
                generation,
                result,
            } => self.on_loaded(&name, generation, result),
            JobResult::Refreshed {
                name,
                generation,
                outcome,
                unusable,
            } => self.on_refreshed(&name, generation, outcome, unusable.as_deref()),
            JobResult::Written {
                name,
                generation,
                result,
            } => self.on_written(&name, generation, result),
            JobResult::LoggedIn(login) => self.on_logged_in(*login),
            JobResult::LoginJournaled {
                name,
                generation,
                journaled,
            } => self.on_login_journaled(&name, generation, journaled),
            JobResult::Revocation(report) => self.on_revocation(*report),
            JobResult::Adopted(adoption) => self.on_adopted(*adoption),
            JobResult::ClaudeCodeLogin(login) => self.on_claude_code_login(*login),
            JobResult::ClaudeCodeProbed(probe) => self.on_claude_code_probed(*probe),
            JobResult::Moved(report) => self.on_moved(*report),
            JobResult::Usage {
                name,
                generation,
                outcome,
            } => self.on_usage(&name, generation, outcome),
            JobResult::CacheSaved(result) => match result {
                Ok(updated_at) => {
                    self.cache_written_at = Some(updated_at);
                    self.cache_error = None;
                }
                Err(e) => {
                    tracing::error!("{e}");
                    self.cache_error = Some(e);
                }
            },
            JobResult::StateSaved(result) => {
                if let Err(e) = &result {
                    tracing::error!("{e}");
                }
                self.state_durable(result.as_ref().ok().copied());
                self.state_error = result.err();
            }
        }
    }

    /// The slot a result is for, if it still exists at that generation; marks it idle.
    fn current(&mut self, name: &str, generation: u64, what: &str) -> Option<&mut Slot> {
        match self.slots.get_mut(name) {
            Some(slot) if slot.record.generation == generation => {
                slot.job = None;
                Some(slot)
            }
            _ => {
                tracing::info!(slot = name, generation, "dropping {what} of an older login");
                None
            }
        }
    }

    fn on_loaded(
        &mut self,
        name: &str,
        generation: u64,
        result: Result<Option<StoredCredentials>, StoreError>,
    ) {
        let refresh_before_expiry = self.config.refresh_before_expiry;
        let (now, unit) = (self.now, self.rng.f64());
        let Some(slot) = self.current(name, generation, "a credential load") else {
            self.retire_dropped_load(name, generation, result);
            return;
        };
        let mut store_error = None;
        // The generation of an item adopted from the store, which the state file had not
        // seen: no later login may be given it, or one below it.
        let mut adopted = None;
        match result {
            Ok(Some(item)) if slot.record.is_stale(reconcile::version_of(&item)) => {
                slot.refuse_stale(reconcile::version_of(&item));
            }
            Ok(Some(item)) if never_held(&slot.record, &item) => {
                refuse_never_held(slot, &item);
            }
            Ok(Some(item)) => {
                slot.record.note_item(reconcile::version_of(&item));
                slot.clear_stale();
                if item.generation != slot.record.generation {
                    tracing::warn!(
                        slot = name,
                        stored = item.generation,
                        recorded = slot.record.generation,
                        "the store holds another login than the state file records; using the store's"
                    );
                    // A newer login than the one the state file saw refused: it is usable.
                    if item.generation > slot.record.generation
                        && slot.record.state == SlotState::Inactive
                    {
                        slot.transition(SlotState::Active, None, None);
                    }
                    slot.record.generation = item.generation;
                    adopted = Some(item.generation);
                }
                let held = slot.newer_journaled(&item, now);
                slot.creds = held.unwrap_or(Creds::Present {
                    stored: Stored::from_item(&item),
                    tokens: item.tokens,
                });
                if slot.record.state == SlotState::Degraded {
                    let error = slot.record.last_refresh_error.take();
                    slot.transition(SlotState::Active, None, error);
                }
                schedule_next(slot, refresh_before_expiry, unit);
            }
            Ok(None) => {
                slot.creds = Creds::Missing;
                if slot.record.state != SlotState::Inactive {
                    slot.deactivate(
                        SlotReason::CredentialsMissing,
                        "the credential store has no item for this slot; log in again".into(),
                    );
                }
            }
            Err(StoreError::Unavailable(e)) => {
                let attempt = match slot.creds {
                    Creds::NotLoaded { attempt, .. } => attempt + 1,
                    _ => 1,
                };
                slot.creds = Creds::NotLoaded {
                    attempt,
                    retry_at: retry_time(now, attempt, unit),
                };
                if slot.record.state != SlotState::Inactive {
                    slot.transition(
                        SlotState::Degraded,
                        Some(SlotReason::CredentialStoreUnavailable),
                        Some(e.clone()),
                    );
                }
                // Once per outage per slot; the store worker counts the failed calls.
                if attempt == 1 {
                    tracing::warn!(slot = name, "cannot load credentials: {e}");
                } else {
                    tracing::debug!(slot = name, attempt, "still cannot load credentials: {e}");
                }
                // Callers are told now; the next load waits for its backed-off retry.
                slot.resolve_waiters(
                    Err(ErrorReply::new(
                        ErrorCode::StoreUnavailable,
                        format!("cannot load the credentials of slot {name}: {e}"),
                    )),
                    now,
                );
                store_error = Some(e);
            }
            Err(e) => {
                slot.creds = Creds::Missing;
                slot.deactivate(SlotReason::CredentialsUnreadable, e.to_string());
                tracing::error!(slot = name, "{e}");
            }
        }
        self.store_error = store_error;
        if let Some(generation) = adopted {
            self.next_generation = self.next_generation.max(generation.saturating_add(1));
        }
        self.persist();
        self.start_next_job(name, false);
    }

    fn on_refreshed(
        &mut self,
        name: &str,
        generation: u64,
        outcome: RefreshOutcome,
        unusable: Option<&str>,
    ) {
        let config = std::sync::Arc::clone(&self.config);
        let claude_code = (self.slots.get(name)).is_some_and(|s| s.record.claude_code.is_some());
        // Drawn up front: the slot borrows the manager below. One unit per use.
        let at = RefreshAt {
            now: self.now,
            units: [self.rng.f64(), self.rng.f64(), self.rng.f64()],
            generation,
            refresh_before_expiry: refresh_before(config.refresh_before_expiry, claude_code),
        };
        let Some(slot) = self.current(name, generation, "a refresh result") else {
            self.retire_dropped_refresh(name, generation, outcome);
            return;
        };
        slot.last_reply_at = Some(at.now);
        let failures_before = slot.failures;
        let provider = slot.record.provider.clone();
        let Applied {
            mut result,
            store_health,
            yielded,
        } = apply_refresh(slot, outcome, &at, &config);
        let stored = store_health == StoreSaid::Healthy;
        if result.is_ok() {
            if let Some(defect) = unusable {
                slot.failures = failures_before + 1;
                let error = unusable_reply(
                    slot,
                    defect,
                    stored,
                    at.refresh_before_expiry,
                    (at.now, at.units[2]),
                );
                result = Err(error);
            } else {
                let held = slot.creds.tokens();
                slot.next_refresh_at = held.map(|_| {
                    let granted = LastReply::Granted;
                    let rbe = at.refresh_before_expiry;
                    pacing::next_request(granted, held, 0, rbe, at.now, at.units[2]).at
                });
            }
        }
        let refreshed = result.is_ok();
        if refreshed {
            // The new token is what a usage 401 asked for.
            slot.refresh_wanted = false;
        }
        slot.resolve_waiters(result, at.now);
        match store_health {
            StoreSaid::Nothing => {}
            StoreSaid::Healthy => self.store_error = None,
            StoreSaid::Failing(error) => self.store_error = Some(error),
        }
        if stored {
            self.revoke_superseded(name);
        }
        if let Some(token) = yielded {
            self.revoke_unheld(
                name,
                &provider,
                token,
                "a refresh a newer stored login overtook",
            );
        }
        self.persist();
        self.usage_after_refresh(name, refreshed);
        self.start_next_job(name, false);
    }

    fn on_written(
        &mut self,
        name: &str,
        generation: u64,
        result: Result<StoredCredentials, StoreError>,
    ) {
        let (now, unit) = (self.now, self.rng.f64());
        let Some(slot) = self.current(name, generation, "a credential write") else {
            return;
        };
        let login_write = match result {
            Ok(item) => {
                slot.record.note_item(reconcile::version_of(&item));
                if let Creds::Present { stored, .. } = &mut slot.creds {
                    *stored = Stored::from_item(&item);
                }
                slot.restoring = None;
                if slot.record.reason == Some(SlotReason::CredentialStoreUnavailable) {
                    slot.transition(SlotState::Active, None, None);
                }
                tracing::info!(slot = name, "tokens stored");
                self.store_error = None;
                LoginWrite::Stored
            }
            Err(StoreError::Unavailable(e)) => {
                if let Creds::Present {
                    stored:
                        Stored::No {
                            attempt, retry_at, ..
                        },
                    ..
                } = &mut slot.creds
                {
                    *attempt += 1;
                    *retry_at = retry_time(now, *attempt, unit);
                }
                // The store worker logs the outage once; each retry only at debug.
                tracing::debug!(slot = name, "credential write failed: {e}");
                self.store_error = Some(e.clone());
                LoginWrite::Unavailable(e)
            }
            // A restore of journaled tokens the store holds, or something newer: the store's
            // item is the one to use (the same write's, or a later one), read afresh.
            Err(StoreError::Conflict { .. }) if slot.restoring.take().is_some() => {
                tracing::info!(
                    slot = name,
                    "the store holds the journaled tokens or newer; reading its item"
                );
                slot.creds = Creds::NotLoaded {
                    attempt: 0,
                    retry_at: now,
                };
                LoginWrite::Pending
            }
            Err(e) => conflict::write_refused(slot, generation, &e, (now, unit)),
        };
        if matches!(login_write, LoginWrite::Stored) {
            self.revoke_superseded(name);
        }
        if !matches!(login_write, LoginWrite::Pending) {
            self.settle_pending_login(name, login_write);
        }
        self.persist();
        self.start_next_job(name, false);
    }
}

/// Sets the slot's next refresh from its tokens' expiry, jittered by `unit` (in [0, 1)).
pub(in crate::daemon) fn schedule_next(
    slot: &mut Slot,
    refresh_before_expiry: std::time::Duration,
    unit: f64,
) {
    let refresh_before_expiry = slot.refresh_before(refresh_before_expiry);
    slot.next_refresh_at = slot
        .creds
        .tokens()
        .map(|t| schedule::next_refresh_at(t, refresh_before_expiry, unit));
}

/// When to retry a store operation after `attempt` failures, jittered by `unit`.
pub(in crate::daemon) fn retry_time(now: DateTime<Utc>, attempt: u32, unit: f64) -> DateTime<Utc> {
    now + delta(schedule::backoff(attempt, None, unit))
}

/// Whether `item` is of a login older than the one the state file records, and not one this
/// slot held (its `newest_written` names another login, or none): the item a logout could
/// not delete, under a name logged in anew since. Its tokens are another lineage, maybe
/// another account's, and were revoked at the logout: never adopted. (An older login the
/// slot did hold is a re-login's fallback, adopted when the re-login's write was lost.)
fn never_held(record: &SlotRecord, item: &StoredCredentials) -> bool {
    item.generation < record.generation
        && record
            .newest_written
            .is_none_or(|newest| newest.generation != item.generation)
}

/// The slot's own login was never stored (a crash before its write), and the item found is
/// not its: the slot has no credentials.
fn refuse_never_held(slot: &mut Slot, item: &StoredCredentials) {
    tracing::error!(
        slot = slot.name,
        stored = item.generation,
        recorded = slot.record.generation,
        "the store holds an older login this slot never held (a logged-out item that could not be deleted?); it is not used"
    );
    slot.creds = Creds::Missing;
    if slot.record.state != SlotState::Inactive {
        slot.deactivate(
            SlotReason::CredentialsMissing,
            "the credential store has no item of this slot's login; log in again".into(),
        );
    }
}
