//! The manager: the single owner of every slot's state, as a sans-IO state machine. Events
//! come in with the time ([`Manager::handle`] a client command, [`Manager::on_result`] a
//! job's result, [`Manager::tick`] the timer), each with the clocks read by the caller; the
//! manager changes its own state and queues what it wants done: job orders
//! ([`crate::daemon::core::orders`]: token requests, keychain calls, revocations), replies on the
//! callers' channels, and, through [`Manager::flush`] after every event, the state
//! snapshot, the quota cache and alerts. It reads no clock, draws randomness only from its
//! own seeded generator, starts no task and never awaits: the runner (`crate::daemon::runner`) does
//! the I/O, and a simulator can drive it instead. At most one job runs per slot, which is
//! the single flight: every caller wanting a refresh waits on that job.

pub mod alerts;
mod changes;
pub mod claude_code_reload;
pub mod clock;
mod conflict;
pub mod drain;
mod due_index;
mod handlers;
pub mod login;
pub mod moving;
mod next_job;
pub mod orders;
mod pacing;
mod refreshed;
pub mod reports;
mod results;
mod retire;
mod revocations;
pub mod schedule;
pub mod slot;
pub mod snapshot;
pub mod stop;
mod table;
mod transitions;
pub mod usage;
pub mod waiters;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};

use crate::cache::QuotaCache;
use crate::config::Config;
use crate::protocol::{ErrorReply, Request, Response, UnplacedCredential};
use crate::state::StateFile;

use self::snapshot::{Records, StateSnapshot};
use crate::store::StoreKind;

use self::alerts::Alerts;
use self::schedule::Clocks;
use crate::daemon::alerts::AlertQueue;
use crate::daemon::core::clock::ClockWatch;
use crate::daemon::core::due_index::DueIndex;
use crate::daemon::core::login::cancel::LoginTickets;
use crate::daemon::core::login::flows::PendingFlows;
use crate::daemon::core::orders::JobOrders;
use crate::daemon::core::retire::ReplacedJob;
use crate::daemon::core::revocations::RevocationQueue;
use crate::daemon::core::slot::Slot;
use crate::daemon::core::table::SlotTable;
use crate::daemon::core::transitions::StateLog;
use crate::daemon::start::store_probe::StoreProbe;

/// A state snapshot and its number: the writer reports which number is on disk, so the
/// manager can hold a reply until the state it depends on is durable.
pub type NumberedState = (u64, StateSnapshot);

/// Where a command's reply goes.
pub(in crate::daemon) type Reply = oneshot::Sender<Result<Response, ErrorReply>>;

/// A client request with the channel its reply goes back on.
pub struct Command {
    pub request: Request,
    pub reply: oneshot::Sender<Result<Response, ErrorReply>>,
}

