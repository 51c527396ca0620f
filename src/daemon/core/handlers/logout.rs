//! `sessctl logout NAME`: cancels the name's pending logins, waits for the slot's running
//! job, then revokes and deletes (the logout job, `crate::daemon::jobs::revoke`).

use crate::protocol::{ErrorCode, ErrorReply, Response};

use super::super::orders::JobOrder;
use super::super::slot::QueuedLogout;
use super::super::{Manager, Reply};
use super::unknown_slot;

impl Manager {
    /// `logout NAME`: cancels the pending logins of NAME (`crate::daemon::core::login::cancel`), waits for a
    /// running job (its outcome may rotate the refresh token that must be revoked), then
    /// revokes and deletes. With no slot NAME, cancelling a pending login is a logout too.
    pub(in crate::daemon) fn handle_logout(&mut self, name: String, reply: Reply) {
        let cancelled = self.cancel_logins(&name);
        let Some(slot) = self.slots.get_mut(&name) else {
            let answer = if cancelled > 0 {
                Ok(Response::Logout(crate::protocol::LogoutReply {
                    name,
                    revoked: false,
                    warning: None,
                    cancelled_logins: u32::try_from(cancelled).unwrap_or(u32::MAX),
                    revocation_pending: false,
                    left_in_claude_code: None,
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
    pub(in crate::daemon) fn start_logout(&mut self, name: &str) {
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
        // A slot in Claude Code's store: its token is Claude Code's login, not revoked.
        let tokens = (slot.creds.tokens())
            .filter(|_| slot.record.claude_code.is_none())
            .cloned();
        self.jobs.push(JobOrder::Logout {
            name: slot.name.clone(),
            generation: slot.record.generation,
            provider,
            tokens,
            claude_code: slot.record.claude_code.clone(),
            reply: first.reply,
            cancelled: first.cancelled,
        });
    }
}
