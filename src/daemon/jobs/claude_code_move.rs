//! The job of a `sessctl use` move (`crate::daemon::core::moving` has the order and why it
//! is crash-safe): under Claude Code's refresh locks of the target dir, for the whole job,
//! 1. re-read Claude Code's store and sessctl's items of both slots, and decide from them
//!    how far an earlier run got ([`decide`]);
//! 2. the outgoing login (the store's newest tokens, whoever rotated them) goes into
//!    sessctl's store, journaled first as a refresh's tokens are;
//! 3. the incoming login goes into Claude Code's store, with that account's own fields and
//!    the document's other top-level fields kept, under the storage-write lock (as Claude
//!    Code writes), after checking the store still holds what step 1 read;
//! 4. the incoming login's item in sessctl's store is deleted.
//!
//! A resumed run that finds the store rotated since (by Claude Code, while sessctl was
//! down) to tokens neither slot's copy has asks the provider's userinfo whose account it
//! is; without an answer it writes nothing and is retried, both slots idle meanwhile.
//!
//! Until step 3, Claude Code's store is the outgoing login's owner and any copy in sessctl's
//! store is never presented (a resumed run overwrites it from the store); from step 3 on,
//! Claude Code's store is the incoming login's owner and its old item is only deleted. A
//! live lock is waited for (at most [`LOCK_WAIT`]), never broken.

use std::time::Instant;

use serde_json::{Map, Value};

use crate::claude_code::{RefreshLockGuard, StoreContents, StoreDocument, StoreWriteLock};
use crate::protocol::{ErrorCode, ErrorReply};
use crate::secret::Secret;
use crate::state::PendingMove;
use crate::store::{ItemLabel, StoredCredentials, WriteCondition};

use crate::account::{AccountKey, Match};
use crate::daemon::core::moving::{Identify, MoveOrder, MoveOutcome, MoveReport};
use crate::daemon::core::reports::JobResult;

use super::JobContext;
use super::claude_code::{
    LOCK_WAIT, blocking, from_store, read, store_of, take_refresh_lock, to_store,
};
use super::move_steps::{Step, decide};

/// What the stores hold when the job starts, read under Claude Code's locks.
struct Seen {
    store: StoreContents,
    /// The incoming slot's item of the generation being moved (none: deleted, or never).
    incoming: Option<StoredCredentials>,
    /// The outgoing slot's item of its new generation: an earlier run's copy.
    outgoing_copy: Option<StoredCredentials>,
}

impl Seen {
    /// The refresh token in Claude Code's store, when it holds a login.
    fn store_refresh_token(&self) -> Option<&Secret> {
        match &self.store {
            StoreContents::Present { tokens, .. } => Some(&tokens.refresh_token),
            _ => None,
        }
    }
}

