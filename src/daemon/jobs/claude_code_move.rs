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

/// What the stores hold when the job starts, read under Claude Code's locks.
struct Seen {
    store: StoreContents,
    /// The incoming slot's item of the generation being moved (none: deleted, or never).
    incoming: Option<StoredCredentials>,
    /// The outgoing slot's item of its new generation: an earlier run's copy.
    outgoing_copy: Option<StoredCredentials>,
}

/// What is left to do, as the stores say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Move the store's login out, then the incoming one in.
    MoveOut,
    /// The store holds no login: move the incoming one in.
    MoveIn,
    /// The store holds the incoming login already: only its old item is left to delete.
    Finish,
    /// The store holds a login sessctl does not know.
    Stranger,
    /// The incoming slot has no item to move.
    NoIncoming,
    /// A resumed move whose stores hold a login rotated since that is neither copy sessctl
    /// has: whose it is cannot be told from the tokens. The provider's userinfo is asked
    /// ([`JobContext::whose`]); without an answer nothing is written or presented.
    Undecided,
}

/// What is left to do, from the refresh tokens in Claude Code's store (`store`), in the
/// incoming slot's item (`incoming`) and in an earlier run's copy of the outgoing login
/// (`copy`).
fn decide(
    store: Option<&Secret>,
    incoming: Option<&Secret>,
    copy: Option<&Secret>,
    has_outgoing: bool,
    resumed: bool,
) -> Step {
    match (incoming, store) {
        // The item goes only after the store took the login: an earlier run got that far.
        (None, _) if resumed => Step::Finish,
        (None, _) => Step::NoIncoming,
        (Some(ours), Some(theirs)) if ours == theirs => Step::Finish,
        (Some(_), None) => Step::MoveIn,
        (Some(_), Some(theirs)) => {
            if !has_outgoing {
                return if resumed {
                    Step::Undecided
                } else {
                    Step::Stranger
                };
            }
            match copy {
                // The store was rotated after an earlier run copied the outgoing login:
                // rotated that login, or the incoming one the run had written already.
                Some(copied) if copied != theirs && resumed => Step::Undecided,
                _ => Step::MoveOut,
            }
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
        let MoveOrder {
            plan,
            resumed,
            fields,
            outgoing_label,
            identify,
        } = order;
        // Before Claude Code's store is written, a first run that cannot go on is called off.
        let not_now = |code: ErrorCode, error: String| {
            if resumed {
                MoveOutcome::Retry(error)
            } else {
                MoveOutcome::Refused(ErrorReply::new(code, error))
            }
        };
        let lock = match take_refresh_lock(&plan.slot, &plan.dir).await {
            Ok(lock) => lock,
            Err(e) => return not_now(ErrorCode::ClaudeCodeStore, busy(&plan, &e)),
        };
        let seen = match self.look(&plan).await {
            Ok(seen) => seen,
            Err(e) => return not_now(ErrorCode::StoreUnavailable, e),
        };
        let store_rt = match &seen.store {
            StoreContents::Present { tokens, .. } => Some(&tokens.refresh_token),
            _ => None,
        };
        let mut step = decide(
            store_rt,
            seen.incoming.as_ref().map(|i| &i.tokens.refresh_token),
            seen.outgoing_copy.as_ref().map(|i| &i.tokens.refresh_token),
            plan.outgoing.is_some(),
            resumed,
        );
        if step == Step::Undecided
            && let Some(known) = self.whose(&identify, &seen.store).await
        {
            tracing::info!(
                slot = plan.slot,
                ?known,
                "`use`: the store was rotated since the interrupted move; the provider says whose login it holds"
            );
            step = known;
        }
        tracing::info!(slot = plan.slot, ?step, resumed, "`use`: the stores read");
        let dir = plan.dir.display();
        let (outgoing, outgoing_fields) = match step {
            Step::Stranger => {
                return not_now(
                    ErrorCode::ClaudeCodeStore,
                    format!(
                        "{} holds a Claude Code login sessctl does not know; nothing was changed. Adopt it first so it is kept (`sessctl adopt SOMENAME --claude-code {dir}`), then run `sessctl use {}` again",
                        store_of(&plan.dir).describe(),
                        plan.slot
                    ),
                );
            }
            Step::NoIncoming => {
                return not_now(
                    ErrorCode::SlotInactive,
                    format!(
                        "slot {} has no item in sessctl's store (logged in again or out meanwhile?); nothing was changed",
                        plan.slot
                    ),
                );
            }
            Step::Undecided => {
                return MoveOutcome::Retry(format!(
                    "{} was rotated since the interrupted move, and its tokens are neither slot's copy: it cannot be told whose login it holds, so neither slot is used until it is settled (`sessctl logout` the slot whose account is not in {dir}, then log it in again)",
                    store_of(&plan.dir).describe()
                ));
            }
            Step::MoveOut => match self.move_out(&plan, &seen, outgoing_label).await {
                Ok(moved) => moved,
                Err(e) => return not_now(ErrorCode::StoreUnavailable, e),
            },
            Step::MoveIn | Step::Finish => (seen.outgoing_copy.clone(), None),
        };
        let incoming = match (step, seen.incoming) {
            (Step::Finish, _) => match &seen.store {
                StoreContents::Present { tokens, .. } => {
                    Some(from_store(tokens, chrono::Utc::now()))
                }
                _ => None,
            },
            (_, Some(item)) => {
                let seen_rt = store_rt.cloned();
                if let Err(e) = write_incoming(&plan, &fields, &item, &lock, seen_rt).await {
                    // Once the outgoing login is copied, the move is finished, never called
                    // off: a copy left behind could outlive its owner and be presented.
                    if step == Step::MoveOut {
                        return MoveOutcome::Retry(e);
                    }
                    return not_now(ErrorCode::ClaudeCodeStore, e);
                }
                Some(item.tokens)
            }
            (_, None) => None,
        };
        // From here Claude Code's store owns the incoming login: the rest is retried, never
        // called off.
        let deleted = self.store.delete(&plan.slot, plan.from_generation).await;
        self.settle_deleted(&plan.slot, &deleted);
        if let Err(e) = deleted {
            return MoveOutcome::Retry(format!(
                "slot {}'s login is in {dir}, but its old item in sessctl's store is not deleted yet: {e}",
                plan.slot
            ));
        }
        drop(lock);
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
    async fn whose(&self, identify: &Identify, store: &StoreContents) -> Option<Step> {
        let StoreContents::Present { tokens, .. } = store else {
            return None;
        };
        let provider = identify.provider.as_ref()?;
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
        if is(&identify.incoming) {
            Some(Step::Finish)
        } else if is(&identify.outgoing) {
            Some(Step::MoveOut)
        } else {
            None
        }
    }

    /// Reads both stores (module header, step 1).
    async fn look(&self, plan: &PendingMove) -> Result<Seen, String> {
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

#[cfg(test)]
mod tests {
    use super::{Step, decide};
    use crate::secret::Secret;

    #[test]
    fn the_stores_say_how_far_a_move_got() {
        let (a, b, b2) = (Secret::new("a"), Secret::new("b"), Secret::new("b2"));
        // A first run: the store holds the outgoing login, or none, or a stranger's.
        assert_eq!(decide(Some(&b), Some(&a), None, true, false), Step::MoveOut);
        assert_eq!(decide(None, Some(&a), None, true, false), Step::MoveIn);
        assert_eq!(
            decide(Some(&b), Some(&a), None, false, false),
            Step::Stranger
        );
        assert_eq!(decide(Some(&b), None, None, true, false), Step::NoIncoming);
        // Resumed: copied, and rotated by Claude Code since (its newest is copied again).
        assert_eq!(decide(Some(&b2), Some(&a), None, true, true), Step::MoveOut);
        assert_eq!(
            decide(Some(&b), Some(&a), Some(&b), true, true),
            Step::MoveOut
        );
        // Resumed after the store took the incoming login, or after its item went.
        assert_eq!(
            decide(Some(&a), Some(&a), Some(&b), true, true),
            Step::Finish
        );
        assert_eq!(decide(Some(&a), None, Some(&b), true, true), Step::Finish);
        // Rotated since a copy was made: whose login it is cannot be told.
        assert_eq!(
            decide(Some(&b2), Some(&a), Some(&b), true, true),
            Step::Undecided
        );
        assert_eq!(
            decide(Some(&b2), Some(&a), None, false, true),
            Step::Undecided
        );
    }
}
