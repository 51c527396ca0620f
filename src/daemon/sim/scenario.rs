//! Scripted scenarios on the simulator's parts: the same models and simulated jobs as the
//! seeded runs, driven step by step, for the defects the seeded runs found (each is a
//! regression test that names the seed that found it).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::config::Config;
use crate::protocol::{ErrorReply, LoginRequest, RefreshRequest, Request, Response, SlotRef};
use crate::state::{SlotState, StateFile};

use crate::daemon::core::Command;
use crate::daemon::core::reports::JobResult;
use crate::daemon::core::schedule::Clocks;
use crate::daemon::start::reconcile::reconcile;

use super::daemon::{self, Daemon};
use super::exec::{Env, Step};
use super::invariants::Checker;
use super::oauth::{Faults, ModelOAuth, parse};
use super::orders::job_of;
use super::store::ModelStore;

type Answer = oneshot::Receiver<Result<Response, ErrorReply>>;

/// A daemon and the models, run by hand.
struct Script {
    config: Arc<Config>,
    server: ModelOAuth,
    store: ModelStore,
    checker: Checker,
    rng: fastrand::Rng,
    clocks: Clocks,
    daemon: Daemon,
    durable: StateFile,
    /// Whether the state writer saves after every job (else only when asked).
    autosave: bool,
}

impl Script {
    fn new() -> Self {
        let config = daemon::config();
        let clocks = Clocks {
            wall: "2030-01-01T00:00:00Z".parse().expect("a date"),
            boot: std::time::Duration::from_secs(1000),
        };
        let durable = StateFile {
            format: 1,
            revision: 0,
            next_generation: 1,
            slots: std::collections::BTreeMap::new(),
            pending_revocations: Vec::new(),
            ..StateFile::default()
        };
        let daemon = Daemon::start(&config, durable.clone(), BTreeMap::new(), clocks, 1);
        Script {
            config,
            server: ModelOAuth::new(Faults::NONE),
            store: ModelStore::default(),
            checker: Checker::new(0),
            rng: fastrand::Rng::with_seed(1),
            clocks,
            daemon,
            durable,
            autosave: true,
        }
    }

    fn ask(&mut self, request: Request) -> Answer {
        let (reply, rx) = oneshot::channel();
        let _ = self
            .daemon
            .manager
            .handle(Command { request, reply }, self.clocks);
        self.settle();
        rx
    }

    /// Runs every job to its end, in order, reporting each; saves the state after each.
    fn settle(&mut self) {
        let mut jobs: Vec<_> = (self.daemon.settle().into_iter())
            .filter_map(|order| job_of(order, &self.daemon.drain))
            .collect();
        while let Some(mut job) = jobs.pop() {
            let result = loop {
                let mut env = Env {
                    server: &mut self.server,
                    store: &mut self.store,
                    checker: &mut self.checker,
                    rng: &mut self.rng,
                    now: self.clocks.wall,
                    drain: &self.daemon.drain,
                    in_flight: &mut Vec::new(),
                    logins: &mut std::collections::BTreeSet::new(),
                    generations: std::collections::BTreeMap::new(),
                };
                match job.advance(&mut env) {
                    Step::Next(next) => job = next,
                    Step::Report(result) => break Some(result),
                    Step::Done => break None,
                }
            };
            if let Some(result) = result {
                self.daemon.manager.on_result(result, self.clocks);
            }
            self.daemon.manager.tick(self.clocks);
            jobs.extend(
                (self.daemon.settle().into_iter())
                    .filter_map(|order| job_of(order, &self.daemon.drain)),
            );
            if self.autosave {
                self.save_state();
            }
        }
    }

    /// The state writer saves the newest snapshot.
    fn save_state(&mut self) {
        if !self.daemon.state_rx.has_changed().unwrap_or(false) {
            return;
        }
        let (number, snapshot) = self.daemon.state_rx.borrow_and_update().clone();
        self.durable = snapshot.to_file(0);
        let saved = JobResult::StateSaved(Ok(number));
        self.daemon.manager.on_result(saved, self.clocks);
        self.daemon.manager.flush();
    }