impl JobContext {
    /// Runs a `use` move and reports how it ended.
    pub fn move_claude_code(&self, order: MoveOrder) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let plan = order.plan.clone();
            let outcome = ctx.run_move(order).await;
            ctx.report(JobResult::Moved(Box::new(MoveReport { plan, outcome })));
        });
    }

    async fn run_move(&self, order: MoveOrder) -> MoveOutcome {
        let resumed = order.resumed;
        // Before anything is written, a first run that cannot go on is called off.
        let not_now = |code: ErrorCode, error: String| {
            if resumed {
                MoveOutcome::Retry(error)
            } else {
                MoveOutcome::Refused(ErrorReply::new(code, error))
            }
        };
        let plan = &order.plan;
        let lock = match take_refresh_lock(&plan.slot, &plan.dir).await {
            Ok(lock) => lock,
            Err(e) => return not_now(ErrorCode::ClaudeCodeStore, busy(plan, &e)),
        };
        let seen = match self.look(plan, order.incoming_version).await {
            Ok(seen) => seen,
            Err(e) => return not_now(ErrorCode::StoreUnavailable, e),
        };
        let step = self.next_step(&order, &seen).await;
        if let Some((code, error)) = cannot_go_on(step, plan) {
            return match step {
                Step::Undecided => MoveOutcome::Retry(error),
                _ => not_now(code, error),
            };
        }
        let outcome = self.carry_out(order, step, seen, &lock).await;
        drop(lock);
        outcome
    }

    /// What is left to do ([`decide`]), asking the provider when the tokens cannot say.
    async fn next_step(&self, order: &MoveOrder, seen: &Seen) -> Step {
        let plan = &order.plan;
        let step = decide(
            seen.store_refresh_token(),
            seen.incoming.as_ref().map(|i| &i.tokens.refresh_token),
            seen.outgoing_copy.as_ref().map(|i| &i.tokens.refresh_token),
            plan.outgoing.is_some(),
            order.resumed,
        );
        tracing::info!(
            slot = plan.slot,
            ?step,
            resumed = order.resumed,
            "`use`: the stores read"
        );
        if step != Step::Undecided {
            return step;
        }
        let Some(known) = self.whose(&order.identify, &seen.store).await else {
            return step;
        };
        tracing::info!(
            slot = plan.slot,
            ?known,
            "`use`: the store was rotated since the interrupted move; the provider says whose login it holds"
        );
        known
    }

    /// Steps 2 to 4 from `step` on, the refresh locks held (`lock`).
    async fn carry_out(
        &self,
        order: MoveOrder,
        step: Step,
        seen: Seen,
        lock: &RefreshLockGuard,
    ) -> MoveOutcome {
        let MoveOrder {
            plan,
            resumed,
            fields,
            outgoing_label,
            ..
        } = order;
        let (outgoing, outgoing_fields) = if step == Step::MoveOut {
            // A write the store answered late may still have made a copy: from here the
            // move is finished, never called off (a copy must not outlive the move).
            match self.move_out(&plan, &seen, outgoing_label).await {
                Ok(moved) => moved,
                Err(e) => return MoveOutcome::Retry(e),
            }
        } else {
            (seen.outgoing_copy.clone(), None)
        };
        let incoming = match (step, &seen.incoming) {
            (Step::Finish, _) => match &seen.store {
                StoreContents::Present { tokens, .. } => {
                    Some(from_store(tokens, chrono::Utc::now()))
                }
                _ => None,
            },
            (_, Some(item)) => {
                let seen_rt = seen.store_refresh_token().cloned();
                if let Err(error) = write_incoming(&plan, &fields, item, lock, seen_rt).await {
                    return if step == Step::MoveOut || resumed {
                        MoveOutcome::Retry(error)
                    } else {
                        MoveOutcome::Refused(ErrorReply::new(ErrorCode::ClaudeCodeStore, error))
                    };
                }
                Some(item.tokens.clone())
            }
            (_, None) => None,
        };
        // From here Claude Code's store owns the incoming login: the rest is retried, never
        // called off.
        let deleted = self.store.delete(&plan.slot, plan.from_generation).await;
        self.settle_deleted(&plan.slot, plan.from_generation, &deleted);
        if let Err(e) = deleted {
            return MoveOutcome::Retry(format!(
                "slot {}'s login is in {}, but its old item in sessctl's store is not deleted yet: {e}",
                plan.slot,
                plan.dir.display()
            ));
        }
        MoveOutcome::Done {
            incoming,
            outgoing,
            outgoing_fields,
        }
    }

    /// Whose login a store rotated since an interrupted move holds, as the provider's
    /// userinfo says for the store's access token: the incoming account's (only its old item
    /// is left to delete) or the outgoing one's (moved out again). `None` when that cannot
    /// be learned (no userinfo, an expired token, another account).
    async fn whose(&self, known: &Identify, store: &StoreContents) -> Option<Step> {
        let StoreContents::Present { tokens, .. } = store else {
            return None;
        };
        let provider = known.provider.as_ref()?;
        let identity = match self.oauth.userinfo(provider, &tokens.access_token).await {
            Ok(identity) => identity?,
            Err(e) => {
                tracing::warn!("`use`: cannot learn whose login the store holds: {e}");
                return None;
            }
        };
        let key = AccountKey::new(&provider.name, &identity)?;
        let is = |theirs: &Option<AccountKey>| {
            theirs
                .as_ref()
                .is_some_and(|k| key.matches(k) != Match::None)
        };
        if is(&known.incoming) {
            Some(Step::Finish)
        } else if is(&known.outgoing) {
            Some(Step::MoveOut)
        } else {
            None
        }
    }

    /// Reads both stores (module header, step 1).
    async fn look(&self, plan: &PendingMove, version: Option<u64>) -> Result<Seen, String> {
        let dir = plan.dir.clone();
        let store = blocking(move || read(&dir))
            .await
            .and_then(|r| r)
            .map_err(|e| e.to_string())?;
        let incoming = (self.store.load(&plan.slot).await).map_err(|e| e.to_string())?;
        let incoming = match incoming {
            Some(item) if item.generation != plan.from_generation => {
                return Err(format!(
                    "slot {} was logged in again meanwhile; nothing was changed",
                    plan.slot
                ));
            }
            // Not the item the daemon holds as the newest: moving it could move a spent token.
            Some(item) if version.is_some_and(|v| v != item.version) => {
                return Err(format!(
                    "slot {}'s item in sessctl's store is not the one the daemon holds; nothing was changed, try again",
                    plan.slot
                ));
            }
            other => other,
        };
        let outgoing_copy = match &plan.outgoing {
            Some(name) => (self.store.load(name).await)
                .map_err(|e| e.to_string())?
                .filter(|item| item.generation == plan.outgoing_generation),
            None => None,
        };
        Ok(Seen {
            store,
            incoming,
            outgoing_copy,
        })
    }

    /// Puts Claude Code's login into sessctl's store as the outgoing slot's new item,
    /// journaled first (step 2): the item, and the account's own fields.
    async fn move_out(
        &self,
        plan: &PendingMove,
        seen: &Seen,
        label: Option<ItemLabel>,
    ) -> Result<(Option<StoredCredentials>, Option<Map<String, Value>>), String> {
        let (Some(name), StoreContents::Present { document, tokens }) =
            (&plan.outgoing, &seen.store)
        else {
            return Ok((None, None));
        };
        let tokens = from_store(tokens, chrono::Utc::now());
        let condition = match &seen.outgoing_copy {
            Some(copy) => WriteCondition::Exact {
                generation: copy.generation,
                version: copy.version,
            },
            None => WriteCondition::NewLogin {
                generation: plan.outgoing_generation,
            },
        };
        if let Some(label) = label {
            self.store.label(name, label);
        }
        self.journal_append(name, condition, &tokens, Instant::now())
            .await;
        let written = self.store.compare_and_set(name, condition, tokens).await;
        self.settle_written(name, &written);
        let item = written.map_err(|e| {
            format!("cannot put slot {name}'s login into sessctl's store: {e}; nothing was changed in Claude Code's store")
        })?;
        Ok((Some(item), Some(document.account_fields())))
    }
}

