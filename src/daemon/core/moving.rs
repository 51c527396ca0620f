//! `sessctl use`: moving one slot's login into a Claude Code store and the login there out
//! into sessctl's store, so that no refresh-token lineage is ever held by two owners and
//! none is lost across a crash. The request is checked in `handlers/use_.rs`; this file
//! keeps the move's bookkeeping, starts its job (`crate::daemon::jobs::claude_code_move`)
//! and applies its report.
//!
//! The order that makes it crash-safe:
//! 1. the move ([`PendingMove`]: slots, dir, the generations each login gets) is recorded
//!    in the state file, and the job starts only once that state is on disk and neither
//!    slot has a job running; from then until the move ends neither slot starts a job
//!    (no refresh, load, write or logout: one request per grant in flight);
//! 2. the job takes Claude Code's refresh locks and storage-write lock, re-reads the store
//!    (the newest tokens, whoever rotated them), journals and writes the outgoing login into
//!    sessctl's store, writes the incoming login into Claude Code's store (with that
//!    account's own fields), and deletes the incoming login's item from sessctl's store;
//! 3. the report makes the incoming slot Claude Code-backed and the outgoing one an
//!    ordinary slot, and the state file forgets the move.
//!
//! A restart with a move recorded runs the job again (`resumed`): it finds from the stores
//! how far the last run got (the Claude Code store holds the incoming login's refresh token:
//! its write happened) and finishes from there. A move that has not written Claude Code's
//! store yet and fails (a live lock, a store that holds a login sessctl does not know) is
//! called off with nothing changed.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::account::AccountKey;
use crate::config::Provider;
use crate::protocol::{ErrorCode, ErrorReply, Response, UseReply};
use crate::slot_reason::SlotReason;
use crate::state::{ItemVersion, PendingMove, SlotState};
use crate::store::{ItemLabel, StoredCredentials, Tokens};

use super::results::{retry_time, schedule_next};
use super::slot::{Creds, Job, Stored};
use super::{Manager, Reply};
use crate::daemon::start::reconcile;

/// The move job's order.
pub struct MoveOrder {
    pub plan: PendingMove,
    /// A restart's run of a move recorded by an earlier daemon: the stores say how far it got.
    pub resumed: bool,
    /// The incoming account's own fields of Claude Code's `claudeAiOauth` (none known: empty).
    pub fields: Map<String, Value>,
    /// The label the outgoing login's item in sessctl's store carries.
    pub outgoing_label: Option<ItemLabel>,
    /// Who is who, for a resumed move whose store was rotated since (the provider's
    /// userinfo then names the account in the store).
    pub identify: Identify,
    /// The version of the incoming slot's item the daemon holds as its newest (none after a
    /// restart: the store's, after the journal's replay, is the newest then).
    pub incoming_version: Option<u64>,
}

/// The provider and the two slots' accounts, to tell whose login a store holds.
#[derive(Default)]
pub struct Identify {
    pub provider: Option<Provider>,
    pub incoming: Option<AccountKey>,
    pub outgoing: Option<AccountKey>,
}

/// What the move job reports.
pub struct MoveReport {
    pub plan: PendingMove,
    pub outcome: MoveOutcome,
}

/// How a move job ended.
#[allow(
    clippy::large_enum_variant,
    reason = "one per move, and its report travels boxed"
)]
pub enum MoveOutcome {
    /// Done: Claude Code's store holds the incoming login (`None`: it was blanked since),
    /// sessctl's store the outgoing one (`None`: there was none), with the outgoing
    /// account's fields (`None`: unknown, its store was already rewritten).
    Done {
        incoming: Option<Tokens>,
        outgoing: Option<StoredCredentials>,
        outgoing_fields: Option<Map<String, Value>>,
    },
    /// Nothing that matters changed: the move is called off with this answer.
    Refused(ErrorReply),
    /// Not finished; the move stays recorded and is tried again.
    Retry(String),
}

