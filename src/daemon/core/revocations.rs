//! The manager's side of revocations still owed (`crate::revocation`): the queue of their
//! non-secret records (saved in the state file with the slots), when each is next tried,
//! and what each attempt's report does to it. The attempts themselves are jobs
//! (`crate::daemon::jobs::revoke`), so a provider that hangs never holds up slot work.
//!
//! At start every record is due at once: a restart is a good moment to try again.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::protocol::{LogoutReply, Response};
use crate::revocation::{self, PendingRevocation};

use crate::daemon::core::reports::{FirstOutcome, RetryOutcome, RevocationReport};
use crate::daemon::core::schedule::delta;
use crate::daemon::core::{Manager, Reply};

/// Revocations still owed, and which of them have an attempt running.
#[derive(Default)]
pub(in crate::daemon) struct RevocationQueue {
    pub entries: Vec<PendingRevocation>,
    running: BTreeSet<String>,
}

impl RevocationQueue {
    /// The queue a previous daemon left: every record due at `now`.
    pub fn resume(mut entries: Vec<PendingRevocation>, now: DateTime<Utc>) -> Self {
        for entry in &mut entries {
            entry.next_attempt_at = entry.next_attempt_at.min(now);
        }
        RevocationQueue {
            entries,
            running: BTreeSet::new(),
        }
    }

    /// When the next idle record is due.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.idle().map(|e| e.next_attempt_at).min()
    }

    fn idle(&self) -> impl Iterator<Item = &PendingRevocation> {
        self.entries
            .iter()
            .filter(|e| !self.running.contains(&e.id))
    }
}

impl Manager {
    /// Starts an attempt for every revocation due by `now`.
    pub(in crate::daemon) fn start_due_revocations(&mut self, now: DateTime<Utc>) {
        let due: Vec<(String, String, String)> = (self.revocations.idle())
            .filter(|e| e.next_attempt_at <= now)
            .map(|e| (e.id.clone(), e.slot.clone(), e.provider.clone()))
            .collect();
        for (id, slot, provider) in due {
            self.revocations.running.insert(id.clone());
            let provider = self.config.providers.get(&provider).cloned();
            self.jobs.retry_revocation(id, slot, provider);
        }
    }

    /// A revocation job reported.
    pub(in crate::daemon) fn on_revocation(&mut self, report: RevocationReport) {
        match report {
            RevocationReport::First {
                slot,
                provider,
                why,
                outcome,
                logout,
            } => {
                // A kept token is recorded in the state (queued for its retries).
                self.first_outcome(&slot, &provider, why, outcome);
                if let Some((reply, answer)) = logout {
                    self.answer_logout(reply, answer);
                }
            }
            RevocationReport::Retried { id, outcome } => self.retried(&id, outcome),
            RevocationReport::LoggedOut { reply, answer } => self.answer_logout(reply, answer),
        }
    }

    /// Answers a logout once the state file no longer lists the slot (and lists a kept
    /// revocation): a crash after the answer must not bring the slot back. The snapshot
    /// without the slot may be saved already; a new one is asked for, so the answer never
    /// waits on a save that already happened.
    fn answer_logout(&mut self, reply: Reply, answer: LogoutReply) {
        self.persist();
        self.reply_when_durable(reply, Ok(Response::Logout(answer)));
    }

    /// Logs a first attempt's outcome; queues a kept token. True when it was queued.
    fn first_outcome(
        &mut self,
        slot: &str,
        provider: &str,
        why: &'static str,
        outcome: FirstOutcome,
    ) -> bool {
        match outcome {
            FirstOutcome::Revoked => tracing::info!(slot, "revoked the refresh token of {why}"),
            FirstOutcome::NoEndpoint => tracing::warn!(
                slot,
                "provider {provider} has no revoke_url; the refresh token of {why} stays valid at the provider"
            ),
            FirstOutcome::Refused(error) => tracing::warn!(
                slot,
                "the provider refused to revoke the refresh token of {why} ({error}); not retrying"
            ),
            FirstOutcome::Lost { error, store_error } => tracing::error!(
                slot,
                "could not revoke the refresh token of {why} ({error}) nor keep it for a retry ({store_error}); it stays valid at the provider"
            ),
            FirstOutcome::Kept { id, error } => {
                let now = self.now;
                let wait = revocation::backoff(self.config.revocation_retry, 1, self.rng.f64());
                tracing::warn!(
                    slot,
                    revocation = id,
                    "could not revoke the refresh token of {why} ({error}); kept, retrying in {}s",
                    wait.as_secs()
                );
                self.revocations.entries.push(PendingRevocation {
                    id,
                    slot: slot.to_owned(),
                    provider: provider.to_owned(),
                    why: why.to_owned(),
                    since: now,
                    attempts: 1,
                    last_error: Some(error),
                    next_attempt_at: now + delta(wait),
                });
                self.persist();
                return true;
            }
        }
        false
    }

    /// A retry ended: done, refused for good, gone, or failed again (backs off).
    fn retried(&mut self, id: &str, outcome: RetryOutcome) {
        self.revocations.running.remove(id);
        let Some(index) = self.revocations.entries.iter().position(|e| e.id == id) else {
            return;
        };
        let (now, unit) = (self.now, self.rng.f64());
        let entry = &mut self.revocations.entries[index];
        let (slot, attempts) = (entry.slot.clone(), entry.attempts + 1);
        match outcome {
            RetryOutcome::Failed(error) => {
                let wait = revocation::backoff(self.config.revocation_retry, attempts, unit);
                tracing::warn!(
                    slot,
                    revocation = id,
                    attempts,
                    "revocation failed again ({error}); retrying in {}s",
                    wait.as_secs()
                );
                entry.attempts = attempts;
                entry.last_error = Some(error);
                entry.next_attempt_at = now + delta(wait);
            }
            RetryOutcome::Revoked => {
                tracing::info!(
                    slot,
                    revocation = id,
                    attempts,
                    "revoked a kept refresh token"
                );
                self.revocations.entries.remove(index);
            }
            RetryOutcome::Refused(error) => {
                tracing::warn!(
                    slot,
                    revocation = id,
                    attempts,
                    "the provider refused a kept revocation for good ({error}); giving up"
                );
                self.revocations.entries.remove(index);
            }
            RetryOutcome::Gone => {
                tracing::warn!(
                    slot,
                    revocation = id,
                    "the credential store no longer holds the token of a kept revocation; giving up"
                );
                self.revocations.entries.remove(index);
            }
        }
        self.persist();
    }
}
