//! The I/O the manager delegates: token requests, credential store reads and writes
//! (revocations and logouts: `crate::daemon::jobs::revoke`). Each job runs as its own task and reports a [`JobResult`] tagged with the
//! slot's generation; the manager drops results of an older generation. A refresh job
//! writes the rotated tokens to the store itself, before reporting: the new refresh token
//! is persisted before anything else is done with it. Each provider request is timed
//! here, where it runs, and logged once ([`crate::daemon::jobs::joblog`]). Token requests hold a guard of
//! the drain gate ([`crate::daemon::core::drain`]) from before they are sent until their result is
//! reported, so a graceful stop waits for them; once stopping, none is sent. Refreshes,
//! refresh-token logins and usage fetches first wait for a permit of their kind's limiter
//! ([`crate::daemon::jobs::limiter`]), and take the drain guard only once they have it: a request still
//! queued when a stop begins is never sent.

pub mod claude_code;
pub mod claude_code_login;
pub mod claude_code_move;
pub mod claude_code_reload;
pub mod dispatch;
pub mod joblog;
pub mod journal;
pub mod limiter;
pub mod login;
mod move_steps;
pub mod revoke;
pub mod state_saver;
pub mod writer;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use crate::account::Identity;
use crate::config::Provider;
use crate::journal::Journal;
use crate::oauth::{self, OAuthClient, TokenGrant, TokenOutcome};
use crate::protocol::{ErrorCode, ErrorReply, Response};
use crate::quota::{self, UsageOutcome};
use crate::secret::Secret;
use crate::store::{CredentialStore, StoreError, StoredCredentials, Tokens, WriteCondition};

use crate::daemon::core::drain::DrainGate;
use crate::daemon::core::orders::Urgency;
use crate::daemon::core::reports::{
    JobResult, LoginResult, LoginSuccess, RefreshOutcome, stopping,
};
use crate::daemon::core::schedule::delta;
use crate::daemon::jobs::limiter::Limiter;

/// Everything a job needs, cheap to clone.
#[derive(Clone)]
pub struct JobContext {
    pub oauth: OAuthClient,
    pub store: CredentialStore,
    pub results: mpsc::UnboundedSender<JobResult>,
    /// Counts token requests out; closed when the daemon stops.
    pub drain: DrainGate,
    /// Where rotated tokens are made durable before the store write (`crate::journal`).
    pub journal: Option<Arc<Journal>>,
    /// Token requests out at once (`max_token_requests`): refreshes and refresh-token
    /// logins, each holding its permit until its result is reported.
    pub token_limit: Limiter,
    /// Usage fetches out at once (`max_usage_requests`).
    pub usage_limit: Limiter,
}

impl JobContext {
    pub(in crate::daemon) fn report(&self, result: JobResult) {
        // The manager is gone only during shutdown; nothing is left to tell then.
        let _ = self.results.send(result);
    }

