//! The manager's command handlers, one per request that touches slots. Each answers at once
//! or parks the caller on the slot's job; a small task outside the manager turns the job's
//! outcome into the reply, so the manager never waits for anyone.

use chrono::Utc;
use tokio::sync::oneshot;

use crate::protocol::{
    ErrorCode, ErrorReply, LoginRequest, RefreshReport, Response, SlotRefreshResult, TokenReply,
};
use crate::slot_name;

use super::manager::{Manager, Reply};
use super::schedule;
use super::slot::{SlotOutcome, Waiter};

/// A token within this long of expiry is not handed out as "still valid" after a failed
/// refresh: the caller could not use it before it dies.
const MIN_USABLE_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

impl Manager {
    /// `token NAME`: the current access token, refreshed first when it is due.
    pub(super) fn handle_token(&mut self, name: String, reply: Reply) {
        let Some(slot) = self.slots.get_mut(&name) else {
            let _ = reply.send(Err(unknown_slot(&name)));
            return;
        };
        if let Some(refusal) = slot.refusal(&self.config) {
            let _ = reply.send(Err(refusal));
            return;
        }
        // Answered from memory whenever the held token is valid, even while a job runs
        // (a refresh, or a write to a keychain that does not answer), unless its scheduled
        // refresh time has come: that refresh (started early by its jitter) is awaited.
        let now = Utc::now();
        let refresh_time = slot.next_refresh_at.is_some_and(|at| at <= now);
        if let Some(tokens) = slot.creds.tokens()
            && !refresh_time
            && !schedule::is_due(tokens, self.config.refresh_before_expiry, now)
        {
            let _ = reply.send(Ok(Response::Token(TokenReply {
                access_token: tokens.access_token.clone(),
                expires_at: tokens.expires_at,
                warning: None,
            })));
            return;
        }
        let (tx, rx) = oneshot::channel();
        tracing::debug!(slot = name, job = ?slot.job, "token caller waits for the slot's job");
        slot.waiters.push(Waiter {
            reply: tx,
            token_only: true,
        });
        tokio::spawn(async move {
            let result = match rx.await {
                Ok(outcome) => token_reply(outcome),
                Err(_) => Err(shutting_down()),
            };
            let _ = reply.send(result);
        });
        self.start_next_job(&name, false);
    }

    /// `refresh NAME` / `refresh --all`: joins or starts each slot's refresh and reports
    /// every outcome once all have ended.
    pub(super) fn handle_refresh(&mut self, name: Option<String>, reply: Reply) {
        let names: Vec<String> = match name {
            Some(name) if self.slots.contains_key(&name) => vec![name],
            Some(name) => {
                let _ = reply.send(Err(unknown_slot(&name)));
                return;
            }
            None => self.slots.keys().cloned().collect(),
        };
        let mut pending = Vec::new();
        for name in names {
            let Some(slot) = self.slots.get_mut(&name) else {
                continue;
            };
            let (tx, rx) = oneshot::channel();
            if let Some(refusal) = slot.refusal(&self.config) {
                let _ = tx.send(slot.outcome(Err(refusal)));
            } else {
                slot.waiters.push(Waiter {
                    reply: tx,
                    token_only: false,
                });
                self.start_next_job(&name, false);
            }
            pending.push(rx);
        }
        tokio::spawn(async move {
            let mut results = Vec::new();
            for rx in pending {
                let Ok(outcome) = rx.await else {
                    let _ = reply.send(Err(shutting_down()));
                    return;
                };
                results.push(SlotRefreshResult {
                    name: outcome.name,
                    ok: outcome.result.is_ok(),
                    state: outcome.state,
                    error: outcome.result.err(),
                });
            }
            let _ = reply.send(Ok(Response::Refresh(RefreshReport { results })));
        });
    }