    /// The process dies; a new one starts from the saved state and the store.
    fn crash_and_restart(&mut self) {
        if let Some(inventory) = self.store.inventory() {
            reconcile(&mut self.durable, &inventory, self.clocks.wall);
        }
        let slots = self.durable.slots.keys().cloned().collect();
        let held = self.store.replay_journal(&slots);
        self.daemon = Daemon::start(&self.config, self.durable.clone(), held, self.clocks, 2);
        self.daemon.manager.tick(self.clocks);
        self.settle();
    }

    fn login(&mut self, name: &str, account: usize) -> Answer {
        let refresh_token = self.server.issue(account);
        self.ask(Request::Login(LoginRequest {
            name: name.to_owned(),
            provider: "sim".to_owned(),
            refresh_token,
        }))
    }
}

/// Found by seed 2 (step 576): a logout whose item the store could not delete, then a new
/// login under the same name whose write the store could not take, then a crash. The new
/// daemon read the old, logged-out item and adopted its generation ("the store holds
/// another login than the state file records; using the store's"): the slot, showing the
/// new account, served and refreshed the logged-out account's revoked tokens. (The
/// journal append of the new login fails too: nothing durable holds its tokens.)
#[test]
fn a_logged_out_item_left_in_the_store_is_never_adopted_by_a_later_login_of_its_name() {
    let mut script = Script::new();
    script.store.journal_full = true;
    let first = script.login("home", 1);
    assert!(matches!(first.blocking_recv(), Ok(Ok(Response::Login(_)))));

    script.store.down = true;
    let logout = script.ask(Request::Logout(SlotRef {
        name: "home".into(),
    }));
    let Ok(Ok(Response::Logout(answer))) = logout.blocking_recv() else {
        panic!("the logout is answered");
    };
    assert!(answer.warning.is_some(), "the item could not be deleted");

    let second = script.login("home", 0);
    assert!(matches!(second.blocking_recv(), Ok(Ok(Response::Login(_)))));
    assert_eq!(
        script.durable.slots["home"].account.as_deref(),
        Some("a0@sim")
    );

    script.store.down = false;
    script.crash_and_restart();
    let token = script.ask(Request::Token(SlotRef {
        name: "home".into(),
    }));
    if let Ok(Ok(Response::Token(reply))) = token.blocking_recv() {
        let served = parse(reply.access_token.expose()).map(|id| id.grant);
        panic!("slot home (account a0) served the logged-out login's token (grant {served:?})");
    }
    let home = &script.durable.slots["home"];
    assert_eq!(home.state, SlotState::Inactive, "{home:?}");
    assert!(
        script.server.sightings.is_empty(),
        "{:?}",
        script.server.sightings
    );
}

/// A login is answered once journaled, while the store is down; the daemon dies before the
/// store takes its tokens. The next daemon replays the journal: the slot serves the new
/// login (never the logged-out item the store still holds), and the replaced login's grant
/// was revoked once the new tokens were journaled.
#[test]
fn a_login_answered_from_the_journal_survives_a_crash_before_the_store_write() {
    let mut script = Script::new();
    let first = script.login("home", 1);
    assert!(matches!(first.blocking_recv(), Ok(Ok(Response::Login(_)))));
    script.store.down = true;
    let second = script.login("home", 1);
    let Ok(Ok(Response::Login(answer))) = second.blocking_recv() else {
        panic!("the login is answered once journaled");
    };
    assert_eq!(answer.warning, None, "durable, not held in memory");
    assert!(
        script.server.grants[0].revoked.is_some(),
        "the replaced login's grant is revoked once the new one is journaled"
    );

    script.store.down = false;
    script.crash_and_restart();
    let token = script.ask(Request::Token(SlotRef {
        name: "home".into(),
    }));
    let Ok(Ok(Response::Token(reply))) = token.blocking_recv() else {
        panic!("the slot serves the journaled login");
    };
    let served = parse(reply.access_token.expose()).map(|id| id.grant);
    assert_eq!(served, Some(1), "the second login's grant");
    assert!(
        script.server.sightings.is_empty(),
        "{:?}",
        script.server.sightings
    );
    assert!(
        script.checker.violations().is_empty(),
        "{:?}",
        script.checker.violations()
    );
}