    /// Reads a slot's item from the store.
    pub fn load(&self, name: String, generation: u64) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let result = ctx.store.load(&name).await;
            ctx.report(JobResult::Loaded {
                name,
                generation,
                result,
            });
        });
    }

    /// Redeems `current.refresh_token` once, stores the result with `condition`, reports.
    /// Waits its turn among token requests first (`urgency`).
    pub fn refresh(
        &self,
        (name, generation): (String, u64),
        provider: Provider,
        current: Tokens,
        condition: WriteCondition,
        urgency: Urgency,
    ) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let _permit = ctx.token_limit.acquire(urgency).await;
            // Stopping: not sent, and not reported either (the slot's waiters hear
            // "shutting down" when the daemon exits; nothing about the slot changed).
            let Some(_in_flight) = ctx.drain.enter() else {
                tracing::info!(slot = name, "refresh not sent: the daemon is stopping");
                return;
            };
            let started = Instant::now();
            let reply = ctx.oauth.refresh(&provider, &current.refresh_token).await;
            let request_took = started.elapsed();
            let mut store_took = None;
            let mut unusable = None;
            let outcome = match reply {
                TokenOutcome::Refreshed(grant) => {
                    if let Some(note) = &grant.note {
                        tracing::warn!(slot = name, "{note}");
                    }
                    unusable.clone_from(&grant.defect);
                    let arrived = Instant::now();
                    let tokens = refreshed_tokens(grant, &current);
                    ctx.journal_append(&name, condition, &tokens, arrived).await;
                    let writing = Instant::now();
                    let written = ctx
                        .store
                        .compare_and_set(&name, condition, tokens.clone())
                        .await;
                    store_took = Some(writing.elapsed());
                    ctx.settle_written(&name, &written);
                    match written {
                        Ok(item) => RefreshOutcome::Stored(item),
                        Err(error @ StoreError::Conflict { .. }) => {
                            RefreshOutcome::Conflict { error, tokens }
                        }
                        Err(error) => RefreshOutcome::Unsaved { tokens, error },
                    }
                }
                TokenOutcome::Transient {
                    error, retry_after, ..
                } => RefreshOutcome::Transient { error, retry_after },
                TokenOutcome::Permanent { reason, error } => {
                    RefreshOutcome::Permanent { reason, error }
                }
            };
            joblog::refresh(&name, &outcome, request_took, store_took);
            ctx.report(JobResult::Refreshed {
                name,
                generation,
                outcome,
                unusable,
            });
        });
    }

    /// Fetches a slot's usage with its access token, once a usage permit is free.
    pub fn usage(&self, name: String, generation: u64, provider: Provider, access_token: Secret) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let _permit = ctx.usage_limit.acquire(Urgency::Scheduled(None)).await;
            if ctx.drain.is_closed() {
                return;
            }
            let started = Instant::now();
            let reply = ctx.oauth.usage(&provider, &access_token).await;
            let took = started.elapsed();
            let status = reply
                .as_ref()
                .ok()
                .and_then(Option::as_ref)
                .map(|r| r.status);
            let outcome = match reply {
                Ok(Some(reply)) => {
                    quota::classify_usage(&reply, &provider.usage_windows, Utc::now())
                }
                Ok(None) => UsageOutcome::Failed {
                    error: format!("provider {} has no usage_url", provider.name),
                    retry_after: None,
                },
                Err(error) => UsageOutcome::Failed {
                    error: format!("usage endpoint: {error}"),
                    retry_after: None,
                },
            };
            joblog::usage(&name, &outcome, status, took);
            ctx.report(JobResult::Usage {
                name,
                generation,
                outcome,
            });
        });
    }

    /// Puts journaled tokens (the item they make) in the store unless it holds that item or
    /// newer, and reports it as a write.
    pub fn restore(&self, name: String, generation: u64, item: StoredCredentials) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let result = ctx.store.restore(&name, item).await;
            ctx.settle_written(&name, &result);
            ctx.report(JobResult::Written {
                name,
                generation,
                result,
            });
        });
    }

    /// Retries writing tokens the store could not take earlier.
    pub fn write(&self, name: String, generation: u64, tokens: Tokens, condition: WriteCondition) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let result = ctx.store.compare_and_set(&name, condition, tokens).await;
            ctx.settle_written(&name, &result);
            ctx.report(JobResult::Written {
                name,
                generation,
                result,
            });
        });
    }

    /// Redeems a login's refresh token and learns the account. The tokens are not stored
    /// here: the manager decides which slot they go to (the account's own, whatever name
    /// was typed) and stores them there.
    pub fn login(
        &self,
        (name, ticket): (String, u64),
        provider: Provider,
        refresh_token: Secret,
        reply: oneshot::Sender<Result<Response, ErrorReply>>,
    ) {
        if self.drain.is_closed() {
            let _ = reply.send(Err(stopping()));
            return;
        }
        let ctx = self.clone();
        tokio::spawn(async move {
            let _permit = ctx.token_limit.acquire(Urgency::Asked).await;
            let Some(_in_flight) = ctx.drain.enter() else {
                let _ = reply.send(Err(stopping()));
                return;
            };
            let result = ctx.redeem_login(&name, &provider, refresh_token).await;
            ctx.report(JobResult::LoggedIn(Box::new(LoginResult {
                name,
                provider: provider.name.clone(),
                ticket,
                reply,
                result,
            })));
        });
    }

    async fn redeem_login(
        &self,
        name: &str,
        provider: &Provider,
        refresh_token: Secret,
    ) -> Result<LoginSuccess, ErrorReply> {
        let login_failed = |e: String| ErrorReply::new(ErrorCode::LoginFailed, e);
        let started = Instant::now();
        let reply = self.oauth.refresh(provider, &refresh_token).await;
        let took = started.elapsed();
        let grant = match reply {
            TokenOutcome::Refreshed(grant) => {
                joblog::login(name, Ok(()), took);
                grant
            }
            TokenOutcome::Permanent { error, reason } => {
                joblog::login(name, Err(&error), took);
                return Err(login_failed(
                    crate::daemon::jobs::login::refused_refresh_token(provider, reason),
                ));
            }
            TokenOutcome::Transient { error, cause, .. } => {
                joblog::login(name, Err(&error), took);
                return Err(login_failed(cause.advice().unwrap_or_else(|| {
                    format!("could not redeem the refresh token: {error}; try again")
                })));
            }
        };
        self.finish_login(name, provider, grant, &refresh_token)
            .await
    }

    /// The end every login shares, whatever its flow: learns who the account is. The
    /// tokens are not stored here (the manager places them, `Manager::on_logged_in`).
    /// `refresh_token` stands in when the grant rotated none.
    pub(in crate::daemon) async fn finish_login(
        &self,
        name: &str,
        provider: &Provider,
        grant: TokenGrant,
        refresh_token: &Secret,
    ) -> Result<LoginSuccess, ErrorReply> {
        // The token response names the account best, then the id_token; the userinfo
        // endpoint fills in whatever is still missing (an e-mail, usually).
        let mut identity = Identity {
            email: grant.account_email.clone(),
            subject: grant.account_subject.clone(),
        };
        if let Some(id_token) = &grant.id_token {
            identity = identity.or(oauth::identity_from_id_token(id_token));
        }
        if let Some(note) = &grant.note {
            tracing::warn!(slot = name, "{note}");
        }
        let unusable = grant.defect.is_some();
        let tokens = rotated_tokens(grant, refresh_token, &provider.scopes);
        // An unusable access token (the reply's defect) is not shown to userinfo; the slot
        // refreshes at once when placed, since the token counts as expired.
        if identity.email.is_none() && !unusable {
            match self.oauth.userinfo(provider, &tokens.access_token).await {
                Ok(Some(found)) => identity = identity.or(found),
                Ok(None) => {}
                Err(e) => tracing::warn!(slot = name, "could not learn the account: {e}"),
            }
        }
        Ok(LoginSuccess { tokens, identity })
    }
}

