//! The store worker: one thread that owns the backend and serializes every operation, so a
//! compare-and-set cannot interleave with another write from this process.
//!
//! The compare-and-set rules it applies live in [`super::rules`]. Every item written carries
//! its slot's label (provider, account) as last told with [`CredentialStore::label`].
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
use super::rules::{compare_and_set, delete, restore};
use super::{
    CredentialBackend, FileBackend, Inventory, ItemId, ItemLabel, KeychainBackend, StoreError,
    StoreKind, StoredCredentials, Tokens, WriteCondition, inventory,
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
    Inventory {
        reply: Reply<Inventory>,
    },
    Label {
        slot: String,
        label: ItemLabel,
    },
    Restore {
        slot: String,
        item: StoredCredentials,
        reply: Reply<StoredCredentials>,
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

    /// What the store holds (no tokens): every slot item's identity and label, and the
    /// logout ledger.
    pub async fn inventory(&self) -> Result<Inventory, StoreError> {
        self.call(|reply| Request::Inventory { reply }).await
    }

    /// Sets the label that items written for `slot` from now on carry. Queued in order
    /// with the writes, so a write sent after this call carries it.
    pub fn label(&self, slot: &str, label: ItemLabel) {
        let _ = self.requests.send(Request::Label {
            slot: slot.to_owned(),
            label,
        });
    }

    /// Writes `item` with its own generation and version unless the store holds the same
    /// or a newer (generation, version): the journal's replay, whose tokens were already
    /// given that identity. An unreadable item is replaced.
    pub async fn restore(
        &self,
        slot: &str,
        item: StoredCredentials,
    ) -> Result<StoredCredentials, StoreError> {
        let slot = slot.to_owned();
        self.call(|reply| Request::Restore { slot, item, reply })
            .await
    }

    /// Sends one request and waits for its reply, at most `self.wait`.
    async fn call<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| StoreError::Unavailable(WORKER_STOPPED.to_owned()))?;
        if let Ok(result) = tokio::time::timeout(self.wait, &mut answer).await {
            result.map_err(|_| StoreError::Unavailable(WORKER_STOPPED.to_owned()))?
        } else {
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

/// A write that completed after its caller stopped waiting: the caller still holds
/// `condition`, the store holds `written`.
pub(super) struct Unheard {
    pub(super) condition: WriteCondition,
    pub(super) written: ItemId,
}

/// What the worker remembers between calls.
#[derive(Default)]
struct Memory {
    /// Writes whose callers did not hear of them, by slot.
    unheard: HashMap<String, Unheard>,
    /// The label each slot's items carry from now on.
    labels: HashMap<String, ItemLabel>,
}

/// The worker thread's loop: one request at a time until every handle is gone.
fn serve(mut backend: Box<dyn CredentialBackend>, inbox: mpsc::Receiver<Request>) {
    let backend = backend.as_mut();
    let mut memory = Memory::default();
    let mut health = Repeated::default();
    for request in inbox {
        if abandoned(&request) {
            tracing::debug!("skipping a credential store call its caller gave up on");
            continue;
        }
        // A label is bookkeeping, not a call: it says nothing of the store's health.
        let is_call = !matches!(request, Request::Label { .. });
        let unavailable = serve_one(backend, &mut memory, request);
        if is_call {
            log_health(&mut health, unavailable);
        }
    }
}

/// Runs one request and answers it; returns the error when the store was unavailable.
fn serve_one(
    backend: &mut dyn CredentialBackend,
    memory: &mut Memory,
    request: Request,
) -> Option<String> {
    let Memory { unheard, labels } = memory;
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
            let (unheard_write, label) = (unheard.get(&slot), labels.get(&slot));
            let result = guarded(|| {
                compare_and_set(backend, &slot, condition, tokens, unheard_write, label)
            });
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
        Request::Inventory { reply } => {
            let result = guarded(|| inventory::take(backend));
            let unavailable = result_unavailable(&result);
            let _ = reply.send(result);
            unavailable
        }
        Request::Label { slot, label } => {
            labels.insert(slot, label);
            None
        }
        Request::Restore { slot, item, reply } => {
            let label = labels.get(&slot);
            let result = guarded(|| restore(backend, &slot, item, label));
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
        Request::Inventory { reply } => reply.is_closed(),
        // A logout wants the item gone; a label is no call; a replay is kept.
        Request::Delete { .. } | Request::Label { .. } | Request::Restore { .. } => false,
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

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
