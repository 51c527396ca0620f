//! `sessctl token NAME`: the slot's access token, from memory while it is valid, else
//! after the slot's refresh (joined, never duplicated).

use crate::protocol::{Response, TokenReply};

use super::super::schedule;
use super::super::waiters::Waiter;
use super::super::{Manager, Reply};
use super::unknown_slot;

impl Manager {
    /// `token NAME`: the current access token, refreshed first when it is due.
    pub(in crate::daemon) fn handle_token(&mut self, name: &str, reply: Reply) {
        let Some(slot) = self.slots.get_mut(name) else {
            let _ = reply.send(Err(unknown_slot(name)));
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
            && !schedule::is_due(
                tokens,
                slot.refresh_before(self.config.refresh_before_expiry),
                now,
            )
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
        self.start_next_job(name, false);
    }
}
