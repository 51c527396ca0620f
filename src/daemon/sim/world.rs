//! The seeded scheduler: one simulated world (server, store, durable state file, clocks,
//! callers) and one daemon process at a time. Each step picks, with the seeded RNG, one
//! thing to happen: a job's next effect (jobs complete in random order), the state writer
//! saving the newest snapshot, a client request, time passing to the core's next deadline,
//! the store going down or coming back, a clock jump (a suspend moves both clocks, a step
//! back only the wall clock), a crash (the process dies between two effects: jobs in
//! flight finish their I/O or not, at random, and their results are lost; the next process
//! starts from the last state snapshot the writer acknowledged and the store's content,
//! after the journal replay), or a graceful stop and restart. The invariants
//! (`super::invariants`) are checked after every step.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::Arc;

use chrono::TimeDelta;
use tokio::sync::oneshot;

use crate::config::Config;
use crate::protocol::{ErrorReply, LoginRequest, RefreshRequest, Request, Response, SlotRef};
use crate::state::StateFile;

use super::alerts::AlertWatch;
use super::daemon::{self, Daemon};
use super::exec::{Env, Running, Step};
use super::invariants::{Checker, durable_of};
use super::oauth::{Faults, ModelOAuth, parse};
use super::orders::job_of;
use super::store::ModelStore;
use crate::daemon::core::Command;
use crate::daemon::core::reports::{JobResult, RefreshOutcome};
use crate::daemon::core::schedule::{Clocks, MAX_SLEEP};
use crate::daemon::start::reconcile::reconcile;

/// Slot names the callers use.
const NAMES: [&str; 3] = ["work", "home", "ci"];
/// Accounts logins come from (`a<n>@sim`).
const ACCOUNTS: usize = 3;
/// Trace lines kept for a failure message.
const TRACE: usize = 600;

/// What a caller asked, to judge its reply.
enum Asked {
    Token,
    Login {
        account: usize,
        grant: usize,
    },
    Logout {
        name: String,
        /// The slot's generation when the logout was asked.
        generation: Option<u64>,
    },
    Other,
}

struct Caller {
    asked: Asked,
    rx: oneshot::Receiver<Result<Response, ErrorReply>>,
}

/// The simulated world. See the module docs.
pub struct World {
    seed: u64,
    rng: fastrand::Rng,
    config: Arc<Config>,
    server: ModelOAuth,
    store: ModelStore,
    checker: Checker,
    clocks: Clocks,
    daemon: Daemon,
    jobs: Vec<Running>,
    in_flight: Vec<usize>,
    logins: std::collections::BTreeSet<usize>,
    /// Logouts that revoked their token and are not answered yet: if the process dies
    /// first, the slot comes back and learns of the revocation by a refusal.
    unanswered_logouts: Vec<(String, crate::secret::Secret)>,
    /// The newest token of each grant that was ever durable: an acknowledgement needs its
    /// token durable when it is given (a newer login may replace it later).
    ever_durable: super::invariants::Durable,
    callers: Vec<Caller>,
    /// The newest snapshot published, and the one the writer last saved (durable).
    published: (u64, StateFile),
    durable: StateFile,
    saved_number: u64,
    alerts: AlertWatch,
    trace: VecDeque<String>,
}

impl World {
    pub fn new(seed: u64) -> Self {
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
        let daemon = Daemon::start(&config, durable.clone(), BTreeMap::new(), clocks, seed);
        World {
            seed,
            rng: fastrand::Rng::with_seed(seed),
            config,
            server: ModelOAuth::new(Faults::SIM),
            store: ModelStore::default(),
            checker: Checker::new(seed),
            clocks,
            daemon,
            jobs: Vec::new(),
            in_flight: Vec::new(),
            logins: std::collections::BTreeSet::new(),
            unanswered_logouts: Vec::new(),
            ever_durable: super::invariants::Durable::new(),
            callers: Vec::new(),
            published: (0, durable.clone()),
            durable,
            saved_number: 0,
            alerts: AlertWatch::default(),
            trace: VecDeque::new(),
        }
    }

    /// Runs `steps` steps; the first violation ends the run with a message naming the seed,
    /// the step and the last steps taken.
    pub fn run(&mut self, steps: u64) -> Result<(), String> {
        self.tick();
        for step in 1..=steps {
            self.checker.step = step;
            self.step();
            if let Some(first) = self.checker.violations().first() {
                let trace: Vec<&str> = self.trace.iter().map(String::as_str).collect();
                return Err(format!(
                    "{first}\nlast steps:\n  {}\nreplay: SESSCTL_SIM_SEED={} cargo test --lib daemon::sim",
                    trace.join("\n  "),
                    self.seed
                ));
            }
        }
        Ok(())
    }