/// The state owner. See the module docs.
pub struct Manager {
    config: Arc<Config>,
    /// The slots; records which ones each event changed (`crate::daemon::core::table`).
    slots: SlotTable,
    /// Each slot's next deadlines, in order, kept in step with the changed slots
    /// ([`Manager::reindex`]).
    due: DueIndex,
    /// Slots changed since the transition log and alerts last looked (and since
    /// `records` was brought up to date).
    unobserved: BTreeSet<String>,
    /// The slot records as last published, shared with the snapshots
    /// (`crate::daemon::core::snapshot`): an event replaces only the records it changed.
    records: Arc<Records>,
    next_generation: u64,
    /// The I/O queued by the current event, for the runner to start.
    jobs: JobOrders,
    /// The wall clock as of the event being handled (every judgement uses it).
    now: DateTime<Utc>,
    /// Every random choice (jitter) comes from here: seeded, so a run can be replayed.
    rng: fastrand::Rng,
    /// Whether the slots changed since the last snapshot went to the state writer.
    dirty: bool,
    /// Whether the quota cache is to be handed to its writer at the next flush.
    cache_due: bool,
    store_kind: StoreKind,
    /// Set while the credential store is unreachable.
    store_error: Option<String>,
    /// Set while the state file cannot be saved.
    state_error: Option<String>,
    /// Transitions already announced (pure; see [`crate::daemon::alerts`]).
    alerts: Alerts,
    /// Where alert events go to be delivered, without waiting.
    alert_queue: AlertQueue,
    /// Logs every slot state change.
    state_log: StateLog,
    state_tx: watch::Sender<NumberedState>,
    /// The number of the last state snapshot published.
    state_number: u64,
    /// Replies held until the state snapshot they depend on (by number) is on disk.
    awaiting_durable: Vec<(u64, Reply, Result<Response, ErrorReply>)>,
    /// Revocations held until the state snapshot they follow (by number) is on disk.
    revoking_when_durable: Vec<(u64, orders::JobOrder)>,
    cache_tx: watch::Sender<QuotaCache>,
    cache_path: PathBuf,
    /// When the quota cache was last published (its `updated_at`).
    cache_published_at: DateTime<Utc>,
    /// The `updated_at` of the last cache actually written, and the last write error.
    cache_written_at: Option<DateTime<Utc>>,
    cache_error: Option<String>,
    /// Interactive logins waiting for their code or their device approval.
    flows: PendingFlows,
    /// Jobs still running for logins a newer login replaced, by slot and generation: their
    /// results are dropped and the tokens they carry revoked (`crate::daemon::core::retire`).
    replaced_jobs: BTreeMap<(String, u64), ReplacedJob>,
    /// Credential items found at start that match no slot (`crate::daemon::start::reconcile`).
    unplaced: Vec<UnplacedCredential>,
    /// Whether there is a keychain at all (`crate::daemon::start::store_probe`).
    store_probe: StoreProbe,
    /// Which pending logins a logout cancelled (`crate::daemon::core::login::cancel`).
    login_tickets: LoginTickets,
    /// Logins in progress that go into a Claude Code store (`login::claude_code`).
    claude_code_logins: login::claude_code::ClaudeCodeLogins,
    /// Inactive Claude Code slots watched for a new login (`claude_code_reload`).
    claude_code_reload: claude_code_reload::Watch,
    /// Revocations still owed, retried until done (`crate::daemon::core::revocations`).
    revocations: RevocationQueue,
    /// The last reading of the wall and boot clocks, to see the wall clock stepped back.
    clock: ClockWatch,
    /// The highest state snapshot number known to be on disk.
    saved_state: u64,
    /// A `use` under way (`crate::daemon::core::moving`).
    moving: Option<moving::Move>,
    /// Claude Code account fields of logins `use` moved out (`StateFile::claude_code_fields`).
    claude_code_fields: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

/// What the manager needs from its surroundings.
pub struct ManagerParts {
    pub config: Arc<Config>,
    pub state: StateFile,
    pub jobs: JobOrders,
    pub store_kind: StoreKind,
    /// The clocks at start.
    pub clocks: Clocks,
    /// Seeds every random choice the manager makes.
    pub seed: u64,
    pub state_tx: watch::Sender<NumberedState>,
    pub cache_tx: watch::Sender<QuotaCache>,
    pub cache_path: PathBuf,
    /// The cache a previous daemon left: seeds each slot's last known quota.
    pub previous_cache: Option<QuotaCache>,
    pub alert_queue: AlertQueue,
    /// Credential items found at start that match no slot (`crate::daemon::start::reconcile`).
    pub unplaced: Vec<UnplacedCredential>,
    pub store_probe: StoreProbe,
    /// Tokens the journal holds that the store could not take at start, by slot
    /// (`crate::daemon::start::journal`): those slots start from them.
    pub held: BTreeMap<String, crate::journal::Entry>,
    /// Fingerprints the refresh tokens seen die (`claude_code_reload`); `None` without one.
    pub fingerprint_key: Option<Arc<crate::fingerprint::FingerprintKey>>,
}

impl Manager {
    /// A manager over the slots of `state`; their credentials load when it runs.
    pub fn new(parts: ManagerParts) -> Self {
        let now = parts.clocks.wall;
        let mut previous = parts.previous_cache.map(|c| c.slots).unwrap_or_default();
        let revocations = RevocationQueue::resume(parts.state.pending_revocations, now);
        let mut slots: BTreeMap<String, Slot> = parts
            .state
            .slots
            .into_iter()
            .map(|(name, record)| {
                let mut slot = Slot::from_record(name.clone(), record, now);
                if let Some(old) = previous.remove(&name) {
                    slot.quota.fetched_at = old.fetched_at;
                    slot.quota.last_attempt_at = old.fetched_at;
                    slot.quota.windows = old.windows;
                    slot.quota.extra_usage = old.extra_usage;
                    slot.quota.error = old.error;
                }
                (name, slot)
            })
            .collect();
        let mut rng = fastrand::Rng::with_seed(parts.seed);
        let mut next_generation = parts.state.next_generation;
        for (name, entry) in parts.held {
            if let Some(slot) = slots.get_mut(&name) {
                next_generation = next_generation.max(entry.generation.saturating_add(1));
                slot.hold_journaled(entry, now);
                let refresh_before_expiry = parts.config.refresh_before_expiry;
                results::schedule_next(slot, refresh_before_expiry, rng.f64());
            }
        }
        let state_log = StateLog::start(&slots);
        let moving = (parts.state.moving).map(|plan| moving::Move::resumed(plan, now));
        let records = Arc::new(
            (slots.iter())
                .map(|(name, slot)| (name.clone(), Arc::new(slot.record.clone())))
                .collect(),
        );
        Manager {
            config: parts.config,
            slots: SlotTable::new(slots),
            due: DueIndex::default(),
            unobserved: BTreeSet::new(),
            records,
            next_generation,
            jobs: parts.jobs,
            now,
            rng,
            dirty: false,
            cache_due: false,
            store_kind: parts.store_kind,
            store_error: None,
            state_error: None,
            alerts: Alerts::default(),
            alert_queue: parts.alert_queue,
            state_log,
            state_tx: parts.state_tx,
            state_number: 0,
            awaiting_durable: Vec::new(),
            revoking_when_durable: Vec::new(),
            cache_tx: parts.cache_tx,
            cache_path: parts.cache_path,
            cache_published_at: DateTime::<Utc>::MIN_UTC,
            cache_written_at: None,
            cache_error: None,
            flows: PendingFlows::default(),
            replaced_jobs: BTreeMap::new(),
            unplaced: parts.unplaced,
            store_probe: parts.store_probe,
            login_tickets: LoginTickets::default(),
            claude_code_logins: login::claude_code::ClaudeCodeLogins::default(),
            claude_code_reload: claude_code_reload::Watch::new(
                parts.state.dead_logins,
                parts.fingerprint_key,
            ),
            revocations,
            clock: ClockWatch::start(parts.clocks),
            saved_state: 0,
            moving,
            claude_code_fields: parts.state.claude_code_fields,
        }
    }