/// The error of a step that cannot go on (its code, for a first run that is called off).
fn cannot_go_on(step: Step, plan: &PendingMove) -> Option<(ErrorCode, String)> {
    let (store, dir) = (store_of(&plan.dir).describe(), plan.dir.display());
    match step {
        Step::Stranger => Some((
            ErrorCode::ClaudeCodeStore,
            format!(
                "{store} holds a Claude Code login sessctl does not know; nothing was changed. Adopt it first so it is kept (`sessctl adopt SOMENAME --claude-code {dir}`), then run `sessctl use {}` again",
                plan.slot
            ),
        )),
        Step::NoIncoming => Some((
            ErrorCode::SlotInactive,
            format!(
                "slot {} has no item in sessctl's store (logged in again or out meanwhile?); nothing was changed",
                plan.slot
            ),
        )),
        Step::Undecided => Some((
            ErrorCode::ClaudeCodeStore,
            format!(
                "{store} was rotated since the interrupted move, and its tokens are neither slot's copy, nor could the provider say whose account it is: neither slot is used until it is settled (`sessctl logout` the slot whose account is not in {dir}, then log it in again)"
            ),
        )),
        Step::MoveOut | Step::MoveIn | Step::Finish => None,
    }
}

/// Why a Claude Code lock could not be taken, and that nothing changed.
fn busy(plan: &PendingMove, error: &dyn std::fmt::Display) -> String {
    format!(
        "{error}; a running Claude Code is refreshing or writing its credentials in {}. Nothing was changed; try again in a moment",
        plan.dir.display()
    )
}

/// Writes the incoming login into Claude Code's store with its account's `fields`, keeping
/// the document's other top-level fields (step 3), under the storage-write lock; refused
/// when the store no longer holds the refresh token step 1 read (`seen`: none).
async fn write_incoming(
    plan: &PendingMove,
    fields: &Map<String, Value>,
    item: &StoredCredentials,
    lock: &RefreshLockGuard,
    seen: Option<Secret>,
) -> Result<(), String> {
    let dir = plan.dir.clone();
    let write_lock = blocking(move || StoreWriteLock::acquire(&dir, Instant::now() + LOCK_WAIT))
        .await
        .map_err(|e| busy(plan, &e))?
        .map_err(|e| busy(plan, &e))?;
    if lock.is_compromised() {
        return Err(
            "Claude Code's refresh lock was taken from sessctl; nothing was written".into(),
        );
    }
    let dir = plan.dir.clone();
    let (fields, tokens) = (fields.clone(), to_store(&item.tokens));
    blocking(move || {
        let mut document = match read(&dir).map_err(|e| e.to_string())? {
            StoreContents::Present { document, tokens }
                if Some(&tokens.refresh_token) == seen.as_ref() =>
            {
                document
            }
            StoreContents::Present { .. } => {
                return Err(
                    "another program wrote a login into the store meanwhile; nothing was written"
                        .into(),
                );
            }
            _ if seen.is_some() => {
                return Err("the store's login went away meanwhile; nothing was written".into());
            }
            StoreContents::Blanked { document, .. } | StoreContents::NoOAuth(document) => document,
            StoreContents::Missing | StoreContents::Empty => StoreDocument::new(),
        };
        document.replace_account(&fields, &tokens);
        let written = store_of(&dir).write(&document, &write_lock);
        drop(write_lock);
        written.map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|e| format!("cannot write Claude Code's store: {e}"))
}
