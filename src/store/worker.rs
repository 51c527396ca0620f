//! The store worker: one thread that owns the backend and serializes every operation, so a
//! compare-and-set cannot interleave with another write from this process.
//!
//! The compare-and-set rules live here, once, for every backend:
//! - a refresh (`WriteCondition::Exact`) replaces only exactly the item it read;
//! - a login (`WriteCondition::NewLogin`) replaces only an absent item or an older login;
//! - a logout (`delete`) never removes a newer login.
//!
//! An item that cannot be parsed has no generation to protect: a login may replace it and
//! a logout may remove it (both are explicit user actions and the only way out), but a
//! refresh may not.
//!
//! A keychain can stall (a stopped gnome-keyring, a password prompt): the thread then
//! waits inside one call, and everything queued behind it waits too. A caller therefore
//! waits at most [`STORE_WAIT`] and then sees `Unavailable`, while the call goes on here:
//! - a queued load or write whose caller already gave up is skipped (the caller treats
//!   it as not done, and will retry);
//! - a write that completes after its caller gave up is *unheard*: the caller still holds
//!   its old condition. The worker remembers it, and the caller's next write under that
//!   same condition is taken as following it (the caller's tokens are those of the unheard
//!   write or newer, never older), instead of failing as a conflict.
//!
//! Store health is logged here, once per change ([`super::health`]).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::health::{log_health, result_unavailable};
use super::{
    CredentialBackend, FileBackend, ItemId, KeychainBackend, StoreError, StoreKind,
    StoredCredentials, Tokens, WriteCondition,
};
use crate::repeat::Repeated;

/// What a caller sees when the worker thread is gone.
const WORKER_STOPPED: &str = "credential store worker stopped";

/// How long a caller waits for the store before treating it as unavailable. A healthy
/// keychain answers in milliseconds, and D-Bus activation of a stopped gnome-keyring takes
/// about a second even on a loaded machine; a frozen keychain or one waiting on a password
/// prompt may not answer for minutes. Past this, `token` and `refresh` callers are answered
/// from memory (rotated tokens held as unsaved and written later) instead of waiting on a
/// store that may never answer.
pub const STORE_WAIT: Duration = Duration::from_secs(5);

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One operation for the worker, with the channel its result goes back on.
enum Request {
    Load {
        slot: String,
        reply: Reply<Option<StoredCredentials>>,
    },
    CompareAndSet {
        slot: String,
        condition: WriteCondition,
        tokens: Tokens,
        reply: Reply<StoredCredentials>,
    },
    Delete {
        slot: String,
        generation: u64,
        reply: Reply<()>,
    },
}

/// A cheap, cloneable handle to the store worker thread.
#[derive(Clone)]
pub struct CredentialStore {
    requests: mpsc::Sender<Request>,
    kind: StoreKind,
    /// How long a caller waits for an answer ([`STORE_WAIT`]).
    wait: Duration,
}

impl CredentialStore {
    /// Starts the worker thread that owns `backend`. The thread ends when the last handle
    /// is dropped.
    pub fn spawn(backend: Box<dyn CredentialBackend>) -> Self {
        Self::spawn_waiting(backend, STORE_WAIT)
    }

    /// [`CredentialStore::spawn`] with callers waiting at most `wait` for each answer.
    pub fn spawn_waiting(backend: Box<dyn CredentialBackend>, wait: Duration) -> Self {
        let kind = backend.kind();
        let (requests, inbox) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name("sessctl-store".to_owned())
            .spawn(move || serve(backend, inbox));
        if let Err(err) = started {
            // The inbox went down with the closure, so every call reports the worker stopped.
            tracing::error!("cannot start the credential store thread: {err}");
        }
        CredentialStore {
            requests,
            kind,
            wait,
        }
    }

    /// Opens the store `kind`: the OS keychain, or the 0600 file `credentials_file`
    /// (used only for [`StoreKind::File`]).
    pub fn open(kind: StoreKind, credentials_file: PathBuf) -> Self {
        match kind {
            StoreKind::Keychain => Self::spawn(Box::new(KeychainBackend::default())),
            StoreKind::File => Self::spawn(Box::new(FileBackend::new(credentials_file))),
        }
    }