    /// Takes the clocks of the event about to be handled: after a step back of the wall
    /// clock, every deadline moves back with it (`crate::daemon::core::clock`), before anything is judged.
    pub(in crate::daemon) fn at(&mut self, clocks: Clocks) {
        self.now = clocks.wall;
        self.watch_clock(clocks);
    }

    /// The timer fired (or any event was handled): starts whatever work is due.
    pub fn tick(&mut self, clocks: Clocks) {
        self.at(clocks);
        self.start_due_work(self.now);
        self.probe_inactive_claude_code();
    }

    /// The I/O queued since the last call, for the runner (or a simulator) to start.
    pub fn take_orders(&mut self) -> Vec<orders::JobOrder> {
        self.jobs.take()
    }

    /// Slots already inactive at start are announced: the user may not know.
    pub fn announce_start(&mut self) {
        self.observe_alerts();
    }

    /// Handles one client command.
    pub fn handle(&mut self, command: Command, clocks: Clocks) -> Flow {
        self.at(clocks);
        self.handle_now(command)
    }

    /// The quota cache goes to its writer at the end of this event.
    pub(in crate::daemon) fn publish_cache(&mut self) {
        self.cache_due = true;
    }

    /// The slots changed: the state file is rewritten (once, at the end of this event) and
    /// a reply that depends on the change waits for it ([`Manager::reply_when_durable`]).
    pub(in crate::daemon) fn persist(&mut self) {
        if !self.dirty {
            self.dirty = true;
            self.state_number += 1;
        }
    }

