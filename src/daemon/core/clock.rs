//! The manager's watch on the wall clock: reads both clocks ([`Clocks`], read by the runner
//! and handed to the manager with every event), and when the wall
//! clock was stepped back, moves every deadline and token time the manager holds back by
//! the step, so nothing is judged late by the step: refreshes stay on time and an expired
//! token is never handed out as valid. The arithmetic is in [`crate::daemon::core::schedule`]; this module
//! reads the clocks and applies it. It never writes anything: the store keeps the times it
//! was given, and the tokens the next refresh writes carry times of the current wall clock.
//!
//! Limits: tokens a job obtained before a step and reported after it are not moved (the
//! window is the job's store write, at most [`crate::store::STORE_WAIT`]); a daemon started
//! after a step reads the stored times as they were written; quota and alert times are
//! not moved.

use chrono::{DateTime, TimeDelta, Utc};

use crate::daemon::core::Manager;
use crate::daemon::core::schedule::{self, Clocks};
use crate::daemon::core::slot::{Creds, Slot, Stored};

/// The last reading of both clocks.
pub(in crate::daemon) struct ClockWatch {
    last: Clocks,
}

impl ClockWatch {
    pub(in crate::daemon) fn start(now: Clocks) -> Self {
        ClockWatch { last: now }
    }

    /// Takes the reading `now`; returns how far the wall clock was stepped back since the
    /// last one, if it was.
    fn observe(&mut self, now: Clocks) -> Option<TimeDelta> {
        let step = schedule::wall_fell_behind(self.last, now);
        self.last = now;
        step
    }
}

impl Manager {
    /// Takes the clocks' reading; after a step back of the wall clock, moves every deadline
    /// and token time held back by the step. Called before anything judges a deadline.
    pub(in crate::daemon) fn watch_clock(&mut self, now: Clocks) {
        let Some(step) = self.clock.observe(now) else {
            return;
        };
        tracing::warn!(
            step_s = step.num_seconds(),
            "the wall clock went back by {} s; deadlines and token expiry times move back with it",
            step.num_seconds()
        );
        for slot in self.slots.values_mut() {
            move_back(slot, step);
        }
        back(&mut self.cache_published_at, step);
    }
}

/// Moves a slot's deadlines and in-memory token times back by `step`: the same instants
/// (by elapsed time), told in the stepped wall clock.
pub(in crate::daemon) fn move_back(slot: &mut Slot, step: TimeDelta) {
    if let Some(at) = &mut slot.next_refresh_at {
        back(at, step);
    }
    match &mut slot.creds {
        Creds::NotLoaded { retry_at, .. } => back(retry_at, step),
        Creds::Missing => {}
        Creds::Present { tokens, stored } => {
            back(&mut tokens.obtained_at, step);
            if let Some(at) = &mut tokens.expires_at {
                back(at, step);
            }
            if let Stored::No { retry_at, .. } = stored {
                back(retry_at, step);
            }
        }
    }
}

/// Moves `at` back by `step`; a time at the edge of chrono's range (the "never" marker of
/// an unpublished cache) stays where it is rather than overflow.
fn back(at: &mut DateTime<Utc>, step: TimeDelta) {
    if let Some(moved) = at.checked_sub_signed(step) {
        *at = moved;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::state::{SlotRecord, SlotState};
    use crate::store::Tokens;
    use std::time::Duration;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);

    /// A slot holding a one-hour token received at 10:00 (wall), refresh due 10:55.
    fn slot_with_token_from_ten() -> Slot {
        let record = SlotRecord {
            provider: "p".into(),
            account: None,
            account_key: None,
            state: SlotState::Active,
            reason: None,
            generation: 1,
            created_at: at("2026-01-01T10:00:00Z"),
            last_refresh_at: None,
            last_refresh_error: None,
            refreshes: 0,
            newest_written: None,
            claude_code: None,
        };
        let mut slot = Slot::from_record("work".into(), record, at("2026-01-01T10:00:00Z"));
        slot.creds = Creds::Present {
            tokens: Tokens {
                access_token: Secret::new("a"),
                refresh_token: Secret::new("r"),
                expires_at: Some(at("2026-01-01T11:00:00Z")),
                obtained_at: at("2026-01-01T10:00:00Z"),
                scopes: vec![],
            },
            stored: Stored::Yes {
                generation: 1,
                version: 1,
            },
        };
        slot.next_refresh_at = Some(at("2026-01-01T10:55:00Z"));
        slot
    }

    #[test]
    fn after_the_wall_clock_goes_back_two_hours_the_token_is_judged_by_elapsed_time() {
        let mut watch = ClockWatch {
            last: Clocks {
                wall: at("2026-01-01T10:30:00Z"),
                boot: Duration::from_secs(5000),
            },
        };
        let mut slot = slot_with_token_from_ten();
        // 26 minutes later by the boot clock, the wall clock reads 08:56.
        let now = Clocks {
            wall: at("2026-01-01T08:56:00Z"),
            boot: Duration::from_secs(5000 + 26 * 60),
        };
        let step = watch.observe(now).expect("a step back");
        move_back(&mut slot, step);
        // The refresh is due at 10:55 by elapsed time, which the wall clock now calls 08:55.
        assert_eq!(slot.next_refresh_at, Some(at("2026-01-01T08:55:00Z")));
        let tokens = slot.creds.tokens().unwrap();
        assert!(schedule::is_due(tokens, FIVE_MIN, now.wall));
        assert_eq!(tokens.expires_at, Some(at("2026-01-01T09:00:00Z")));
        // Without the move, the wall clock alone would call it fresh for two more hours.
        let unmoved = slot_with_token_from_ten();
        assert!(!schedule::is_due(
            unmoved.creds.tokens().unwrap(),
            FIVE_MIN,
            now.wall
        ));
        // The next reading, with no further step, moves nothing again.
        let later = Clocks {
            wall: at("2026-01-01T08:57:00Z"),
            boot: now.boot + Duration::from_secs(60),
        };
        assert_eq!(watch.observe(later), None);
    }

    #[test]
    fn unsaved_tokens_and_load_retries_move_too() {
        let mut slot = slot_with_token_from_ten();
        if let Creds::Present { stored, .. } = &mut slot.creds {
            *stored = Stored::No {
                condition: crate::store::WriteCondition::NewLogin { generation: 1 },
                attempt: 1,
                retry_at: at("2026-01-01T10:31:00Z"),
            };
        }
        move_back(&mut slot, TimeDelta::hours(2));
        assert!(matches!(
            slot.creds,
            Creds::Present { stored: Stored::No { retry_at, .. }, .. } if retry_at == at("2026-01-01T08:31:00Z")
        ));
        slot.creds = Creds::NotLoaded {
            attempt: 1,
            retry_at: at("2026-01-01T10:31:00Z"),
        };
        move_back(&mut slot, TimeDelta::hours(2));
        assert!(
            matches!(slot.creds, Creds::NotLoaded { retry_at, .. } if retry_at == at("2026-01-01T08:31:00Z"))
        );
    }

    #[test]
    fn times_at_the_edge_of_the_range_do_not_overflow() {
        let mut never = DateTime::<Utc>::MIN_UTC;
        back(&mut never, TimeDelta::hours(2));
        assert_eq!(never, DateTime::<Utc>::MIN_UTC);
    }
}
