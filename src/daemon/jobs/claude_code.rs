//! The jobs of a slot whose credentials stay in Claude Code's own store
//! (`crate::claude_code`): load, refresh and write, each over Claude Code's lock protocol,
//! and the read behind `adopt`. These tokens never go to sessctl's store or journal.
//!
//! A refresh holds Claude Code's refresh locks across re-read → request → write, exactly
//! as Claude Code does, so the two never present one refresh token twice:
//! - after taking the locks it re-reads the store; a refresh token other than the one the
//!   slot last saw means someone (Claude Code, another tool) rotated meanwhile: those tokens
//!   are adopted and nothing is sent;
//! - otherwise it refreshes, and writes the result under the storage-write lock, keeping
//!   every field it does not own;
//! - on `invalid_grant` it re-reads first: only a store that still holds the dead token
//!   makes the slot inactive (the store is left as it is: Claude Code blanks it itself).
//!
//! A live lock is waited for (at most [`LOCK_WAIT`]), never broken; a lock still held then
//! is a transient failure, retried with backoff.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::claude_code::{
    ConfigDir, CredentialStore, OAuthTokens, RefreshLock, RefreshLockGuard, StoreContents,
    StoreDocument, StoreWriteLock,
};
use crate::config::Provider;
use crate::oauth::{PermanentReason, TokenOutcome};
use crate::protocol::{ErrorCode, ErrorReply};
use crate::store::{StoreError, StoredCredentials, Tokens};

use crate::daemon::core::orders::Urgency;
use crate::daemon::core::reports::{Adoption, JobResult, RefreshOutcome};

use super::{JobContext, joblog, refreshed_tokens};

/// Longest a job waits for a lock a live Claude Code holds (a refresh takes it for one
/// token request; 2.1.197 retries for about 5–10 s, so this is generous).
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// How soon a refresh that found the lock busy is tried again.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// The version every item read from Claude Code's store gets: the store has no versions,
/// and the core's compare-and-set is not what guards it (the locks are).
const VERSION: u64 = 1;

