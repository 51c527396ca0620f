//! The store worker: one thread that owns the backend and serializes every operation, so a
//! compare-and-set cannot interleave with another write from this process.
//!
//! The compare-and-set rules live here, once, for every backend:
//! - a refresh (`WriteCondition::Exact`) replaces only exactly the item it read;
//! - a login (`WriteCondition::NewLogin`) replaces only an absent item or an older login;
//! - a logout (`delete`) never removes a newer login, and is recorded in the logout
//!   ledger (`super::ledger`) before the item goes.
//!
//! Every item written carries its slot's label (provider, account) as last told with
//! [`CredentialStore::label`], or else the label of the item it replaces.
//!
//! An item that cannot be parsed has no generation to protect: a login may replace it and
//! a logout may remove it (both are explicit user actions and the only way out), but a
//! refresh may not. A call whose future is dropped may still complete on the worker.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::{
    CredentialBackend, FileBackend, Inventory, ItemLabel, KeychainBackend, StoreError, StoreKind,
    StoredCredentials, Tokens, WriteCondition, inventory, ledger,
};

/// What a caller sees when the worker thread is gone.
const WORKER_STOPPED: &str = "credential store worker stopped";

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
}

impl CredentialStore {
    /// Starts the worker thread that owns `backend`. The thread ends when the last handle
    /// is dropped.
    pub fn spawn(backend: Box<dyn CredentialBackend>) -> Self {
        let kind = backend.kind();
        let (requests, inbox) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name("sessctl-store".to_owned())
            .spawn(move || serve(backend, inbox));
        if let Err(err) = started {
            // The inbox went down with the closure, so every call reports the worker stopped.
            tracing::error!("cannot start the credential store thread: {err}");
        }
        CredentialStore { requests, kind }
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

    /// Sends one request and waits for its reply.
    async fn call<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| StoreError::Unavailable(WORKER_STOPPED.to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable(WORKER_STOPPED.to_owned()))?
    }
}

/// The worker thread's loop: one request at a time until every handle is gone.
fn serve(mut backend: Box<dyn CredentialBackend>, inbox: mpsc::Receiver<Request>) {
    let backend = backend.as_mut();
    let mut labels: HashMap<String, ItemLabel> = HashMap::new();
    while let Ok(request) = inbox.recv() {
        // A caller that gave up has dropped its receiver; its result is simply discarded.
        match request {
            Request::Load { slot, reply } => {
                let _ = reply.send(guarded(|| backend.load(&slot)));
            }
            Request::CompareAndSet {
                slot,
                condition,
                tokens,
                reply,
            } => {
                let label = labels.get(&slot);
                let result = guarded(|| compare_and_set(backend, &slot, condition, tokens, label));
                let _ = reply.send(result);
            }
            Request::Delete {
                slot,
                generation,
                reply,
            } => {
                let _ = reply.send(guarded(|| delete(backend, &slot, generation)));
            }
            Request::Inventory { reply } => {
                let _ = reply.send(guarded(|| inventory::take(backend)));
            }
            Request::Label { slot, label } => {
                labels.insert(slot, label);
            }
            Request::Restore { slot, item, reply } => {
                let label = labels.get(&slot);
                let _ = reply.send(guarded(|| restore(backend, &slot, item, label)));
            }
        }
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
    label: Option<&ItemLabel>,
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
    let (generation, version) = next_identity(slot, condition, current.as_ref())?;
    let (provider, account) = match (label, &current) {
        (Some(label), _) => (label.provider.clone(), label.account.clone()),
        (None, Some(current)) => (current.provider.clone(), current.account.clone()),
        (None, None) => (None, None),
    };
    let item = StoredCredentials {
        generation,
        version,
        provider,
        account,
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
            let next = version.checked_add(1).ok_or_else(|| StoreError::Corrupt {
                slot: slot.to_owned(),
                message: "item version is at its maximum".to_owned(),
            })?;
            Ok((generation, next))
        }
        (WriteCondition::NewLogin { generation }, None) => Ok((generation, 1)),
        (WriteCondition::NewLogin { generation }, Some(found)) if found.generation < generation => {
            Ok((generation, 1))
        }
        (condition, found) => Err(conflict(slot, expected(condition), found)),
    }
}

fn delete(
    backend: &mut dyn CredentialBackend,
    slot: &str,
    generation: u64,
) -> Result<(), StoreError> {
    match backend.load(slot) {
        Ok(Some(found)) if found.generation > generation => {
            return Err(conflict(
                slot,
                format!("generation {generation} or older"),
                Some(&found),
            ));
        }
        Ok(_) => {}
        Err(StoreError::Corrupt { message, .. }) => {
            tracing::warn!(slot, "deleting an unreadable credential item: {message}");
        }
        Err(err) => return Err(err),
    }
    // The ledger first: a crash between the two leaves an item known to be logged out.
    // Reserved items (a leading `.`, e.g. a kept revocation) are no slots: not recorded.
    if !slot.starts_with('.') {
        ledger::record(backend, slot, generation)?;
    }
    backend.delete(slot)
}

fn restore(
    backend: &mut dyn CredentialBackend,
    slot: &str,
    mut item: StoredCredentials,
    label: Option<&ItemLabel>,
) -> Result<StoredCredentials, StoreError> {
    let found = backend.load(slot);
    // The journal keeps no label: the one told for the slot, else the replaced item's.
    if item.provider.is_none() && item.account.is_none() {
        match (label, &found) {
            (Some(label), _) => {
                item.provider.clone_from(&label.provider);
                item.account.clone_from(&label.account);
            }
            (None, Ok(Some(old))) => {
                item.provider.clone_from(&old.provider);
                item.account.clone_from(&old.account);
            }
            _ => {}
        }
    }
    match found {
        Ok(Some(found)) if (found.generation, found.version) >= (item.generation, item.version) => {
            let wanted = format!(
                "older than generation {} version {}",
                item.generation, item.version
            );
            return Err(conflict(slot, wanted, Some(&found)));
        }
        Ok(_) => {}
        Err(StoreError::Corrupt { message, .. }) => {
            tracing::warn!(
                slot,
                "replacing an unreadable credential item from the journal: {message}"
            );
        }
        Err(err) => return Err(err),
    }
    backend.save(slot, &item)?;
    Ok(item)
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
    let found = match found {
        Some(item) => format!("generation {} version {}", item.generation, item.version),
        None => "no item".to_owned(),
    };
    StoreError::Conflict {
        slot: slot.to_owned(),
        expected,
        found,
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