    /// Which kind of store is in use.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Reads `slot`'s item.
    pub async fn load(&self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        let slot = slot.to_owned();
        self.call(|reply| Request::Load { slot, reply }).await
    }

    /// Writes `tokens` for `slot` if `condition` holds; returns the item as written.
    pub async fn compare_and_set(
        &self,
        slot: &str,
        condition: WriteCondition,
        tokens: Tokens,
    ) -> Result<StoredCredentials, StoreError> {
        let slot = slot.to_owned();
        self.call(|reply| Request::CompareAndSet {
            slot,
            condition,
            tokens,
            reply,
        })
        .await
    }

    /// Deletes `slot`'s item unless it belongs to a login newer than `generation`
    /// (a logout must not delete a re-login that overtook it).
    pub async fn delete(&self, slot: &str, generation: u64) -> Result<(), StoreError> {
        let slot = slot.to_owned();
        self.call(|reply| Request::Delete {
            slot,
            generation,
            reply,
        })
        .await
    }

    /// Sends one request and waits for its reply, at most `self.wait`.
    async fn call<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| StoreError::Unavailable(WORKER_STOPPED.to_owned()))?;
        match tokio::time::timeout(self.wait, &mut answer).await {
            Ok(result) => result.map_err(|_| StoreError::Unavailable(WORKER_STOPPED.to_owned()))?,
            Err(_) => {
                // Closed first: from now on the worker's answer fails to send, so it knows
                // this caller did not hear it. One sent just before is still ours.
                answer.close();
                answer.try_recv().unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(format!(
                        "the credential store did not answer within {} s (is the keychain service stopped, or waiting for a password?); the operation may still complete",
                        self.wait.as_secs_f64()
                    )))
                })
            }
        }
    }
}

/// A write that completed after its caller stopped waiting: the caller still holds
/// `condition`, the store holds `written`.
struct Unheard {
    condition: WriteCondition,
    written: ItemId,
}

/// The worker thread's loop: one request at a time until every handle is gone.
fn serve(mut backend: Box<dyn CredentialBackend>, inbox: mpsc::Receiver<Request>) {
    let backend = backend.as_mut();
    let mut unheard: HashMap<String, Unheard> = HashMap::new();
    let mut health = Repeated::default();
    while let Ok(request) = inbox.recv() {
        if abandoned(&request) {
            tracing::debug!("skipping a credential store call its caller gave up on");
            continue;
        }
        let unavailable = serve_one(backend, &mut unheard, request);
        log_health(&mut health, unavailable);
    }
}

/// Runs one request and answers it; returns the error when the store was unavailable.
fn serve_one(
    backend: &mut dyn CredentialBackend,
    unheard: &mut HashMap<String, Unheard>,
    request: Request,
) -> Option<String> {
    match request {
        Request::Load { slot, reply } => {
            let result = guarded(|| backend.load(&slot));
            let unavailable = result_unavailable(&result);
            let _ = reply.send(result);
            unavailable
        }
        Request::CompareAndSet {
            slot,
            condition,
            tokens,
            reply,
        } => {
            let result =
                guarded(|| compare_and_set(backend, &slot, condition, tokens, unheard.get(&slot)));
            let unavailable = result_unavailable(&result);
            let written = result.as_ref().ok().map(ItemId::of);
            let heard = reply.send(result).is_ok();
            match written {
                Some(written) if !heard => {
                    tracing::info!(
                        slot,
                        generation = written.generation,
                        version = written.version,
                        "a credential write completed after its caller stopped waiting"
                    );
                    unheard.insert(slot, Unheard { condition, written });
                }
                Some(_) => {
                    unheard.remove(&slot);
                }
                None => {}
            }
            unavailable
        }
        Request::Delete {
            slot,
            generation,
            reply,
        } => {
            // Run even when its caller gave up: the logout wants the item gone.
            let result = guarded(|| delete(backend, &slot, generation));
            if result.is_ok() {
                unheard.remove(&slot);
            }
            let unavailable = result_unavailable(&result);
            let _ = reply.send(result);
            unavailable
        }
    }
}

/// True for a load or write whose caller no longer waits for it.
fn abandoned(request: &Request) -> bool {
    match request {
        Request::Load { reply, .. } => reply.is_closed(),
        Request::CompareAndSet { reply, .. } => reply.is_closed(),
        Request::Delete { .. } => false,
    }
}