    fn note(&mut self, what: &str) {
        if self.trace.len() == TRACE {
            self.trace.pop_front();
        }
        self.trace
            .push_back(format!("{} {what}", self.checker.step));
    }

    fn step(&mut self) {
        let roll = self.rng.u32(0..1000);
        match roll {
            0..450 if !self.jobs.is_empty() => self.advance_job(),
            0..600 if self.published.0 > self.saved_number => self.save_state(),
            0..800 => self.client(),
            800..960 => self.pass_time(),
            960..972 => {
                self.store.down = !self.store.down;
                self.note(&format!("store down: {}", self.store.down));
            }
            972..975 => {
                self.store.journal_full = !self.store.journal_full;
                self.note(&format!("journal full: {}", self.store.journal_full));
            }
            975..985 => self.jump_clocks(),
            985..995 => self.crash(),
            _ => self.graceful_restart(),
        }
    }

    /// The clocks moved by `by` on both clocks.
    fn elapse(&mut self, by: std::time::Duration) {
        self.clocks.boot += by;
        self.clocks.wall += TimeDelta::from_std(by).expect("a short step");
    }

    fn env(&mut self) -> Env<'_> {
        Env {
            server: &mut self.server,
            store: &mut self.store,
            checker: &mut self.checker,
            rng: &mut self.rng,
            now: self.clocks.wall,
            drain: &self.daemon.drain,
            in_flight: &mut self.in_flight,
            logins: &mut self.logins,
            generations: (self.published.1.slots.iter())
                .map(|(name, record)| (name.clone(), record.generation))
                .collect(),
        }
    }

    fn advance_job(&mut self) {
        let i = self.rng.usize(..self.jobs.len());
        let job = self.jobs.swap_remove(i);
        if let Some((name, token)) = job.logout_token() {
            self.unanswered_logouts
                .push((name.to_owned(), token.clone()));
        }
        if !matches!(job.job, super::exec::Job::Report(..)) {
            let what = job.describe();
            self.note(&what);
        }
        // A job's effects take a little time.
        let by = std::time::Duration::from_millis(self.rng.u64(0..800));
        self.elapse(by);
        match job.advance(&mut self.env()) {
            Step::Next(job) => self.jobs.push(job),
            Step::Report(result) => {
                let store_down = self.store.down;
                self.note(&format!(
                    "report {} (store down: {store_down})",
                    describe(&result)
                ));
                self.daemon.manager.on_result(result, self.clocks);
                self.after_event();
            }
            Step::Done => {}
        }
    }

    /// The state writer saves the newest snapshot and says so.
    fn save_state(&mut self) {
        let (number, snapshot) = self.published.clone();
        self.durable = snapshot;
        self.saved_number = number;
        self.note(&format!("state {number} saved"));
        self.daemon
            .manager
            .on_result(JobResult::StateSaved(Ok(number)), self.clocks);
        self.after_event();
    }

    fn client(&mut self) {
        let name = NAMES[self.rng.usize(..NAMES.len())].to_owned();
        let (request, asked) = match self.rng.u8(0..10) {
            0..4 => (Request::Token(SlotRef { name }), Asked::Token),
            4 => (
                Request::Refresh(RefreshRequest { name: Some(name) }),
                Asked::Other,
            ),
            5 => (
                Request::Refresh(RefreshRequest { name: None }),
                Asked::Other,
            ),
            6 | 7 => {
                let account = self.rng.usize(..ACCOUNTS);
                let refresh_token = self.server.issue(account);
                let grant = self.server.grants.len() - 1;
                let login = LoginRequest {
                    name,
                    provider: "sim".to_owned(),
                    refresh_token,
                };
                (Request::Login(login), Asked::Login { account, grant })
            }
            8 => {
                let generation = self.published.1.slots.get(&name).map(|r| r.generation);
                let logout = Request::Logout(SlotRef { name: name.clone() });
                (logout, Asked::Logout { name, generation })
            }
            _ => (Request::Status, Asked::Other),
        };
        let whose = match &asked {
            Asked::Login { account, grant } => format!(" (a{account}@sim, g{grant})"),
            Asked::Logout { generation, .. } => format!(" (generation {generation:?})"),
            _ => String::new(),
        };
        self.note(&format!("request {}{whose}", request_name(&request)));
        let (reply, rx) = oneshot::channel();
        self.callers.push(Caller { asked, rx });
        let command = Command { request, reply };
        let _ = self.daemon.manager.handle(command, self.clocks);
        self.after_event();
    }

    /// Time passes up to the core's next deadline (never more than the runner sleeps).
    fn pass_time(&mut self) {
        let longest = if self.rng.bool() {
            MAX_SLEEP
        } else {
            std::time::Duration::from_millis(self.rng.u64(0..3000))
        };
        let until = self.daemon.manager.earliest_deadline();
        let wait = until
            .map(|at| (at - self.clocks.wall).to_std().unwrap_or_default())
            .map_or(longest, |w| w.min(longest));
        self.elapse(wait);
        self.note(&format!("time +{} ms", wait.as_millis()));
        self.tick();
    }

    fn jump_clocks(&mut self) {
        if self.rng.bool() {
            let by = std::time::Duration::from_secs(self.rng.u64(60..36_000));
            self.elapse(by);
            self.note(&format!("suspended {} s", by.as_secs()));
        } else {
            let by = TimeDelta::seconds(self.rng.i64(60..7200));
            self.clocks.wall -= by;
            self.note(&format!("wall clock stepped back {} s", by.num_seconds()));
        }
        self.tick();
    }

    fn tick(&mut self) {
        self.daemon.manager.tick(self.clocks);
        self.settle();
    }

    /// After a command or a result: what the runner does (settle, then the loop's tick).
    fn after_event(&mut self) {
        self.settle();
        self.tick();
    }

    /// Starts the orders, takes the flushed state and alerts, hears replies, checks.
    fn settle(&mut self) {
        for order in self.daemon.settle() {
            if let Some(job) = job_of(order, &self.daemon.drain) {
                self.jobs.push(job);
            }
        }
        if self.daemon.state_rx.has_changed().unwrap_or(false) {
            let (number, snapshot) = self.daemon.state_rx.borrow_and_update().clone();
            self.published = (number, snapshot.to_file(0));
            self.checker.state(&self.published.1);
        }
        while let Ok(event) = self.daemon.alerts_rx.try_recv() {
            self.alerts.observe(&event, &mut self.checker);
        }
        self.alerts.state(&self.published.1);
        if let Err(what) = self.daemon.manager.check_index() {
            self.checker.index(&what);
        }
        self.hear_replies();
        self.checker.server(&self.server.sightings);
    }

    fn hear_replies(&mut self) {
        for (grant, pos) in durable_of(self.store.durable_refresh_tokens()) {
            let newest = self.ever_durable.entry(grant).or_insert(pos);
            *newest = (*newest).max(pos);
        }
        let durable = self.ever_durable.clone();
        let mut waiting = Vec::new();
        for mut caller in std::mem::take(&mut self.callers) {
            match caller.rx.try_recv() {
                Ok(reply) => self.heard(&caller.asked, reply, &durable),
                Err(oneshot::error::TryRecvError::Empty) => waiting.push(caller),
                Err(oneshot::error::TryRecvError::Closed) => {}
            }
        }
        self.callers = waiting;
    }

    fn heard(
        &mut self,
        asked: &Asked,
        reply: Result<Response, ErrorReply>,
        durable: &super::invariants::Durable,
    ) {
        match (asked, reply) {
            (Asked::Token, Ok(Response::Token(token))) => {
                if let Some(id) = parse(token.access_token.expose()) {
                    let logins = &self.logins;
                    self.checker
                        .acknowledged(id, "a token reply", durable, logins);
                }
            }
            (Asked::Login { grant, .. }, Ok(Response::Login(login))) => {
                let in_memory = login
                    .warning
                    .as_deref()
                    .is_some_and(|w| w.contains("could not be stored yet"));
                self.checker.login_acknowledged(*grant, in_memory, durable);
            }
            // A logout of a slot that existed when asked: its job is the one answered (a
            // logout of an unknown name is answered at once, and settles nothing).
            (
                Asked::Logout {
                    name,
                    generation: Some(generation),
                },
                Ok(Response::Logout(_)),
            ) => {
                self.unanswered_logouts.retain(|(n, _)| n != name);
                self.checker.logged_out(name, *generation);
            }
            _ => {}
        }
    }

    /// The process dies between two effects.
    fn crash(&mut self) {
        self.note("crash");
        for job in std::mem::take(&mut self.jobs) {
            if self.rng.bool() {
                self.finish_silently(job);
            }
        }
        self.in_flight.clear();
        self.restart();
    }

    /// Runs a job of a dead process to its end; its report goes nowhere.
    fn finish_silently(&mut self, mut job: Running) {
        if let Some((name, token)) = job.logout_token() {
            self.unanswered_logouts
                .push((name.to_owned(), token.clone()));
        }
        loop {
            match job.advance(&mut self.env()) {
                Step::Next(next) => job = next,
                Step::Report(_) | Step::Done => return,
            }
        }
    }

    /// A stop as the runner drains it, then a new process.
    fn graceful_restart(&mut self) {
        self.note("graceful stop");
        self.daemon.manager.begin_stop();
        self.settle();
        for round in 0..200 {
            let retrying = round < 100;
            let pending = self.daemon.manager.stop_pending(retrying);
            if pending.is_empty() {
                break;
            }
            if round % 10 == 0 {
                self.daemon.manager.retry_unsaved_writes();
                self.settle();
            }
            if !self.jobs.is_empty() {
                self.advance_job();
            } else if self.published.0 > self.saved_number {
                self.save_state();
            } else {
                self.elapse(std::time::Duration::from_millis(500));
            }
        }
        self.daemon.manager.report_unsaved_at_exit();
        self.daemon.manager.persist();
        self.settle();
        if self.published.0 > self.saved_number {
            self.save_state();
        }
        // Whatever is still out when the process exits ends with it.
        self.crash_quietly();
    }

    fn crash_quietly(&mut self) {
        for job in std::mem::take(&mut self.jobs) {
            self.finish_silently(job);
        }
        self.in_flight.clear();
        self.restart();
    }

    /// A new process over the durable state and the store, after the journal replay.
    fn restart(&mut self) {
        self.callers.clear();
        for (_, token) in std::mem::take(&mut self.unanswered_logouts) {
            self.server.logout_interrupted(&token);
        }
        // The start: the store's word on which slots exist (the state is saved when that
        // changed it), then the journal replay, then the manager.
        if let Some(inventory) = self.store.inventory() {
            reconcile(&mut self.durable, &inventory, self.clocks.wall);
        }
        let slots = self.durable.slots.keys().cloned().collect();
        let journal = self.store.journal_summary();
        self.note(&format!("journal at start: [{journal}]"));
        let held = self.store.replay_journal(&slots);
        let seed = self.rng.u64(..);
        self.daemon = Daemon::start(&self.config, self.durable.clone(), held, self.clocks, seed);
        self.published = (0, self.durable.clone());
        self.saved_number = 0;
        self.alerts = AlertWatch::default();
        self.checker.state(&self.durable);
        let mut listed = Vec::new();
        for (name, record) in &self.durable.slots {
            let stored = self.store.peek(name).map(|i| (i.generation, i.version));
            listed.push(format!(
                "{name} gen {} (store {stored:?})",
                record.generation
            ));
        }
        self.note(&format!("restarted: {}", listed.join(", ")));
        self.settle();
        self.tick();
    }
}