impl JobContext {
    /// Reads a Claude Code-backed slot's tokens.
    pub fn load_claude_code(&self, name: String, generation: u64, dir: PathBuf) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let result = blocking(move || read(&dir))
                .await
                .and_then(|read| Ok(present(read?).map(|tokens| item(generation, tokens))));
            ctx.report(JobResult::Loaded {
                name,
                generation,
                result,
            });
        });
    }

    /// Refreshes a Claude Code-backed slot under Claude Code's locks (module header).
    pub fn refresh_claude_code(
        &self,
        (name, generation): (String, u64),
        provider: Provider,
        current: Tokens,
        (urgency, dir): (Urgency, PathBuf),
    ) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let _permit = ctx.token_limit.acquire(urgency).await;
            let Some(_in_flight) = ctx.drain.enter() else {
                tracing::info!(slot = name, "refresh not sent: the daemon is stopping");
                return;
            };
            let started = Instant::now();
            let (outcome, unusable) = ctx
                .refresh_locked(&name, &provider, &current, &dir, generation)
                .await;
            joblog::refresh(&name, &outcome, started.elapsed(), None);
            ctx.report(JobResult::Refreshed {
                name,
                generation,
                outcome,
                unusable,
            });
        });
    }

    async fn refresh_locked(
        &self,
        name: &str,
        provider: &Provider,
        current: &Tokens,
        dir: &Path,
        generation: u64,
    ) -> (RefreshOutcome, Option<String>) {
        let lock = match take_refresh_lock(name, dir).await {
            Ok(lock) => lock,
            Err(e) => return (busy(&e), None),
        };
        // Re-read under the lock: someone may have rotated since the slot last looked.
        match self.reread(dir, current, generation).await {
            Ok(Some(adopted)) => {
                tracing::info!(
                    slot = name,
                    "Claude Code's store was rotated by another program; using its tokens, nothing sent"
                );
                return (RefreshOutcome::Stored(adopted), None);
            }
            Ok(None) => {}
            Err(outcome) => return (outcome, None),
        }
        if lock.is_compromised() {
            return (busy(&"the refresh lock was taken from sessctl"), None);
        }
        let outcome = match self.oauth.refresh(provider, &current.refresh_token).await {
            TokenOutcome::Refreshed(grant) => {
                let unusable = grant.defect.clone();
                let tokens = refreshed_tokens(grant, current);
                let outcome = write_locked(dir, lock, tokens.clone(), generation).await;
                return (outcome, unusable);
            }
            TokenOutcome::Transient {
                error, retry_after, ..
            } => RefreshOutcome::Transient { error, retry_after },
            TokenOutcome::Permanent { reason, error } => {
                self.dead_token(name, dir, current, generation, (reason, error))
                    .await
            }
        };
        drop(lock);
        (outcome, None)
    }

    /// The store's tokens when they are another lineage step than `current` (someone else
    /// rotated): `Ok(Some)`. `Ok(None)` when the store still holds `current`'s refresh token.
    async fn reread(
        &self,
        dir: &Path,
        current: &Tokens,
        generation: u64,
    ) -> Result<Option<StoredCredentials>, RefreshOutcome> {
        let dir = dir.to_path_buf();
        match blocking(move || read(&dir)).await.and_then(|r| r) {
            Ok(StoreContents::Present { tokens, .. }) => {
                if tokens.refresh_token == current.refresh_token {
                    Ok(None)
                } else {
                    Ok(Some(item(generation, from_store(&tokens, Utc::now()))))
                }
            }
            Ok(other) => Err(RefreshOutcome::Permanent {
                reason: PermanentReason::SessionExpired,
                error: format!(
                    "Claude Code's store no longer holds a login ({}); log in with Claude Code again",
                    describe(&other)
                ),
            }),
            Err(e) => Err(RefreshOutcome::Transient {
                error: e.to_string(),
                retry_after: Some(BUSY_RETRY),
            }),
        }
    }

    /// `invalid_grant` (or another permanent refusal): re-read first, as Claude Code does.
    async fn dead_token(
        &self,
        name: &str,
        dir: &Path,
        current: &Tokens,
        generation: u64,
        (reason, error): (PermanentReason, String),
    ) -> RefreshOutcome {
        match self.reread(dir, current, generation).await {
            Ok(Some(adopted)) => {
                tracing::warn!(
                    slot = name,
                    "refresh refused ({error}), but Claude Code's store was rotated meanwhile; using its tokens"
                );
                RefreshOutcome::Stored(adopted)
            }
            Ok(None) => RefreshOutcome::Permanent { reason, error },
            Err(outcome) => outcome,
        }
    }

    /// Writes tokens the store could not take earlier, under both of Claude Code's locks.
    pub fn write_claude_code(&self, name: String, generation: u64, tokens: Tokens, dir: PathBuf) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let result = match take_refresh_lock(&name, &dir).await {
                Ok(lock) => match write_locked(&dir, lock, tokens, generation).await {
                    RefreshOutcome::Stored(item) => Ok(item),
                    RefreshOutcome::Unsaved { error, .. } => Err(error),
                    _ => Err(StoreError::Unavailable("write failed".into())),
                },
                Err(e) => Err(e),
            };
            ctx.report(JobResult::Written {
                name,
                generation,
                result,
            });
        });
    }

    /// Reads the store `adopt` names and learns whose login it is.
    pub fn adopt(&self, mut adopt: Adoption) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let dir = adopt.dir.clone();
            let read = blocking(move || read(&dir)).await.and_then(|r| r);
            let found = match read {
                Ok(StoreContents::Present { tokens, .. }) => Ok(from_store(&tokens, Utc::now())),
                Ok(other) => Err(ErrorReply::new(
                    ErrorCode::LoginFailed,
                    format!(
                        "{} holds no Claude Code login ({}); log in there first (CLAUDE_CONFIG_DIR={} claude, then /login)",
                        store_of(&adopt.dir).describe(),
                        describe(&other),
                        adopt.dir.display()
                    ),
                )),
                Err(e) => Err(ErrorReply::new(ErrorCode::LoginFailed, e.to_string())),
            };
            adopt.found = Some(match found {
                Ok(tokens) => {
                    let fresh = tokens.expires_at.is_none_or(|at| at > Utc::now());
                    let identity = match &adopt.provider {
                        Some(provider) if fresh => ctx
                            .oauth
                            .userinfo(provider, &tokens.access_token)
                            .await
                            .unwrap_or_else(|e| {
                                tracing::warn!(
                                    slot = adopt.name,
                                    "could not learn the account: {e}"
                                );
                                None
                            }),
                        _ => None,
                    };
                    Ok((tokens, identity.unwrap_or_default()))
                }
                Err(e) => Err(e),
            });
            ctx.report(JobResult::Adopted(Box::new(adopt)));
        });
    }
}