/// Runs one backend operation, turning a panic (in keyring, D-Bus, ...) into
/// `Unavailable` so one bad call does not take the store down for good. Our backends keep
/// no state between calls, so there is nothing a panic could leave half-changed.
fn guarded<T>(op: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(op)).unwrap_or_else(|_| {
        Err(StoreError::Unavailable(
            "credential store backend panicked".to_owned(),
        ))
    })
}

fn compare_and_set(
    backend: &mut dyn CredentialBackend,
    slot: &str,
    condition: WriteCondition,
    tokens: Tokens,
    unheard: Option<&Unheard>,
) -> Result<StoredCredentials, StoreError> {
    let current = match (backend.load(slot), condition) {
        (Ok(current), _) => current,
        (Err(StoreError::Corrupt { message, .. }), WriteCondition::NewLogin { .. }) => {
            tracing::warn!(
                slot,
                "replacing an unreadable credential item on login: {message}"
            );
            None
        }
        (Err(err), _) => return Err(err),
    };
    let follows_unheard = unheard.is_some_and(|u| {
        u.condition == condition && current.as_ref().map(ItemId::of) == Some(u.written)
    });
    let (generation, version) = match (&current, follows_unheard) {
        // The item is this caller's own write it never heard of: these tokens follow it.
        (Some(found), true) => (found.generation, next_version(slot, found.version)?),
        _ => next_identity(slot, condition, current.as_ref())?,
    };
    let item = StoredCredentials {
        generation,
        version,
        tokens,
    };
    backend.save(slot, &item)?;
    Ok(item)
}

/// The generation and version to write under `condition` over `current`, or the conflict.
fn next_identity(
    slot: &str,
    condition: WriteCondition,
    current: Option<&StoredCredentials>,
) -> Result<(u64, u64), StoreError> {
    match (condition, current) {
        (
            WriteCondition::Exact {
                generation,
                version,
            },
            Some(found),
        ) if found.generation == generation && found.version == version => {
            Ok((generation, next_version(slot, version)?))
        }
        (WriteCondition::NewLogin { generation }, None) => Ok((generation, 1)),
        (WriteCondition::NewLogin { generation }, Some(found)) if found.generation < generation => {
            Ok((generation, 1))
        }
        (condition, found) => Err(conflict(slot, expected(condition), found)),
    }
}

/// The version after `version`.
fn next_version(slot: &str, version: u64) -> Result<u64, StoreError> {
    version.checked_add(1).ok_or_else(|| StoreError::Corrupt {
        slot: slot.to_owned(),
        message: "item version is at its maximum".to_owned(),
    })
}

fn delete(
    backend: &mut dyn CredentialBackend,
    slot: &str,
    generation: u64,
) -> Result<(), StoreError> {
    match backend.load(slot) {
        Ok(None) => Ok(()),
        Ok(Some(found)) if found.generation > generation => Err(conflict(
            slot,
            format!("generation {generation} or older"),
            Some(&found),
        )),
        Ok(Some(_)) => backend.delete(slot),
        Err(StoreError::Corrupt { message, .. }) => {
            tracing::warn!(slot, "deleting an unreadable credential item: {message}");
            backend.delete(slot)
        }
        Err(err) => Err(err),
    }
}

impl ItemId {
    /// The identity of `item`.
    fn of(item: &StoredCredentials) -> Self {
        ItemId {
            generation: item.generation,
            version: item.version,
        }
    }
}

/// What `condition` needs, in words (identities only, never token values).
fn expected(condition: WriteCondition) -> String {
    match condition {
        WriteCondition::Exact {
            generation,
            version,
        } => {
            format!("generation {generation} version {version}")
        }
        WriteCondition::NewLogin { generation } => {
            format!("no item or a generation older than {generation}")
        }
    }
}

fn conflict(slot: &str, expected: String, found: Option<&StoredCredentials>) -> StoreError {
    let described = match found {
        Some(item) => format!("generation {} version {}", item.generation, item.version),
        None => "no item".to_owned(),
    };
    StoreError::Conflict {
        slot: slot.to_owned(),
        expected,
        found: described,
        found_item: found.map(ItemId::of),
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
