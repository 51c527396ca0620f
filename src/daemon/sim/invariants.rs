//! The invariants the simulator checks after every step. Each check is fed what the
//! scheduler observed (what the server saw, what the store holds durably, the state the
//! core published, the replies callers got) and records a violation naming the seed and
//! the step; the run stops at the first one.
//!
//! - no refresh token presented twice (the server's reuse detection fired);
//! - nothing logged out comes back: no token of a grant the daemon revoked is presented,
//!   and a logged-out slot never reappears with the login it had (only a newer login of
//!   the name, which has a higher generation);
//! - the newest rotated token is durable (store or journal) before it is presented again
//!   or acknowledged to a caller (a `token` reply, a login's reply). A login's redeemed
//!   token (position 1 of a grant a login redeemed) is judged at the login's reply only:
//!   the daemon answers a login once it is journaled (or, when the append fails, stored),
//!   and answers a login whose append and store write both failed with a warning that the
//!   tokens are held in memory (a documented degraded mode, counted in
//!   [`Checker::memory_only_logins`] rather than failed);
//! - no slot is deactivated by a transient fault: `session_expired`/`client_rejected`
//!   only after the server refused that slot's login for good;
//! - one slot per account;
//! - at most one token request per lineage (grant) in flight;
//! - alerts at most once per transition (judged in `super::alerts`).

use crate::slot_reason::SlotReason;
use std::collections::{BTreeMap, BTreeSet};

use crate::state::{SlotState, StateFile};

use super::oauth::{Sighting, TokenId};

/// Where the invariants stand. See the module docs.
pub struct Checker {
    seed: u64,
    /// The step being checked.
    pub step: u64,
    violations: Vec<String>,
    /// Slots a logout removed (acknowledged), with the generation they had when it was
    /// asked: that login, or an older one, never shows up under the name again.
    logged_out: BTreeMap<String, u64>,
    /// Slots (name, generation) the server refused for good.
    refused: BTreeSet<(String, u64)>,
    sightings_seen: usize,
    /// Logins acknowledged while their tokens were only in memory, said in the reply.
    pub memory_only_logins: u64,
}

/// The newest refresh token of each grant held durably (store items and journal).
pub type Durable = BTreeMap<usize, u32>;

/// Indexes durable refresh tokens by grant.
pub fn durable_of<'a>(tokens: impl Iterator<Item = &'a str>) -> Durable {
    let mut newest = Durable::new();
    for id in tokens.filter_map(super::oauth::parse) {
        let pos = newest.entry(id.grant).or_insert(id.pos);
        *pos = (*pos).max(id.pos);
    }
    newest
}

fn is_durable(durable: &Durable, id: TokenId) -> bool {
    durable.get(&id.grant).is_some_and(|&pos| pos >= id.pos)
}

/// True for the token a login redeemed (judged at the login's reply, see the module docs).
fn login_redeemed(id: TokenId, logins: &BTreeSet<usize>) -> bool {
    id.pos == 1 && logins.contains(&id.grant)
}

impl Checker {
    pub fn new(seed: u64) -> Self {
        Checker {
            seed,
            step: 0,
            violations: Vec::new(),
            logged_out: BTreeMap::new(),
            refused: BTreeSet::new(),
            sightings_seen: 0,
            memory_only_logins: 0,
        }
    }

