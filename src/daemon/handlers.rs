//! The manager's command handlers, one per request that touches slots. Each answers at once
//! or parks the caller on the slot's job (`super::waiters`), so the manager never waits for
//! anyone.

use crate::protocol::{ErrorCode, ErrorReply, LoginRequest, Response, TokenReply};
use crate::slot_name;

use super::manager::{Manager, Reply};
use super::orders::JobOrder;
use super::schedule;
use super::slot::QueuedLogout;
use super::waiters::{Waiter, refresh_batch};

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
        let now = self.now;
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
        tracing::debug!(slot = name, job = ?slot.job, "token caller waits for the slot's job");
        slot.waiters.push(Waiter::token(reply));
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
        let parts = refresh_batch(reply, names.len());
        for (name, part) in names.into_iter().zip(parts) {
            let Some(slot) = self.slots.get_mut(&name) else {
                continue;
            };
            if let Some(refusal) = slot.refusal(&self.config) {
                part.fill(&slot.outcome(Err(refusal)));
            } else {
                slot.waiters.push(Waiter::refresh(part));
                self.start_next_job(&name, false);
            }
        }
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
        self.jobs.push(JobOrder::Login {
            name: login.name,
            ticket,
            provider,
            refresh_token: token,
            reply,
        });
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
        slot.logouts.push(QueuedLogout { reply, cancelled });
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
        slot.resolve_waiters(Err(gone()), self.now);
        let mut logouts = slot.logouts.drain(..);
        let Some(first) = logouts.next() else {
            return;
        };
        for extra in logouts {
            let _ = extra.reply.send(Err(gone()));
        }
        self.persist();
        let provider = self.config.providers.get(&slot.record.provider).cloned();
        let tokens = slot.creds.tokens().cloned();
        self.jobs.push(JobOrder::Logout {
            name: slot.name.clone(),
            generation: slot.record.generation,
            provider,
            tokens,
            reply: first.reply,
            cancelled: first.cancelled,
        });
    }
}

fn unknown_slot(name: &str) -> ErrorReply {
    ErrorReply::new(ErrorCode::UnknownSlot, format!("no slot named {name:?}"))
}