/// Takes Claude Code's refresh locks of `dir`, waiting (at most [`LOCK_WAIT`], logged) for
/// a live holder; never breaks a live lock.
pub(super) async fn take_refresh_lock(
    name: &str,
    dir: &Path,
) -> Result<RefreshLockGuard, StoreError> {
    let lock_dir = dir.to_path_buf();
    let unavailable = |e: crate::claude_code::LockError| StoreError::Unavailable(e.to_string());
    let first = blocking(move || RefreshLock::acquire(&lock_dir, Instant::now())).await?;
    match first {
        Ok(lock) => return Ok(lock),
        Err(crate::claude_code::LockError::Busy { .. }) => {}
        Err(e) => return Err(unavailable(e)),
    }
    tracing::info!(
        slot = name,
        "another program holds Claude Code's refresh lock in {}; waiting for it",
        dir.display()
    );
    let lock_dir = dir.to_path_buf();
    blocking(move || RefreshLock::acquire(&lock_dir, Instant::now() + LOCK_WAIT))
        .await?
        .map_err(unavailable)
}

/// Writes `tokens` into the store of `dir` under its storage-write lock, while `lock` (the
/// refresh locks) is still held; every field sessctl does not own is kept.
async fn write_locked(
    dir: &Path,
    lock: RefreshLockGuard,
    tokens: Tokens,
    generation: u64,
) -> RefreshOutcome {
    let dir = dir.to_path_buf();
    let oauth = to_store(&tokens);
    let written = blocking(move || {
        let write_lock = StoreWriteLock::acquire(&dir, Instant::now() + LOCK_WAIT)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let store = store_of(&dir);
        let mut document = match read(&dir)? {
            StoreContents::Present { document, .. }
            | StoreContents::Blanked { document, .. }
            | StoreContents::NoOAuth(document) => document,
            StoreContents::Missing | StoreContents::Empty => StoreDocument::new(),
        };
        document.set_tokens(&oauth);
        let result = store
            .write(&document, &write_lock)
            .map_err(|e| StoreError::Unavailable(e.to_string()));
        drop(write_lock);
        drop(lock);
        result
    })
    .await
    .and_then(|r| r);
    match written {
        Ok(()) => RefreshOutcome::Stored(item(generation, tokens)),
        Err(error) => RefreshOutcome::Unsaved { tokens, error },
    }
}

/// Runs blocking file and lock work off the runtime.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))
}

pub(super) fn store_of(dir: &Path) -> CredentialStore {
    CredentialStore::new(ConfigDir::of_slot(dir))
}

/// What the store of `dir` holds; an unreadable or corrupt store is an error naming it.
pub(super) fn read(dir: &Path) -> Result<StoreContents, StoreError> {
    store_of(dir).read().map_err(|e| match e {
        crate::claude_code::StoreError::Format { .. } => StoreError::Corrupt {
            slot: dir.display().to_string(),
            message: e.to_string(),
        },
        other => StoreError::Unavailable(other.to_string()),
    })
}

/// The tokens of a store that holds a login, `None` for one that does not.
fn present(contents: StoreContents) -> Option<Tokens> {
    match contents {
        StoreContents::Present { tokens, .. } => Some(from_store(&tokens, Utc::now())),
        _ => None,
    }
}

/// What a store without a login holds, for messages.
pub(super) fn describe(contents: &StoreContents) -> String {
    match contents {
        StoreContents::Missing => "no credentials file".into(),
        StoreContents::Empty => "an empty credentials file".into(),
        StoreContents::NoOAuth(_) => "no claudeAiOauth login".into(),
        StoreContents::Blanked { login_ended, .. } => match login_ended {
            Some(why) => format!("a login Claude Code ended ({why})"),
            None => "a login Claude Code blanked after its token died".into(),
        },
        StoreContents::Present { .. } => "a login".into(),
    }
}

/// sessctl's view of the store's tokens. The store does not say when they were obtained:
/// `now` stands in (they were just read, and were usually just rotated).
pub(super) fn from_store(tokens: &OAuthTokens, now: DateTime<Utc>) -> Tokens {
    Tokens {
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        expires_at: tokens
            .expires_at_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        obtained_at: now,
        scopes: tokens.scopes.clone().unwrap_or_default(),
    }
}

/// The store's fields for `tokens` (scopes left alone when sessctl knows none).
pub(super) fn to_store(tokens: &Tokens) -> OAuthTokens {
    OAuthTokens {
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        expires_at_ms: tokens.expires_at.map(|at| at.timestamp_millis()),
        scopes: (!tokens.scopes.is_empty()).then(|| tokens.scopes.clone()),
    }
}

fn item(generation: u64, tokens: Tokens) -> StoredCredentials {
    StoredCredentials {
        generation,
        version: VERSION,
        provider: None,
        account: None,
        tokens,
    }
}

/// A refresh that could not take the lock (or lost it): nothing was sent; retried later.
fn busy(error: &dyn std::fmt::Display) -> RefreshOutcome {
    RefreshOutcome::Transient {
        error: format!("Claude Code's lock: {error}"),
        retry_after: Some(BUSY_RETRY),
    }
}