/// Found by seed 6 (step 540): a logout was answered as soon as its job reported, before
/// the state file stopped listing the slot; with the store down (the item not deleted, so
/// no logout ledger entry), a crash then brought the logged-out slot back.
#[test]
fn a_logout_is_answered_only_once_the_state_file_no_longer_lists_the_slot() {
    let mut script = Script::new();
    let login = script.login("home", 1);
    assert!(matches!(login.blocking_recv(), Ok(Ok(Response::Login(_)))));

    script.store.down = true;
    script.autosave = false;
    let mut logout = script.ask(Request::Logout(SlotRef {
        name: "home".into(),
    }));
    assert!(
        logout.try_recv().is_err(),
        "the logout was answered while the state file still lists slot home"
    );
    script.save_state();
    assert!(matches!(logout.try_recv(), Ok(Ok(Response::Logout(_)))));
    assert!(!script.durable.slots.contains_key("home"));
}

/// Found by seed 44 (step 1810): the same, for a slot with no credentials loaded (the store
/// was down since the start), whose logout job has no token to revoke and used to answer
/// the caller itself, before the state file stopped listing the slot.
#[test]
fn a_logout_with_nothing_to_revoke_is_answered_only_once_the_state_file_drops_the_slot() {
    let mut script = Script::new();
    let login = script.login("home", 1);
    assert!(matches!(login.blocking_recv(), Ok(Ok(Response::Login(_)))));
    script.store.down = true;
    script.crash_and_restart();

    script.autosave = false;
    let mut logout = script.ask(Request::Logout(SlotRef {
        name: "home".into(),
    }));
    assert!(
        logout.try_recv().is_err(),
        "the logout was answered while the state file still lists slot home"
    );
    script.save_state();
    assert!(matches!(logout.try_recv(), Ok(Ok(Response::Logout(_)))));
}

/// Found by seed 1033 (step 4211): the state file was older than the store (a re-login
/// stored, the process died before the state file had it) and the store was down at start,
/// so the start could not raise the next login generation above the store's. The load then
/// adopted the store's newer generation without raising it either: after a logout (the
/// ledger records that generation), a new login of the name was given a generation at or
/// below the logged-out one, and the next start dropped it as logged out.
#[test]
fn a_generation_adopted_from_the_store_is_never_given_to_a_later_login() {
    let mut script = Script::new();
    let first = script.login("home", 1);
    assert!(matches!(first.blocking_recv(), Ok(Ok(Response::Login(_)))));
    // A re-login of the same account, stored, then a crash before the state file has it.
    script.autosave = false;
    drop(script.login("home", 1));
    let recorded = script.durable.slots["home"].generation;
    assert!(script.store.peek("home").unwrap().generation > recorded);
    script.autosave = true;
    script.store.down = true;
    script.crash_and_restart();
    script.store.down = false;
    let token = script.ask(Request::Token(SlotRef {
        name: "home".into(),
    }));
    assert!(matches!(token.blocking_recv(), Ok(Ok(Response::Token(_)))));

    let logout = script.ask(Request::Logout(SlotRef {
        name: "home".into(),
    }));
    assert!(matches!(
        logout.blocking_recv(),
        Ok(Ok(Response::Logout(_)))
    ));
    let login = script.login("home", 0);
    assert!(matches!(login.blocking_recv(), Ok(Ok(Response::Login(_)))));
    script.crash_and_restart();
    assert!(
        script.durable.slots.contains_key("home"),
        "the new login of home was dropped at the next start as logged out"
    );
}

