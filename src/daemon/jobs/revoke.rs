//! The revocation jobs: a logout, the first attempt at revoking a token nobody holds any
//! more, and the retries of revocations still owed (`crate::revocation`). A first attempt
//! that fails for now (network, 5xx, 429) puts the token in the credential store under a
//! reserved account (`.revoke-<id>`) and reports it kept; the manager records it (no
//! token) in the state file and schedules the retries. A permanent refusal ends it.
//!
//! The item is written before the state file records it: a crash in between leaves an
//! item nothing refers to (holding a token that was to die anyway), never a record whose
//! token is lost. Tokens appear in no log line and no error here.

use std::time::Instant;

use chrono::Utc;

use crate::config::Provider;
use crate::protocol::LogoutReply;
use crate::revocation::{new_id, store_key};
use crate::secret::Secret;
use crate::store::{Tokens, WriteCondition};

use crate::daemon::core::Reply;
use crate::daemon::core::orders::Urgency;
use crate::daemon::core::reports::{FirstOutcome, JobResult, RetryOutcome, RevocationReport};
use crate::daemon::jobs::JobContext;
use crate::daemon::jobs::joblog;

/// A token to revoke, and what for.
pub struct Revocation {
    pub slot: String,
    pub provider: Provider,
    pub token: Secret,
    pub why: &'static str,
}

impl JobContext {
    /// Revokes a refresh token nobody holds any more (a login replaced it, it was refused,
    /// a logout cancelled it), keeping it for a retry when the provider cannot be reached.
    pub fn revoke(&self, slot: String, provider: Provider, token: Secret, why: &'static str) {
        // Begun work: a stop waits for it (the token must be revoked or kept, not lost).
        let in_flight = self.drain.track();
        let ctx = self.clone();
        tokio::spawn(async move {
            let _in_flight = in_flight;
            let revocation = Revocation {
                slot,
                provider,
                token,
                why,
            };
            let outcome = ctx.first_attempt(&revocation, Urgency::Revocation).await;
            ctx.report_first(revocation, outcome, None);
        });
    }

    /// Revokes the slot's refresh token (kept for a retry when the provider cannot be
    /// reached), deletes its item, and has the manager answer `reply`.
    pub fn logout(
        &self,
        name: String,
        generation: u64,
        provider: Option<Provider>,
        tokens: Option<Tokens>,
        claude_code: Option<std::path::PathBuf>,
        reply: Reply,
    ) {
        let in_flight = self.drain.track();
        let ctx = self.clone();
        tokio::spawn(async move {
            let _in_flight = in_flight;
            let revocation = match (provider, tokens) {
                (Some(provider), Some(tokens)) => Some(Revocation {
                    slot: name.clone(),
                    provider,
                    token: tokens.refresh_token,
                    why: "logout",
                }),
                _ => None,
            };
            let outcome = match &revocation {
                Some(revocation) => Some(ctx.first_attempt(revocation, Urgency::Asked).await),
                None => None,
            };
            let mut answer = match claude_code {
                Some(dir) => left_in_claude_code(&name, dir),
                None => logout_reply(&name, outcome.as_ref()),
            };
            let deleted = ctx.store.delete(&name, generation).await;
            ctx.settle_deleted(&name, generation, &deleted);
            if let Err(e) = deleted {
                let note = format!("the credential item was not deleted: {e}");
                answer.warning = Some(match answer.warning.take() {
                    Some(earlier) => format!("{earlier}; {note}"),
                    None => note,
                });
            }
            tracing::info!(slot = name, revoked = answer.revoked, "logged out");
            if let (Some(revocation), Some(outcome)) = (revocation, outcome) {
                ctx.report_first(revocation, outcome, Some((reply, answer)));
            } else {
                let report = RevocationReport::LoggedOut { reply, answer };
                ctx.report(JobResult::Revocation(Box::new(report)));
            }
        });
    }

    /// Tries revocation `id` again with the token kept in the store.
    pub fn retry_revocation(&self, id: String, slot: String, provider: Option<Provider>) {
        // A retry is new work: none starts once the daemon is stopping (the token stays
        // kept for the next start).
        let Some(in_flight) = self.drain.enter() else {
            return;
        };
        let ctx = self.clone();
        tokio::spawn(async move {
            let _in_flight = in_flight;
            let outcome = ctx.retry_once(&id, &slot, provider).await;
            let report = RevocationReport::Retried { id, outcome };
            ctx.report(JobResult::Revocation(Box::new(report)));
        });
    }