fn describe(result: &JobResult) -> String {
    match result {
        JobResult::Loaded { name, .. } => format!("loaded {name}"),
        JobResult::Refreshed { name, outcome, .. } => {
            let how = match outcome {
                RefreshOutcome::Stored(_) => "stored",
                RefreshOutcome::Unsaved { .. } => "unsaved",
                RefreshOutcome::Conflict { .. } => "conflict",
                RefreshOutcome::Transient { .. } => "transient",
                RefreshOutcome::Permanent { .. } => "permanent",
            };
            format!("refreshed {name}: {how}")
        }
        JobResult::Written { name, result, .. } => format!("written {name}: {}", result.is_ok()),
        JobResult::LoggedIn(login) => format!("logged in {}: {}", login.name, login.result.is_ok()),
        JobResult::LoginJournaled {
            name, journaled, ..
        } => format!("login journaled {name}: {journaled}"),
        JobResult::Revocation(_) => "revocation".to_owned(),
        JobResult::Usage { name, .. } => format!("usage {name}"),
        JobResult::StateSaved(_) | JobResult::CacheSaved(_) => "saved".to_owned(),
        JobResult::Adopted(_) => "adopted".to_owned(),
        JobResult::ClaudeCodeLogin(_) | JobResult::ClaudeCodeProbed(_) => "claude code".to_owned(),
        JobResult::Moved(_) => "moved".to_owned(),
    }
}

fn request_name(request: &Request) -> String {
    match request {
        Request::Token(s) => format!("token {}", s.name),
        Request::Refresh(r) => format!("refresh {}", r.name.as_deref().unwrap_or("--all")),
        Request::Login(l) => format!("login {}", l.name),
        Request::Logout(s) => format!("logout {}", s.name),
        _ => "status".to_owned(),
    }
}