    /// The violations found so far.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    fn violation(&mut self, what: &str) {
        self.violations
            .push(format!("seed {} step {}: {what}", self.seed, self.step));
    }

    /// What the server saw since the last call.
    pub fn server(&mut self, sightings: &[Sighting]) {
        for sighting in sightings[self.sightings_seen..].iter().cloned() {
            match sighting {
                Sighting::Reused(id) => self.violation(&format!("{id} was presented twice")),
                Sighting::AfterRevoke(id) => self.violation(&format!(
                    "{id} was presented after the daemon revoked its grant"
                )),
            }
        }
        self.sightings_seen = sightings.len();
    }

    /// A refresh token is about to be presented to the server by the daemon.
    pub fn presented(&mut self, id: TokenId, durable: &Durable, logins: &BTreeSet<usize>) {
        // Position 0 is the token the user handed to a login: the user holds it.
        if id.pos > 0 && !is_durable(durable, id) && !login_redeemed(id, logins) {
            self.violation(&format!("{id} was presented before it was durable"));
        }
    }

    /// A caller got a token, or a login's success, carrying the tokens issued with `id`.
    pub fn acknowledged(
        &mut self,
        id: TokenId,
        what: &str,
        durable: &Durable,
        logins: &BTreeSet<usize>,
    ) {
        if !is_durable(durable, id) && !login_redeemed(id, logins) {
            self.violation(&format!("{what} was acknowledged before {id} was durable"));
        }
    }

    /// The manager's deadline index (or its alert bookkeeping) disagreed with a walk over
    /// every slot: an event changed a slot without the index hearing of it.
    pub fn index(&mut self, what: &str) {
        self.violation(what);
    }

    /// An alert broke "at most once per transition" (`super::alerts`).
    pub fn alert(&mut self, what: &str) {
        self.violation(what);
    }

    /// A login of `grant` was answered with success; `in_memory` when the reply says its
    /// tokens could not be stored yet.
    pub fn login_acknowledged(&mut self, grant: usize, in_memory: bool, durable: &Durable) {
        let id = TokenId { grant, pos: 1 };
        if is_durable(durable, id) {
            return;
        }
        if in_memory {
            self.memory_only_logins += 1;
        } else {
            self.violation(&format!("a login was acknowledged before {id} was durable"));
        }
    }

    /// The server refused slot `name` at `generation` for good.
    pub fn refused(&mut self, name: &str, generation: u64) {
        self.refused.insert((name.to_owned(), generation));
    }

    /// A logout of slot `name`, asked while it had `generation`, was acknowledged.
    pub fn logged_out(&mut self, name: &str, generation: u64) {
        let newest = self.logged_out.entry(name.to_owned()).or_insert(generation);
        *newest = (*newest).max(generation);
    }

    /// A token request for a slot starts while `in_flight` others for it are out.
    pub fn token_request(&mut self, name: &str, in_flight: usize) {
        if in_flight > 0 {
            self.violation(&format!(
                "a token request for slot {name} started while {in_flight} was in flight"
            ));
        }
    }

    /// The state the core published (or restarted from).
    pub fn state(&mut self, state: &StateFile) {
        let mut accounts = BTreeMap::new();
        for (name, record) in &state.slots {
            if let Some(account) = &record.account
                && let Some(other) = accounts.insert(account.clone(), name.clone())
            {
                self.violation(&format!("account {account} has two slots: {other}, {name}"));
            }
            if let Some(&gone) = self.logged_out.get(name)
                && record.generation <= gone
            {
                self.violation(&format!(
                    "slot {name} came back with generation {} after its logout (generation {gone})",
                    record.generation
                ));
            }
            let permanent = matches!(
                record.reason,
                Some(SlotReason::SessionExpired | SlotReason::ClientRejected)
            );
            let was_refused = self.refused.contains(&(name.clone(), record.generation));
            if record.state == SlotState::Inactive && permanent && !was_refused {
                self.violation(&format!(
                    "slot {name} (generation {}) went inactive ({}) without a permanent refusal",
                    record.generation,
                    record.reason.as_ref().map_or("", SlotReason::as_str)
                ));
            }
            if record.reason == Some(SlotReason::CredentialsUnreadable) {
                self.violation(&format!("slot {name} found its item unreadable"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SlotRecord;

    fn record(account: &str, state: SlotState, reason: Option<SlotReason>) -> SlotRecord {
        SlotRecord {
            provider: "sim".into(),
            account: Some(account.into()),
            account_key: None,
            state,
            reason,
            generation: 7,
            created_at: chrono::DateTime::UNIX_EPOCH,
            last_refresh_at: None,
            last_refresh_error: None,
            refreshes: 0,
            newest_written: None,
            claude_code: None,
        }
    }

    fn state(slots: &[(&str, SlotRecord)]) -> StateFile {
        StateFile {
            format: 1,
            revision: 0,
            next_generation: 8,
            slots: slots
                .iter()
                .map(|(n, r)| ((*n).to_owned(), r.clone()))
                .collect(),
            pending_revocations: Vec::new(),
            ..StateFile::default()
        }
    }

    #[test]
    fn each_violation_names_the_seed_and_step() {
        let mut checker = Checker::new(42);
        checker.step = 9;
        checker.server(&[Sighting::Reused(TokenId { grant: 1, pos: 2 })]);
        assert_eq!(
            checker.violations(),
            ["seed 42 step 9: refresh token #2 of grant 1 was presented twice"]
        );
        // A sighting is reported once.
        checker.server(&[Sighting::Reused(TokenId { grant: 1, pos: 2 })]);
        assert_eq!(checker.violations().len(), 1);
    }

    #[test]
    fn a_rotated_token_must_be_durable_before_use_or_acknowledgement() {
        let mut checker = Checker::new(1);
        let durable = durable_of(["rt.0.3", "rt.0.1", "rt.2.0"].into_iter());
        let logins = BTreeSet::from([7]);
        checker.presented(TokenId { grant: 0, pos: 3 }, &durable, &logins);
        checker.presented(TokenId { grant: 5, pos: 0 }, &durable, &logins);
        checker.presented(TokenId { grant: 7, pos: 1 }, &durable, &logins);
        checker.login_acknowledged(7, true, &durable);
        assert!(checker.violations().is_empty());
        assert_eq!(checker.memory_only_logins, 1);
        checker.presented(TokenId { grant: 2, pos: 1 }, &durable, &logins);
        checker.acknowledged(TokenId { grant: 0, pos: 4 }, "a token", &durable, &logins);
        checker.login_acknowledged(7, false, &durable);
        assert_eq!(checker.violations().len(), 3);
    }

    #[test]
    fn deactivation_needs_a_refusal_and_logged_out_accounts_stay_out() {
        let mut checker = Checker::new(1);
        let expired = record("a@x", SlotState::Inactive, Some(SlotReason::SessionExpired));
        checker.state(&state(&[("s", expired.clone())]));
        assert_eq!(checker.violations().len(), 1);
        checker.refused("s", 7);
        checker.state(&state(&[("s", expired)]));
        assert_eq!(checker.violations().len(), 1);

        checker.logged_out("t", 7);
        let mut active = record("b@x", SlotState::Active, None);
        checker.state(&state(&[("t", active.clone())]));
        assert_eq!(checker.violations().len(), 2);
        // A new login of the name is a newer generation.
        active.generation = 9;
        checker.state(&state(&[("t", active.clone()), ("u", active)]));
        assert_eq!(checker.violations().len(), 3, "{:?}", checker.violations());
    }
}