/// The tokens a refresh of `current` leads to. A reply whose access token is unusable
/// (its `defect`) still rotated the refresh token: that is taken, and the access token held
/// so far is kept with its expiry.
fn refreshed_tokens(grant: TokenGrant, current: &Tokens) -> Tokens {
    if grant.defect.is_none() {
        return rotated_tokens(grant, &current.refresh_token, &current.scopes);
    }
    Tokens {
        refresh_token: grant
            .refresh_token
            .unwrap_or_else(|| current.refresh_token.clone()),
        ..current.clone()
    }
}

/// The tokens after a successful grant of `refresh_token`: a provider that does not
/// rotate leaves that refresh token valid; one that sends no scope keeps `scopes`.
fn rotated_tokens(grant: TokenGrant, refresh_token: &Secret, scopes: &[String]) -> Tokens {
    let now = Utc::now();
    Tokens {
        access_token: grant.access_token,
        refresh_token: grant.refresh_token.unwrap_or_else(|| refresh_token.clone()),
        // Capped again here (the parser caps already): no lifetime can overflow the date.
        expires_at: grant
            .expires_in
            .map(|d| now + delta(d.min(oauth::MAX_LIFETIME))),
        obtained_at: now,
        scopes: grant.scope.unwrap_or_else(|| scopes.to_vec()),
    }
}