/// A move under way in the manager.
pub(super) struct Move {
    pub plan: PendingMove,
    /// The `use` caller, answered when the move ends (none after a restart).
    pub reply: Option<Reply>,
    /// The state snapshot that records the move: the job waits until it is on disk.
    pub after_state: u64,
    pub started: bool,
    pub resumed: bool,
    pub attempt: u32,
    pub retry_at: DateTime<Utc>,
}

impl Move {
    /// A move an earlier daemon recorded: resumed at once.
    pub(super) fn resumed(plan: PendingMove, now: DateTime<Utc>) -> Self {
        tracing::warn!(
            slot = plan.slot,
            dir = %plan.dir.display(),
            "a `use` was interrupted; finishing it before either slot does anything else"
        );
        Move {
            plan,
            reply: None,
            after_state: 0,
            started: false,
            resumed: true,
            attempt: 0,
            retry_at: now,
        }
    }
}

impl Manager {
    /// The move under way, as `status` shows it.
    pub(in crate::daemon) fn use_in_progress(&self) -> Option<crate::protocol::UseInProgress> {
        let m = self.moving.as_ref()?;
        Some(crate::protocol::UseInProgress {
            slot: m.plan.slot.clone(),
            dir: m.plan.dir.clone(),
            outgoing: m.plan.outgoing.clone(),
            resumed: m.resumed,
            attempts: m.attempt,
            next_attempt_at: (m.attempt > 0 && !m.started).then_some(m.retry_at),
        })
    }

    /// Whether slot `name` is part of a move: it starts no job of its own until it ends.
    pub(super) fn in_move(&self, name: &str) -> bool {
        self.moving
            .as_ref()
            .is_some_and(|m| m.plan.slot == name || m.plan.outgoing.as_deref() == Some(name))
    }

    /// Whether slot `name` waits for a move before any job of its own. One exception: the
    /// incoming slot starting from journaled tokens its store item lacks (`Slot::restoring`)
    /// puts them in sessctl's store first (a write, never a token request), so the move,
    /// not yet started, reads its newest tokens there.
    pub(super) fn held_by_move(&self, name: &str) -> bool {
        let restoring = (self.moving.as_ref()).is_some_and(|m| !m.started && m.plan.slot == name)
            && (self.slots.get(name))
                .is_some_and(|s| s.restoring.is_some() && s.record.claude_code.is_none());
        self.in_move(name) && !restoring
    }

    /// The Claude Code dir a move is taking slot `name` into or out of.
    pub(super) fn move_dir_of(&self, name: &str) -> Option<std::path::PathBuf> {
        let plan = &self.moving.as_ref()?.plan;
        self.in_move(name).then(|| plan.dir.clone())
    }

    /// Callers of a slot whose move waits for a retry hear why now (a move under way
    /// answers them when it ends).
    pub(super) fn answer_waiters_while_moving(&mut self, name: &str) {
        let Some(m) = (self.moving.as_ref()).filter(|m| !m.started && m.attempt > 0) else {
            return;
        };
        let error = ErrorReply::new(
            ErrorCode::StoreUnavailable,
            format!(
                "slot {name} is being moved between sessctl's store and Claude Code's in {}, and the move waits for a retry (the daemon's log says why); try again later",
                m.plan.dir.display()
            ),
        );
        let now = self.now;
        if let Some(slot) = self.slots.get_mut(name) {
            slot.resolve_waiters(Err(error), now);
        }
    }

    /// When a move waiting for its retry time is next tried. A move whose time has come
    /// waits for an event instead (its record saved, a slot's job ending), which ticks the
    /// manager anyway: no deadline in the past, so the runner never spins on it.
    pub(super) fn move_deadline(&self) -> Option<DateTime<Utc>> {
        let m = self.moving.as_ref().filter(|m| !m.started)?;
        (m.after_state <= self.saved_state && m.retry_at > self.now).then_some(m.retry_at)
    }