/// Found by seed 1272 (step 3690): a slot went inactive (its grant refused), a new login of
/// it was stored, and the process died before the state file had the login. The next start
/// adopted the store's newer login but kept the slot inactive, refusing valid tokens.
#[test]
fn a_newer_login_read_from_the_store_makes_an_inactive_slot_active() {
    let mut script = Script::new();
    let first = script.login("home", 1);
    assert!(matches!(first.blocking_recv(), Ok(Ok(Response::Login(_)))));
    let held = script
        .store
        .peek("home")
        .unwrap()
        .tokens
        .refresh_token
        .clone();
    script.server.revoke(&held);
    let refresh = script.ask(Request::Refresh(RefreshRequest {
        name: Some("home".into()),
    }));
    drop(refresh.blocking_recv());
    assert_eq!(script.durable.slots["home"].state, SlotState::Inactive);

    script.autosave = false;
    drop(script.login("home", 1));
    script.autosave = true;
    script.crash_and_restart();
    let home = &script.durable.slots["home"];
    assert_eq!(home.state, SlotState::Active, "{home:?}");
}

/// Found by seed 6 (step 1015): the previous daemon died holding rotated tokens the store had
/// not taken (they are in the journal), and the store was unreachable when the next daemon
/// started, so the journal could not be replayed. Once the store answered, that daemon
/// loaded the older item and presented its refresh token, which the provider had already
/// rotated: the grant was revoked. Now the slot starts from the journaled tokens
/// (`Slot::hold_journaled`) and writes them to the store first.
#[test]
fn rotated_tokens_journaled_while_the_store_was_down_are_not_lost_across_a_restart() {
    let mut script = Script::new();
    let login = script.login("work", 1);
    assert!(matches!(login.blocking_recv(), Ok(Ok(Response::Login(_)))));

    script.store.down = true;
    let refresh = script.ask(Request::Refresh(RefreshRequest {
        name: Some("work".into()),
    }));
    assert!(matches!(refresh.blocking_recv(), Ok(Ok(_))));
    script.crash_and_restart();

    script.store.down = false;
    let refresh = script.ask(Request::Refresh(RefreshRequest {
        name: Some("work".into()),
    }));
    let _ = refresh.blocking_recv();
    assert!(
        script.server.sightings.is_empty(),
        "{:?}",
        script.server.sightings
    );
}

/// Found by the long run (seed 1910, step 8557): the rotated token of a refresh that a
/// re-login and a logout overtook was revoked as soon as the refresh reported, while the
/// state file still listed the slot at that refresh's login; the journal held the token,
/// and after a crash the slot came back with it and presented a revoked token. A
/// revocation now waits until the state that no longer needs its token is on disk. Shown
/// here on the simplest case: a re-login's replaced token is not revoked before the state
/// file records the re-login.
#[test]
fn a_replaced_token_is_revoked_only_once_the_state_file_no_longer_needs_it() {
    let mut script = Script::new();
    let first = script.login("home", 1);
    assert!(matches!(first.blocking_recv(), Ok(Ok(Response::Login(_)))));
    let first_grant = script.server.grants.len() - 1;

    script.autosave = false;
    let second = script.login("home", 1);
    assert_eq!(
        script.server.grants[first_grant].revoked, None,
        "the replaced login's grant was revoked before the state file recorded the re-login"
    );
    script.save_state();
    script.settle();
    assert!(matches!(second.blocking_recv(), Ok(Ok(Response::Login(_)))));
    assert_eq!(
        script.server.grants[first_grant].revoked,
        Some(super::oauth::Revoked::ByClient),
        "revoked once the state file has the re-login"
    );
}
