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
pub mod clock;
mod conflict;
pub mod drain;
mod handlers;
pub mod login;
pub mod orders;
mod pacing;
pub mod reports;
mod results;
mod retire;
mod revocations;
pub mod schedule;
pub mod slot;
pub mod stop;
mod transitions;
pub mod usage;
pub mod waiters;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};

use crate::cache::QuotaCache;
use crate::config::Config;
use crate::protocol::{ErrorCode, ErrorReply, Request, Response, UnplacedCredential};
use crate::state::{SlotState, StateFile};
use crate::store::StoreKind;

use self::alerts::Alerts;
use self::schedule::Clocks;
use crate::daemon::alerts::AlertQueue;
use crate::daemon::core::clock::ClockWatch;
use crate::daemon::core::login::cancel::LoginTickets;
use crate::daemon::core::login::flows::PendingFlows;
use crate::daemon::core::orders::JobOrders;
use crate::daemon::core::orders::Urgency;
use crate::daemon::core::retire::ReplacedJob;
use crate::daemon::core::revocations::RevocationQueue;
use crate::daemon::core::slot::{Creds, Job, Slot, Stored};
use crate::daemon::core::transitions::StateLog;
use crate::daemon::start::store_probe::StoreProbe;

/// A state snapshot and its number: the writer reports which number is on disk, so the
/// manager can hold a reply until the state it depends on is durable.
pub type NumberedState = (u64, StateFile);

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
    slots: BTreeMap<String, Slot>,
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
    /// Revocations still owed, retried until done (`crate::daemon::core::revocations`).
    revocations: RevocationQueue,
    /// The last reading of the wall and boot clocks, to see the wall clock stepped back.
    clock: ClockWatch,
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
}