    /// Starts the move's job once its record is on disk, its time has come and neither
    /// slot has a job running.
    pub(super) fn advance_move(&mut self) {
        let Some(m) = self.moving.as_ref() else {
            return;
        };
        if m.started || m.after_state > self.saved_state || m.retry_at > self.now {
            return;
        }
        let plan = m.plan.clone();
        let names = std::iter::once(&plan.slot).chain(plan.outgoing.as_ref());
        // Busy, or still putting journaled tokens in the store (`held_by_move`).
        if names
            .clone()
            .any(|n| self.slots.get(n).is_some_and(|s| s.job.is_some()))
            || (self.slots.get(&plan.slot)).is_some_and(|s| s.restoring.is_some())
        {
            return;
        }
        let resumed = m.resumed;
        let incoming_version = match self.slots.get(&plan.slot).map(|s| (&s.creds, &s.restoring)) {
            None => {
                self.call_off(&format!("slot {} is gone", plan.slot));
                return;
            }
            Some((
                Creds::Present {
                    stored: Stored::Yes { version, .. },
                    ..
                },
                None,
            )) => Some(*version),
            Some(_) if resumed => None,
            // A refresh it waited for left tokens the store has not taken: not movable now.
            Some(_) => {
                let why = format!(
                    "slot {}'s newest tokens are not in sessctl's store yet (is the keychain reachable?); nothing was moved, try again",
                    plan.slot
                );
                self.call_off(&why);
                return;
            }
        };
        let outgoing = (plan.outgoing.as_ref()).and_then(|n| self.slots.get(n));
        let outgoing_label = outgoing.map(|s| reconcile::label_of(&s.record));
        let incoming = self.slots.get(&plan.slot);
        let identify = Identify {
            provider: (incoming.and_then(|s| self.config.providers.get(&s.record.provider)))
                .cloned(),
            incoming: incoming.and_then(|s| s.record.account_key.clone()),
            outgoing: outgoing.and_then(|s| s.record.account_key.clone()),
        };
        for name in names {
            if let Some(slot) = self.slots.get_mut(name) {
                slot.job = Some(Job::Moving);
            }
        }
        let fields = (self.claude_code_fields.get(&plan.slot).cloned()).unwrap_or_default();
        if let Some(m) = self.moving.as_mut() {
            m.started = true;
        }
        self.jobs
            .push(super::orders::JobOrder::Move(Box::new(MoveOrder {
                plan,
                resumed,
                fields,
                outgoing_label,
                identify,
                incoming_version,
            })));
    }

    /// Ends a move that cannot go on before its job ran, answering its caller.
    fn call_off(&mut self, why: &str) {
        if let Some(m) = self.moving.take() {
            tracing::warn!(slot = m.plan.slot, "`use` called off: {why}");
            if let Some(reply) = m.reply {
                let _ = reply.send(Err(ErrorReply::new(ErrorCode::Conflict, why)));
            }
            self.persist();
        }
    }

    /// The move job reported.
    pub(super) fn on_moved(&mut self, report: MoveReport) {
        let MoveReport { plan, outcome } = report;
        if self.moving.as_ref().is_none_or(|m| m.plan != plan) {
            tracing::warn!(
                slot = plan.slot,
                "dropping the report of a move no longer under way"
            );
            return;
        }
        for name in std::iter::once(&plan.slot).chain(plan.outgoing.as_ref()) {
            if let Some(slot) = self.slots.get_mut(name) {
                slot.job = None;
            }
        }
        match outcome {
            MoveOutcome::Done {
                incoming,
                outgoing,
                outgoing_fields,
            } => self.finish_move(&plan, incoming, outgoing, outgoing_fields),
            MoveOutcome::Refused(error) => {
                tracing::warn!(slot = plan.slot, "`use` refused, nothing changed: {error}");
                if let Some(reply) = self.moving.take().and_then(|m| m.reply) {
                    let _ = reply.send(Err(error));
                }
                self.persist();
            }
            MoveOutcome::Retry(error) => self.retry_move(&error),
        }
        self.start_next_job(&plan.slot, false);
        if let Some(outgoing) = &plan.outgoing {
            self.start_next_job(outgoing, false);
        }
    }