    /// `login`: checks the request, then redeems the refresh token in a job; the result
    /// comes back to `Manager::on_logged_in`, which picks the slot.
    pub(super) fn handle_login(&mut self, login: LoginRequest, reply: Reply) {
        if let Err(message) = slot_name::validate(&login.name) {
            let _ = reply.send(Err(ErrorReply::new(ErrorCode::InvalidName, message)));
            return;
        }
        let Some(provider) = self.config.providers.get(&login.provider).cloned() else {
            let known: Vec<&str> = self.config.providers.keys().map(String::as_str).collect();
            let _ = reply.send(Err(ErrorReply::new(
                ErrorCode::UnknownProvider,
                format!(
                    "no provider named {:?}; configured providers: {}",
                    login.provider,
                    known.join(", ")
                ),
            )));
            return;
        };
        if login.refresh_token.expose().trim().is_empty() {
            let _ = reply.send(Err(ErrorReply::new(
                ErrorCode::BadRequest,
                "the refresh token is empty",
            )));
            return;
        }
        let token = crate::secret::Secret::new(login.refresh_token.expose().trim());
        tracing::info!(slot = login.name, provider = provider.name, "login started");
        let ticket = self.login_tickets.issue();
        self.login_tickets.exchanging(ticket, &login.name);
        self.jobs
            .login((login.name, ticket), provider, token, reply);
    }

    /// `logout NAME`: cancels the pending logins of NAME (`super::cancel`), waits for a
    /// running job (its outcome may rotate the refresh token that must be revoked), then
    /// revokes and deletes. With no slot NAME, cancelling a pending login is a logout too.
    pub(super) fn handle_logout(&mut self, name: String, reply: Reply) {
        let cancelled = self.cancel_logins(&name);
        let Some(slot) = self.slots.get_mut(&name) else {
            let answer = if cancelled > 0 {
                Ok(Response::Logout(crate::protocol::LogoutReply {
                    name,
                    revoked: false,
                    warning: None,
                    cancelled_logins: u32::try_from(cancelled).unwrap_or(u32::MAX),
                    revocation_pending: false,
                }))
            } else {
                Err(unknown_slot(&name))
            };
            let _ = reply.send(answer);
            return;
        };
        slot.logouts
            .push(super::cancel::counting_cancelled(reply, cancelled));
        self.start_next_job(&name, false);
    }

    /// Removes an idle slot and starts its logout job.
    pub(super) fn start_logout(&mut self, name: &str) {
        let Some(mut slot) = self.slots.remove(name) else {
            return;
        };
        let gone = || {
            ErrorReply::new(
                ErrorCode::UnknownSlot,
                format!("slot {name} was logged out"),
            )
        };
        slot.resolve_waiters(Err(gone()));
        let mut logouts = slot.logouts.drain(..);
        let Some(first) = logouts.next() else {
            return;
        };
        for extra in logouts {
            let _ = extra.send(Err(gone()));
        }
        self.persist();
        let provider = self.config.providers.get(&slot.record.provider).cloned();
        let tokens = slot.creds.tokens().cloned();
        self.jobs.logout(
            slot.name.clone(),
            slot.record.generation,
            provider,
            tokens,
            first,
        );
    }
}

/// Turns a slot outcome into the `token` reply: the fresh token, or the still-valid old
/// one with a warning when the refresh failed transiently, or the error.
fn token_reply(outcome: SlotOutcome) -> Result<Response, ErrorReply> {
    let usable = outcome
        .expires_at
        .is_none_or(|at| at - Utc::now() > MIN_USABLE_LIFETIME);
    match (outcome.result, outcome.access_token) {
        (Ok(()), Some(access_token)) => Ok(Response::Token(TokenReply {
            access_token,
            expires_at: outcome.expires_at,
            warning: None,
        })),
        (Err(error), Some(access_token)) if usable && error.code == ErrorCode::RefreshFailed => {
            Ok(Response::Token(TokenReply {
                access_token,
                expires_at: outcome.expires_at,
                warning: Some(format!(
                    "refresh failed, returning the current token: {}",
                    error.message
                )),
            }))
        }
        (Err(error), _) => Err(error),
        (Ok(()), None) => Err(ErrorReply::new(
            ErrorCode::Internal,
            "no token is held for this slot",
        )),
    }
}

fn unknown_slot(name: &str) -> ErrorReply {
    ErrorReply::new(ErrorCode::UnknownSlot, format!("no slot named {name:?}"))
}

fn shutting_down() -> ErrorReply {
    ErrorReply::new(ErrorCode::ShuttingDown, "the daemon is shutting down")
}