impl Manager {
    /// A manager over the slots of `state`; their credentials load when it runs.
    pub fn new(parts: ManagerParts) -> Self {
        let now = parts.clocks.wall;
        let mut previous = parts.previous_cache.map(|c| c.slots).unwrap_or_default();
        let revocations = RevocationQueue::resume(parts.state.pending_revocations, now);
        let slots = parts
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
        let state_log = StateLog::start(&slots);
        Manager {
            config: parts.config,
            slots,
            next_generation: parts.state.next_generation,
            jobs: parts.jobs,
            now,
            rng: fastrand::Rng::with_seed(parts.seed),
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
            revocations,
            clock: ClockWatch::start(parts.clocks),
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

    /// Starts whatever is due for idle slots: credential loads, store write retries,
    /// scheduled refreshes. Compares against the wall clock, so time spent suspended counts.
    fn start_due_work(&mut self, now: DateTime<Utc>) {
        let mut due: Vec<&Slot> = self
            .slots
            .values()
            .filter(|slot| slot.job.is_none())
            .filter(|slot| deadline(slot).is_some_and(|at| at <= now))
            .collect();
        // Most urgent first, so the first token requests go to the soonest expiries.
        due.sort_by_key(|slot| expiry_guess(slot));
        let due: Vec<String> = due.into_iter().map(|slot| slot.name.clone()).collect();
        for name in due {
            self.start_next_job(&name, true);
        }
        let usage_due: Vec<String> = self
            .slots
            .values()
            .filter(|slot| self.usage_deadline(slot).is_some_and(|at| at <= now))
            .map(|slot| slot.name.clone())
            .collect();
        for name in usage_due {
            self.start_usage_fetch(&name, now);
        }
        self.start_due_revocations(now);
        if now >= self.cache_heartbeat_at() {
            self.publish_cache();
        }
        if let Some(reminder) = self.alerts.due_reminder(&self.slots, &self.config, now) {
            self.alert_queue.push(reminder);
        }
    }

    /// The earliest moment some slot has work of its own to start.
    pub fn earliest_deadline(&self) -> Option<DateTime<Utc>> {
        let refresh = self
            .slots
            .values()
            .filter(|slot| slot.job.is_none())
            .filter_map(deadline);
        let usage = self
            .slots
            .values()
            .filter_map(|slot| self.usage_deadline(slot));
        refresh
            .chain(usage)
            .chain(std::iter::once(self.cache_heartbeat_at()))
            .chain(self.alerts.reminder_at())
            .chain(self.revocations.deadline())
            .min()
    }

    /// The cache is rewritten at least this often even when nothing changed, so its
    /// `updated_at` tells readers the daemon is alive (the cache-level staleness check).
    fn cache_heartbeat_at(&self) -> DateTime<Utc> {
        self.cache_published_at + schedule::delta(self.config.stale_after / 3)
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
            let snapshot = self.snapshot();
            self.state_tx.send_replace((self.state_number, snapshot));
            self.state_log.observe(&self.slots);
            self.observe_alerts();
            self.cache_due = true;
        }
        if std::mem::take(&mut self.cache_due) {
            self.cache_tx.send_replace(self.cache_snapshot(self.now));
            self.cache_published_at = self.now;
        }
    }

    /// The state file as of now.
    fn snapshot(&self) -> StateFile {
        StateFile {
            format: 1,
            revision: 0,
            next_generation: self.next_generation,
            slots: self
                .slots
                .iter()
                .map(|(name, slot)| (name.clone(), slot.record.clone()))
                .collect(),
            pending_revocations: self.revocations.entries.clone(),
        }
    }

    /// Turns slot state transitions into alert events and queues them for delivery.
    fn observe_alerts(&mut self) {
        for event in self.alerts.observe(&self.slots, &self.config, self.now) {
            self.alert_queue.push(event);
        }
    }

    /// Starts the job a slot needs next, if it is idle: load, write, logout or refresh.
    /// `scheduled` says whether the timer asked (then a refresh starts when its time has
    /// come) or a caller did (then one starts when a waiter wants it).
    pub(in crate::daemon) fn start_next_job(&mut self, name: &str, scheduled: bool) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        if slot.job.is_some() {
            return;
        }
        let now = self.now;
        if self.jobs.drain.is_closed() {
            slot.refuse_work_while_stopping(now);
            return;
        }
        if !slot.logouts.is_empty() {
            self.start_logout(name);
            return;
        }
        match &slot.creds {
            // A failed load is retried when its backoff ends or a caller asks, never at
            // once: a locked keychain must not be read in a loop.
            Creds::NotLoaded { retry_at, .. }
                if scheduled || *retry_at <= now || !slot.waiters.is_empty() =>
            {
                slot.job = Some(Job::Loading);
                let claude_code = slot.record.claude_code.clone();
                self.jobs
                    .load(slot.name.clone(), slot.record.generation, claude_code);
            }
            Creds::NotLoaded { .. } => {}
            Creds::Missing => {
                let refusal = slot.refusal(&self.config).unwrap_or_else(|| {
                    ErrorReply::new(
                        ErrorCode::SlotInactive,
                        format!("slot {name} has no stored credentials; log in again"),
                    )
                });
                slot.resolve_waiters(Err(refusal), now);
            }
            Creds::Present {
                stored: Stored::No { retry_at, .. },
                ..
            } if scheduled && *retry_at <= now => {
                start_store_write(&mut self.jobs, slot);
            }
            Creds::Present { tokens, .. } => {
                if let Some(refusal) = slot.refusal(&self.config) {
                    slot.resolve_waiters(Err(refusal), now);
                    return;
                }
                let before = slot.refresh_before(self.config.refresh_before_expiry);
                let due = schedule::is_due(tokens, before, now);
                // An explicit `refresh` goes at once; anything else waits out the pacing.
                let explicit = slot.waiters.iter().any(|w| !w.token_only);
                let asked = slot.refresh_wanted || (due && !slot.waiters.is_empty());
                let paced = pacing::may_request(slot.last_reply_at, now);
                let timed = scheduled && slot.next_refresh_at.is_some_and(|at| at <= now);
                if explicit || timed || (asked && paced) {
                    self.start_refresh(name);
                } else if asked && let Some(replied) = slot.last_reply_at {
                    // Callers wait (the timer starts the refresh when the interval is over).
                    let earliest = pacing::earliest_after(replied);
                    slot.next_refresh_at =
                        Some(slot.next_refresh_at.map_or(earliest, |at| at.min(earliest)));
                } else {
                    slot.resolve_waiters(Ok(()), now);
                }
            }
        }
    }