    fn retry_move(&mut self, error: &str) {
        let (now, unit) = (self.now, self.rng.f64());
        let Some(m) = self.moving.as_mut() else {
            return;
        };
        m.started = false;
        m.resumed = true;
        m.attempt += 1;
        m.retry_at = retry_time(now, m.attempt, unit);
        tracing::error!(
            slot = m.plan.slot,
            attempt = m.attempt,
            "`use` not finished yet, tried again later: {error}"
        );
        if let Some(reply) = m.reply.take() {
            let _ = reply.send(Err(ErrorReply::new(
                ErrorCode::StoreUnavailable,
                format!(
                    "the move of slot {} into {} is recorded but not finished ({error}); the daemon finishes it, `sessctl status` shows when",
                    m.plan.slot,
                    m.plan.dir.display()
                ),
            )));
        }
    }

    /// Applies a finished move to both slots and answers its caller once it is on disk.
    fn finish_move(
        &mut self,
        plan: &PendingMove,
        incoming: Option<Tokens>,
        outgoing: Option<StoredCredentials>,
        outgoing_fields: Option<Map<String, Value>>,
    ) {
        let configured = self.config.refresh_before_expiry;
        let units = [self.rng.f64(), self.rng.f64()];
        if let Some(slot) = self.slots.get_mut(&plan.slot) {
            slot.record.claude_code = Some(plan.dir.clone());
            slot.record.generation = plan.generation;
            slot.record.newest_written = Some(ItemVersion {
                generation: plan.generation,
                version: 1,
            });
            (slot.restoring, slot.journaled) = (None, None);
            slot.creds = if let Some(tokens) = incoming {
                Creds::Present {
                    tokens,
                    stored: Stored::Yes {
                        generation: plan.generation,
                        version: 1,
                    },
                }
            } else {
                slot.deactivate(
                    SlotReason::CredentialsMissing,
                    "Claude Code's store no longer holds this login; log in with Claude Code again"
                        .into(),
                );
                Creds::Missing
            };
            schedule_next(slot, configured, units[0]);
        }
        if let Some(slot) = plan.outgoing.as_ref().and_then(|n| self.slots.get_mut(n)) {
            slot.record.claude_code = None;
            slot.record.generation = plan.outgoing_generation;
            (slot.restoring, slot.journaled) = (None, None);
            if let Some(item) = outgoing {
                slot.record.note_item(reconcile::version_of(&item));
                slot.creds = Creds::Present {
                    stored: Stored::from_item(&item),
                    tokens: item.tokens,
                };
                if slot.record.state == SlotState::Degraded {
                    slot.transition(SlotState::Active, None, None);
                }
            } else {
                slot.creds = Creds::Missing;
                if slot.record.state != SlotState::Inactive {
                    slot.deactivate(
                        SlotReason::CredentialsMissing,
                        format!(
                            "Claude Code's store held no login of this slot when {} moved in; log in again",
                            plan.slot
                        ),
                    );
                }
            }
            schedule_next(slot, configured, units[1]);
        }
        self.claude_code_fields.remove(&plan.slot);
        if let (Some(name), Some(fields)) = (&plan.outgoing, outgoing_fields) {
            self.claude_code_fields.insert(name.clone(), fields);
        }
        tracing::info!(
            slot = plan.slot,
            previous = ?plan.outgoing,
            dir = %plan.dir.display(),
            "`use` done: the slot's login is in Claude Code's store"
        );
        let reply = self.moving.take().and_then(|m| m.reply);
        self.persist();
        if let Some(reply) = reply {
            let answer = UseReply {
                name: plan.slot.clone(),
                claude_code_dir: plan.dir.clone(),
                previous: plan.outgoing.clone(),
                already: false,
            };
            self.reply_when_durable(reply, Ok(Response::Use(answer)));
        }
    }
}