    /// Ends an event: hands what changed to the writers (the state snapshot with its
    /// number, then the quota cache), logs slot state changes and raises their alerts. The
    /// runner calls it after every event, so every change is saved and logged.
    pub fn flush(&mut self) {
        if std::mem::take(&mut self.dirty) {
            self.observe_alerts();
            let snapshot = self.snapshot();
            self.state_tx.send_replace((self.state_number, snapshot));
            self.cache_due = true;
        }
        // The cache snapshot is every slot's quota: built at most once per
        // `CACHE_INTERVAL` (the timer comes back for a change held meanwhile), at once
        // when stopping, so an event costs what it changed, not the number of slots.
        let stopping = self.jobs.drain.is_closed();
        if self.cache_due && (stopping || self.now >= self.cache_next_at()) {
            self.cache_due = false;
            self.cache_tx.send_replace(self.cache_snapshot(self.now));
            self.cache_published_at = self.now;
        }
    }

    /// When a held change of the quota cache may be published.
    fn cache_next_at(&self) -> DateTime<Utc> {
        self.cache_published_at + schedule::delta(usage::CACHE_INTERVAL)
    }

    /// When the timer must come back for a held change of the quota cache, if one is held.
    pub(super) fn cache_deadline(&self) -> Option<DateTime<Utc>> {
        self.cache_due.then(|| self.cache_next_at())
    }

    /// The state file as of now, sharing its records with `records` (brought up to date
    /// by [`Manager::observe_alerts`] just before): pointer copies, no record copied.
    fn snapshot(&self) -> StateSnapshot {
        StateSnapshot {
            next_generation: self.next_generation,
            slots: Arc::clone(&self.records),
            pending_revocations: self.revocations.entries.clone(),
            moving: self.moving.as_ref().map(|m| m.plan.clone()),
            claude_code_fields: self.claude_code_fields.clone(),
            dead_logins: self.claude_code_reload.dead_logins().clone(),
        }
    }

    /// Sends `result` once the state published so far is on disk (or could not be saved).
    pub(in crate::daemon) fn reply_when_durable(
        &mut self,
        reply: Reply,
        result: Result<Response, ErrorReply>,
    ) {
        self.awaiting_durable
            .push((self.state_number, reply, result));
    }

    /// The state file holds snapshot `number` (or, with `None`, cannot be saved): release
    /// the replies that were waiting for it.
    pub(in crate::daemon) fn state_durable(&mut self, number: Option<u64>) {
        let (ready, waiting) = std::mem::take(&mut self.awaiting_durable)
            .into_iter()
            .partition(|(needed, _, _)| number.is_none_or(|n| *needed <= n));
        self.awaiting_durable = waiting;
        for (_, reply, result) in ready {
            let _ = reply.send(result);
        }
        // Revocations wait for a saved state, not for a failed save: until the state that no
        // longer needs their tokens is on disk, a restart may still use them.
        if let Some(saved) = number {
            self.saved_state = self.saved_state.max(saved);
            let (ready, waiting) = std::mem::take(&mut self.revoking_when_durable)
                .into_iter()
                .partition(|(needed, _)| *needed <= saved);
            self.revoking_when_durable = waiting;
            for (_, order) in ready {
                self.jobs.push(order);
            }
        }
    }

    /// Starts `order` (a revocation) once the state published so far is on disk.
    pub(in crate::daemon) fn revoke_when_durable(&mut self, order: orders::JobOrder) {
        self.revoking_when_durable.push((self.state_number, order));
    }

    /// Revocations still waiting for the state file (a stop waits for them).
    pub(in crate::daemon) fn revocations_waiting(&self) -> usize {
        self.revoking_when_durable.len()
    }

    /// Hands out a new login generation (never reused).
    pub(in crate::daemon) fn allocate_generation(&mut self) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.persist();
        generation
    }
}

/// Whether the manager loop goes on.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::daemon) enum Flow {
    Continue,
    Stop,
}
