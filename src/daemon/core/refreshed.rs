//! What a refresh job's outcome does to its slot (still current at its generation): the
//! new tokens stored or held, a conflict resolved, a transient failure paced, a permanent
//! refusal deactivating the slot, an unusable reply retried. `super::results` calls it and
//! does what follows for the manager (waiters, revocations, usage).

use chrono::{DateTime, Utc};

use crate::protocol::{ErrorCode, ErrorReply};
use crate::secret::Secret;
use crate::slot_reason::SlotReason;
use crate::state::SlotState;
use crate::store::WriteCondition;

use super::conflict;
use super::pacing::{self, LastReply};
use super::reports::RefreshOutcome;
use super::results::{retry_time, schedule_next};
use super::slot::{Creds, Slot, Stored};
use crate::daemon::start::reconcile;

/// The time and random draws a refresh result is judged with.
pub(super) struct RefreshAt {
    pub(super) now: DateTime<Utc>,
    pub(super) units: [f64; 3],
    pub(super) generation: u64,
    pub(super) refresh_before_expiry: std::time::Duration,
}

/// What a refresh outcome tells about the credential store.
#[derive(PartialEq, Eq)]
pub(super) enum StoreSaid {
    Nothing,
    /// It took the rotated tokens.
    Healthy,
    /// It could not take them (the error).
    Failing(String),
}

/// What a refresh outcome did to its slot.
pub(super) struct Applied {
    /// What the callers waiting on the refresh hear.
    pub(super) result: Result<(), ErrorReply>,
    /// What the outcome tells about the store's health.
    pub(super) store_health: StoreSaid,
    /// The rotated refresh token of a refresh a newer stored login overtook.
    pub(super) yielded: Option<Secret>,
}

/// Applies a refresh job's outcome to its slot (still current at its generation).
pub(super) fn apply_refresh(
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
            mark_refreshed(slot, at.now);
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
            mark_refreshed(slot, at.now);
            slot.failures = 0;
            slot.transition(
                SlotState::Degraded,
                Some(SlotReason::CredentialStoreUnavailable),
                Some(error.to_string()),
            );
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
                    mark_refreshed(slot, at.now);
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
            slot.transition(
                SlotState::Degraded,
                Some(SlotReason::RefreshFailed),
                Some(error.clone()),
            );
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
pub(super) fn unusable_reply(
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
        slot.transition(
            SlotState::Degraded,
            Some(SlotReason::TokenReplyUnusable),
            Some(error.clone()),
        );
    }
    tracing::warn!(slot = slot.name, "{error}");
    ErrorReply::new(ErrorCode::RefreshFailed, error)
}

/// Records a successful refresh.
fn mark_refreshed(slot: &mut Slot, now: DateTime<Utc>) {
    slot.transition(SlotState::Active, None, None);
    let record = &mut slot.record;
    record.last_refresh_at = Some(now);
    record.refreshes += 1;
}
