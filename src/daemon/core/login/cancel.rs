//! `logout NAME` wins over every login of NAME still pending when it arrives. Each login is
//! given a ticket (a number from one counter) when it starts; a logout of a name takes the
//! next number. A login whose ticket is older than a logout of the name it was typed as, or
//! of the slot it would land in, is cancelled: its pending flow is forgotten (its CLI is
//! told why, a device login stops polling), and if its tokens come back anyway (an exchange
//! already in flight) they are revoked and no slot is made or changed.
//!
//! The same rule covers `login --refresh-token-stdin`: a redemption still in flight when the
//! logout arrives ends in revocation of what it obtained, and its CLI is told so.
//!
//! Never touches a token: revocation goes through `Manager::revoke_unheld`.

use std::collections::{BTreeMap, HashMap};

use crate::protocol::{ErrorCode, ErrorReply};

use crate::daemon::core::Manager;

/// Login tickets and the logouts they are compared with.
#[derive(Default)]
pub(in crate::daemon) struct LoginTickets {
    next: u64,
    /// The ticket number each name's latest logout took. One entry per name logged out
    /// while this daemon runs: small.
    logged_out: HashMap<String, u64>,
    /// Token requests of logins running as jobs (refresh-token and code exchanges), by
    /// ticket: the typed name. Always ended by `finish` (those jobs always report).
    in_flight: BTreeMap<u64, String>,
}

impl LoginTickets {
    /// A ticket for a login starting now.
    pub fn issue(&mut self) -> u64 {
        let ticket = self.next;
        self.next += 1;
        ticket
    }

    /// The exchange of login `ticket` (typed as `name`) is running as a job.
    pub fn exchanging(&mut self, ticket: u64, name: &str) {
        self.in_flight.insert(ticket, name.to_owned());
    }

    /// A logout of `name`: every login of it ticketed before now is cancelled. Returns how
    /// many exchanges of that name are in flight.
    fn logout(&mut self, name: &str) -> usize {
        self.logged_out.insert(name.to_owned(), self.next);
        self.next += 1;
        self.in_flight.values().filter(|n| *n == name).count()
    }

    /// Login `ticket` reported: it is no longer in flight.
    pub fn finish(&mut self, ticket: u64) {
        self.in_flight.remove(&ticket);
    }

    /// Whether login `ticket`'s exchange is running as a job.
    pub fn in_flight(&self, ticket: u64) -> bool {
        self.in_flight.contains_key(&ticket)
    }

    /// Whether a logout of any of `names` came after login `ticket` started.
    pub fn cancelled(&self, ticket: u64, names: &[&str]) -> bool {
        names
            .iter()
            .any(|name| self.logged_out.get(*name).is_some_and(|at| *at > ticket))
    }
}

/// What a login cancelled by a logout is told.
pub(in crate::daemon) fn cancelled_by_logout(name: &str) -> ErrorReply {
    ErrorReply::new(
        ErrorCode::LoginFailed,
        format!(
            "the login of slot {name} was cancelled by `sessctl logout {name}`; no slot was created or changed, and any grant it obtained is revoked"
        ),
    )
}

impl Manager {
    /// Cancels every pending login of `name` (see the module docs); returns how many.
    pub(in crate::daemon) fn cancel_logins(&mut self, name: &str) -> usize {
        let reason = cancelled_by_logout(name);
        let mut count = self.flows.cancel_named(name, &reason);
        count += self.login_tickets.logout(name);
        if let Some(slot) = self.slots.get_mut(name)
            && let Some(pending) = slot.pending_login.take()
        {
            // A login whose tokens are still being stored: the logout that follows its write
            // deletes and revokes them.
            let _ = pending.reply.send(Err(reason));
            count += 1;
        }
        if count > 0 {
            tracing::info!(slot = name, count, "logout cancelled pending logins");
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logout_cancels_only_logins_of_its_names_that_started_before_it() {
        let mut tickets = LoginTickets::default();
        let before = tickets.issue();
        tickets.exchanging(before, "work");
        assert_eq!(tickets.logout("work"), 1);
        let after = tickets.issue();
        assert!(tickets.cancelled(before, &["work"]));
        assert!(
            tickets.cancelled(before, &["typed", "work"]),
            "by its target slot"
        );
        assert!(!tickets.cancelled(before, &["other"]));
        assert!(!tickets.cancelled(after, &["work"]));
        tickets.finish(before);
        assert_eq!(tickets.logout("work"), 0);
    }
}
