//! The manager's handling of job results. A result for a slot that is gone, or for an older
//! generation of it (a re-login or logout happened meanwhile), is dropped: its tokens
//! belong to a login that no longer exists, and the store's compare-and-set refuses to
//! keep them; the refresh token it carries is revoked (`crate::daemon::core::retire`). A login's results
//! are applied in `crate::daemon::core::login`.

use chrono::{DateTime, Utc};

use crate::protocol::{ErrorCode, ErrorReply};
use crate::slot_reason::SlotReason;
use crate::state::{SlotRecord, SlotState};
use crate::store::{StoreError, StoredCredentials, WriteCondition};

use crate::daemon::core::Manager;
use crate::daemon::core::conflict;
use crate::daemon::core::login::LoginWrite;
use crate::daemon::core::pacing::{self, LastReply};
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
            JobResult::Revocation(report) => self.on_revocation(*report),
            JobResult::Adopted(adoption) => self.on_adopted(*adoption),
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
        match result {
            Ok(Some(item)) if slot.record.is_stale(reconcile::version_of(&item)) => {
                slot.refuse_stale(reconcile::version_of(&item));
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
                    slot.record.generation = item.generation;
                }
                slot.creds = Creds::Present {
                    stored: Stored::from_item(&item),
                    tokens: item.tokens,
                };
                if slot.record.state == SlotState::Degraded {
                    slot.record.state = SlotState::Active;
                    slot.record.reason = None;
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
                    slot.record.state = SlotState::Degraded;
                    slot.record.reason = Some(SlotReason::CredentialStoreUnavailable);
                    slot.record.last_refresh_error = Some(e.clone());
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
                if slot.record.reason == Some(SlotReason::CredentialStoreUnavailable) {
                    slot.record.state = SlotState::Active;
                    slot.record.reason = None;
                    slot.record.last_refresh_error = None;
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

/// The time and random draws a refresh result is judged with.
struct RefreshAt {
    now: DateTime<Utc>,
    units: [f64; 3],
    generation: u64,
    refresh_before_expiry: std::time::Duration,
}

/// What a refresh outcome tells about the credential store.
#[derive(PartialEq, Eq)]
enum StoreSaid {
    Nothing,
    /// It took the rotated tokens.
    Healthy,
    /// It could not take them (the error).
    Failing(String),
}

/// What a refresh outcome did to its slot.
struct Applied {
    /// What the callers waiting on the refresh hear.
    result: Result<(), ErrorReply>,
    /// What the outcome tells about the store's health.
    store_health: StoreSaid,
    /// The rotated refresh token of a refresh a newer stored login overtook.
    yielded: Option<crate::secret::Secret>,
}

/// Applies a refresh job's outcome to its slot (still current at its generation).
fn apply_refresh(
    slot: &mut Slot,
    outcome: RefreshOutcome,
    at: &RefreshAt,
    config: &crate::config::Config,
) -> Applied {
    let mut store_health = StoreSaid::Nothing;
    let mut yielded = None;
    let result = match outcome {
        RefreshOutcome::Stored(item) => {
            slot.record.note_item(reconcile::version_of(&item));
            slot.creds = Creds::Present {
                stored: Stored::from_item(&item),
                tokens: item.tokens,
            };
            mark_refreshed(&mut slot.record, at.now);
            slot.failures = 0;
            schedule_next(slot, at.refresh_before_expiry, at.units[0]);
            store_health = StoreSaid::Healthy;
            Ok(())
        }
        RefreshOutcome::Unsaved { tokens, error } => {
            let condition = slot.creds.write_condition();
            slot.creds = Creds::Present {
                tokens,
                stored: Stored::No {
                    condition: condition.unwrap_or(WriteCondition::NewLogin {
                        generation: at.generation,
                    }),
                    attempt: 1,
                    retry_at: retry_time(at.now, 1, at.units[1]),
                },
            };
            mark_refreshed(&mut slot.record, at.now);
            slot.failures = 0;
            slot.record.state = SlotState::Degraded;
            slot.record.reason = Some(SlotReason::CredentialStoreUnavailable);
            slot.record.last_refresh_error = Some(error.to_string());
            schedule_next(slot, at.refresh_before_expiry, at.units[0]);
            tracing::error!(
                slot = slot.name,
                "refreshed, but the new tokens could not be stored; holding them in memory and retrying: {error}"
            );
            store_health = StoreSaid::Failing(error.to_string());
            Ok(())
        }
        RefreshOutcome::Conflict { error, tokens } => {
            match conflict::keep_rotated(slot, at.generation, tokens, &error, at.now) {
                Ok(()) => {
                    mark_refreshed(&mut slot.record, at.now);
                    slot.failures = 0;
                    schedule_next(slot, at.refresh_before_expiry, at.units[0]);
                    Ok(())
                }
                Err(rotated) => {
                    yielded = Some(rotated);
                    Err(ErrorReply::new(ErrorCode::Conflict, error.to_string()))
                }
            }
        }
        RefreshOutcome::Transient { error, retry_after } => {
            slot.failures += 1;
            let next = pacing::next_request(
                LastReply::Failed { retry_after },
                slot.creds.tokens(),
                slot.failures,
                at.refresh_before_expiry,
                at.now,
                at.units[1],
            );
            let error = next.explain(error);
            slot.record.state = SlotState::Degraded;
            slot.record.reason = Some(SlotReason::RefreshFailed);
            slot.record.last_refresh_error = Some(error.clone());
            slot.next_refresh_at = Some(next.at);
            tracing::info!(
                slot = slot.name,
                failures = slot.failures,
                retry_in_ms = (next.at - at.now).num_milliseconds(),
                "refresh will be retried"
            );
            Err(ErrorReply::new(ErrorCode::RefreshFailed, error))
        }
        RefreshOutcome::Permanent { reason, error } => {
            // The state change is logged (at error) when the state is persisted.
            slot.deactivate(reason.into(), error.clone());
            Err(slot
                .refusal(config)
                .unwrap_or_else(|| ErrorReply::new(ErrorCode::SlotInactive, error)))
        }
    };
    Applied {
        result,
        store_health,
        yielded,
    }
}

/// A reply that rotated the refresh token (now held, `stored` or not) but whose access
/// token is unusable: the slot is refreshed again soon, backing off while it repeats, and
/// `status` says why and when. Returns the error for the callers waiting on the refresh.
fn unusable_reply(
    slot: &mut Slot,
    defect: &str,
    stored: bool,
    refresh_before_expiry: std::time::Duration,
    (now, unit): (DateTime<Utc>, f64),
) -> ErrorReply {
    let next = pacing::next_request(
        LastReply::Unusable,
        slot.creds.tokens(),
        slot.failures,
        refresh_before_expiry,
        now,
        unit,
    );
    slot.next_refresh_at = Some(next.at);
    let error = next.explain_unusable(defect);
    if stored {
        slot.record.state = SlotState::Degraded;
        slot.record.reason = Some(SlotReason::TokenReplyUnusable);
        slot.record.last_refresh_error = Some(error.clone());
    }
    tracing::warn!(slot = slot.name, "{error}");
    ErrorReply::new(ErrorCode::RefreshFailed, error)
}

/// Records a successful refresh.
fn mark_refreshed(record: &mut SlotRecord, now: DateTime<Utc>) {
    record.state = SlotState::Active;
    record.reason = None;
    record.last_refresh_at = Some(now);
    record.last_refresh_error = None;
    record.refreshes += 1;
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