    /// Starts the one refresh job of a slot whose credentials are present.
    fn start_refresh(&mut self, name: &str) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let (Some(tokens), Some(condition)) = (slot.creds.tokens(), slot.creds.write_condition())
        else {
            return;
        };
        let Some(provider) = self.config.providers.get(&slot.record.provider) else {
            let error = format!(
                "provider {} is not in the configuration",
                slot.record.provider
            );
            slot.record.state = SlotState::Degraded;
            slot.record.reason = Some(crate::slot_reason::SlotReason::UnknownProvider);
            slot.record.last_refresh_error = Some(error.clone());
            slot.next_refresh_at = None;
            let now = self.now;
            slot.resolve_waiters(Err(ErrorReply::new(ErrorCode::UnknownProvider, error)), now);
            self.persist();
            return;
        };
        tracing::debug!(slot = name, "refreshing");
        slot.job = Some(Job::Refreshing);
        slot.refresh_wanted = false;
        // Someone waiting goes before the timer's refreshes; those go soonest expiry first.
        let urgency = if slot.waiters.is_empty() {
            Urgency::Scheduled(tokens.expires_at)
        } else {
            Urgency::Asked
        };
        self.jobs.refresh(
            (name.to_owned(), slot.record.generation),
            provider.clone(),
            tokens.clone(),
            condition,
            (urgency, slot.record.claude_code.clone()),
        );
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
    }

    /// Hands out a new login generation (never reused).
    pub(in crate::daemon) fn allocate_generation(&mut self) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.persist();
        generation
    }
}

/// When an idle slot next has work of its own (not counting callers).
fn deadline(slot: &Slot) -> Option<DateTime<Utc>> {
    match &slot.creds {
        Creds::NotLoaded { retry_at, .. } => Some(*retry_at),
        Creds::Missing => None,
        Creds::Present { .. } if slot.record.state == SlotState::Inactive => None,
        // Unsaved tokens: the write retry, but the refresh schedule still runs (the held
        // tokens must not expire while the keychain is away).
        Creds::Present {
            stored: Stored::No { retry_at, .. },
            ..
        } => Some(
            slot.next_refresh_at
                .map_or(*retry_at, |at| at.min(*retry_at)),
        ),
        Creds::Present { .. } => slot.next_refresh_at,
    }
}

/// Starts writing the slot's held tokens to the store (the write its `Stored::No` is
/// waiting for), under the write condition they need. Does nothing without tokens.
pub(in crate::daemon) fn start_store_write(jobs: &mut JobOrders, slot: &mut Slot) {
    let (Some(tokens), Some(condition)) = (slot.creds.tokens(), slot.creds.write_condition())
    else {
        return;
    };
    slot.job = Some(Job::Writing);
    jobs.write(
        slot.name.clone(),
        slot.record.generation,
        tokens.clone(),
        (condition, slot.record.claude_code.clone()),
    );
}

/// When a slot's access token expires, or, before its credentials are loaded (a restart),
/// when it was last refreshed or logged in: with tokens of one lifetime, the same order.
fn expiry_guess(slot: &Slot) -> Option<DateTime<Utc>> {
    match slot.creds.tokens() {
        Some(tokens) => tokens.expires_at,
        None => Some(
            slot.record
                .last_refresh_at
                .unwrap_or(slot.record.created_at),
        ),
    }
}

/// Whether the manager loop goes on.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::daemon) enum Flow {
    Continue,
    Stop,
}
