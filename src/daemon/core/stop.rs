//! The graceful stop (SIGTERM, SIGINT or `shutdown`). The manager closes the drain gate
//! ([`crate::daemon::core::drain`]): nothing new starts (no scheduled refresh, no usage fetch, no request
//! not yet sent), new requests get "shutting down". It then waits, bounded by
//! [`STOP_LIMIT`], for every token request already sent to come back, applies each result
//! as usual (so rotated tokens reach the store), waits for store writes under way and for
//! the state file behind replies already decided (a login's "created"), retries
//! tokens the store could not take for up to [`STOP_STORE_RETRY`], and only then lets the
//! daemon exit. Tokens it still holds only in memory are named at error level, once per
//! slot: the next daemon cannot have them.
//!
//! This module holds the manager's side of it (what is still pending, what is refused);
//! the waiting loop is the runner's (`crate::daemon::runner::stop`). Never sends a request and
//! never decides a result's meaning: `crate::daemon::core::results` does.

use std::time::Duration;

use crate::protocol::{ErrorCode, ErrorReply, Request, Response};

use crate::daemon::core::next_job::start_store_write;
use crate::daemon::core::reports::stopping;
use crate::daemon::core::schedule::Clocks;
use crate::daemon::core::slot::{Creds, Job, Slot, Stored};
use crate::daemon::core::{Command, Manager};

/// Longest a stop waits: a token request sent just before the stop may take the whole
/// HTTP timeout, then its store write needs a moment. The systemd unit's `TimeoutStopSec`
/// and the launchd agent's `ExitTimeOut` (60 s) leave room for it.
pub const STOP_LIMIT: Duration = crate::oauth::REQUEST_TIMEOUT.saturating_add(STORE_ALLOWANCE);
/// The store write after the last reply, a keychain unlock prompt included.
const STORE_ALLOWANCE: Duration = Duration::from_secs(15);
/// How long tokens the store refused are retried at stop (within [`STOP_LIMIT`]).
pub const STOP_STORE_RETRY: Duration = Duration::from_secs(10);
/// Pause between two store retries at stop, and the longest the wait sleeps.
pub const STOP_TICK: Duration = Duration::from_millis(500);

/// What a stop still waits for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Token requests out (or their results not yet reported).
    requests: usize,
    /// Slots with a store write under way.
    writing: Vec<String>,
    /// Slots whose newest tokens the store has not taken (counted while retrying).
    unsaved: Vec<String>,
    /// Replies (a login's "created") held until the state file has what they report.
    replies: usize,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.requests == 0
            && self.writing.is_empty()
            && self.unsaved.is_empty()
            && self.replies == 0
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.requests > 0 {
            parts.push(format!("{} token request(s) already sent", self.requests));
        }
        if !self.writing.is_empty() {
            parts.push(format!("store writes of {}", self.writing.join(", ")));
        }
        if !self.unsaved.is_empty() {
            parts.push(format!(
                "the credential store to take the tokens of {}",
                self.unsaved.join(", ")
            ));
        }
        if self.replies > 0 {
            parts.push(format!("the state file, for {} reply(ies)", self.replies));
        }
        parts.join("; ")
    }
}

impl Manager {
    /// A stop begins: nothing new starts from now on (the drain gate closes).
    pub fn begin_stop(&mut self) {
        self.jobs.drain.close();
    }

    /// What the stop still waits for; `retrying` counts tokens the store has not taken.
    pub fn stop_pending(&self, retrying: bool) -> Pending {
        let writing = self
            .slots
            .values()
            .filter(|slot| slot.job == Some(Job::Writing))
            .map(|slot| slot.name.clone())
            .collect();
        let unsaved = if retrying {
            self.slots
                .values()
                .filter(|slot| slot.job.is_none() && holds_unsaved(slot))
                .map(|slot| slot.name.clone())
                .collect()
        } else {
            Vec::new()
        };
        Pending {
            requests: self.jobs.drain.in_flight(),
            writing,
            unsaved,
            replies: self.awaiting_durable.len() + self.revocations_waiting(),
        }
    }

    /// Starts a store write for every idle slot whose newest tokens only we hold.
    pub fn retry_unsaved_writes(&mut self) {
        for slot in self.slots.values_mut() {
            if slot.job.is_none() && holds_unsaved(slot) {
                start_store_write(&mut self.jobs, slot);
            }
        }
    }

    /// Answers a request that arrives while stopping: `ping` and `status` as usual,
    /// anything else with "shutting down".
    pub fn refuse_while_stopping(&mut self, command: Command, clocks: Clocks) {
        match command.request {
            Request::Ping | Request::Status => {
                let _ = self.handle(command, clocks);
            }
            Request::Shutdown => {
                let _ = command.reply.send(Ok(Response::ShuttingDown));
            }
            _ => {
                let _ = command.reply.send(Err(stopping()));
            }
        }
    }

    /// Says loudly, once per slot, which tokens die with this process (those in the
    /// journal do not: the next start stores them).
    pub fn report_unsaved_at_exit(&self) {
        for slot in self.slots.values().filter(|slot| holds_unsaved(slot)) {
            if let Some(journal) = &self.jobs.journal
                && journal.holds(&slot.name)
            {
                tracing::warn!(
                    slot = slot.name,
                    "exiting before the keychain took this slot's newest tokens: they are in the write-ahead journal, and the next start stores them"
                );
                continue;
            }
            let why = slot
                .record
                .last_refresh_error
                .as_deref()
                .unwrap_or("the credential store did not take them");
            tracing::error!(
                slot = slot.name,
                "exiting while this slot's newest tokens exist only in memory ({why}): they are lost, and the refresh token the store still holds was already used, so the provider will refuse it (and may revoke the grant); after the restart log in again: sessctl login {} --provider {}",
                slot.name,
                slot.record.provider
            );
        }
    }
}

impl Slot {
    /// Once stopping, a slot starts nothing: its waiting callers and logouts hear why.
    pub(in crate::daemon) fn refuse_work_while_stopping(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        self.resolve_waiters(Err(stopping()), now);
        for logout in self.logouts.drain(..) {
            let _ = logout.reply.send(Err(ErrorReply::new(
                ErrorCode::ShuttingDown,
                "the daemon is shutting down before this logout started; run it again once it has restarted",
            )));
        }
    }
}

/// True when a slot's newest tokens are held only in memory.
fn holds_unsaved(slot: &Slot) -> bool {
    matches!(
        slot.creds,
        Creds::Present {
            stored: Stored::No { .. },
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_work_is_described_by_kind() {
        let pending = Pending {
            requests: 2,
            writing: vec!["a".into()],
            unsaved: vec!["b".into(), "c".into()],
            replies: 1,
        };
        assert_eq!(
            pending.describe(),
            "2 token request(s) already sent; store writes of a; the credential store to take the tokens of b, c; the state file, for 1 reply(ies)"
        );
        assert!(Pending::default().is_empty());
    }

    #[test]
    fn the_stop_limit_covers_a_whole_token_request() {
        assert!(STOP_LIMIT > crate::oauth::REQUEST_TIMEOUT);
        assert!(
            STOP_LIMIT < Duration::from_secs(60),
            "TimeoutStopSec is 60 s"
        );
    }
}