    /// One try at `revocation`, under a token permit at `urgency`: a logout's goes as a
    /// person's request ([`Urgency::Asked`]: they wait for its answer), any other last
    /// ([`Urgency::Revocation`]: nobody waits, and a token not revoked now is kept for a
    /// retry).
    async fn first_attempt(&self, revocation: &Revocation, urgency: Urgency) -> FirstOutcome {
        let permit = self.token_limit.acquire(urgency).await;
        let started = Instant::now();
        let result = self
            .oauth
            .revoke(&revocation.provider, &revocation.token)
            .await;
        joblog::revocation(&revocation.slot, &result, started.elapsed());
        drop(permit);
        match result {
            Ok(true) => FirstOutcome::Revoked,
            Ok(false) => FirstOutcome::NoEndpoint,
            Err(e) if e.permanent => FirstOutcome::Refused(e.message),
            Err(e) => self.keep(revocation.token.clone(), e.message).await,
        }
    }

    /// Puts a token whose revocation failed for now into the store, for the retries.
    async fn keep(&self, token: Secret, error: String) -> FirstOutcome {
        let id = new_id();
        let item = Tokens {
            access_token: Secret::new(""),
            refresh_token: token,
            expires_at: None,
            obtained_at: Utc::now(),
            scopes: Vec::new(),
        };
        let condition = WriteCondition::NewLogin { generation: 1 };
        match self
            .store
            .compare_and_set(&store_key(&id), condition, item)
            .await
        {
            Ok(_) => FirstOutcome::Kept { id, error },
            Err(e) => FirstOutcome::Lost {
                error,
                store_error: e.to_string(),
            },
        }
    }

    async fn retry_once(&self, id: &str, slot: &str, provider: Option<Provider>) -> RetryOutcome {
        let Some(provider) = provider else {
            return RetryOutcome::Failed("its provider is not in the configuration".to_owned());
        };
        let key = store_key(id);
        let token = match self.store.load(&key).await {
            Ok(Some(item)) => item.tokens.refresh_token,
            Ok(None) => return RetryOutcome::Gone,
            Err(e) => return RetryOutcome::Failed(e.to_string()),
        };
        let permit = self.token_limit.acquire(Urgency::Revocation).await;
        let started = Instant::now();
        let result = self.oauth.revoke(&provider, &token).await;
        drop(permit);
        joblog::revocation(slot, &result, started.elapsed());
        let outcome = match result {
            Ok(true) => RetryOutcome::Revoked,
            Ok(false) => RetryOutcome::Refused(format!(
                "provider {} has no revoke_url any more",
                provider.name
            )),
            Err(e) if e.permanent => RetryOutcome::Refused(e.message),
            Err(e) => return RetryOutcome::Failed(e.message),
        };
        if let Err(e) = self.store.delete(&key, u64::MAX).await {
            // The item holds a token that is dead (or refused for good): harmless.
            tracing::warn!(
                slot,
                "could not delete the item of a finished revocation: {e}"
            );
        }
        outcome
    }

    fn report_first(
        &self,
        revocation: Revocation,
        outcome: FirstOutcome,
        logout: Option<(Reply, LogoutReply)>,
    ) {
        self.report(JobResult::Revocation(Box::new(RevocationReport::First {
            slot: revocation.slot,
            provider: revocation.provider.name.clone(),
            why: revocation.why,
            outcome,
            logout,
        })));
    }
}

/// The logout's answer for a slot whose login is Claude Code's: nothing of sessctl's was
/// held, and Claude Code's store is left as it is.
fn left_in_claude_code(name: &str, dir: std::path::PathBuf) -> LogoutReply {
    LogoutReply {
        name: name.to_owned(),
        revoked: false,
        warning: None,
        cancelled_logins: 0,
        revocation_pending: false,
        left_in_claude_code: Some(dir),
    }
}

/// The logout's answer for how its revocation went (`None`: no credentials were held).
fn logout_reply(name: &str, outcome: Option<&FirstOutcome>) -> LogoutReply {
    let (revoked, pending, warning) = match outcome {
        None => (
            false,
            false,
            Some("no credentials were held; nothing to revoke".to_owned()),
        ),
        Some(FirstOutcome::Revoked) => (true, false, None),
        Some(FirstOutcome::NoEndpoint) => (
            false,
            false,
            Some(
                "the provider has no revoke_url; the token was not revoked at the server"
                    .to_owned(),
            ),
        ),
        Some(FirstOutcome::Refused(error)) => (
            false,
            false,
            Some(format!(
                "the provider refused the revocation ({error}); the token was not revoked"
            )),
        ),
        Some(FirstOutcome::Kept { error, .. }) => (
            false,
            true,
            Some(format!(
                "revocation failed for now ({error}); the token is kept in the credential store and will be revoked later"
            )),
        ),
        Some(FirstOutcome::Lost { error, store_error }) => (
            false,
            false,
            Some(format!(
                "revocation failed ({error}) and the token could not be kept for a retry ({store_error}); it was NOT revoked"
            )),
        ),
    };
    LogoutReply {
        name: name.to_owned(),
        revoked,
        warning,
        cancelled_logins: 0,
        revocation_pending: pending,
        left_in_claude_code: None,
    }
}
