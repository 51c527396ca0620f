//! The store worker: one thread that owns the backend and serializes every operation, so a
//! compare-and-set cannot interleave with another write from this process.

use super::{CredentialBackend, StoreError, StoreKind, StoredCredentials, Tokens, WriteCondition};

/// A cheap, cloneable handle to the store worker thread.
#[derive(Clone)]
pub struct CredentialStore {
    // helper: an mpsc sender of operations, each with a oneshot reply
    kind: StoreKind,
}

impl CredentialStore {
    /// Starts the worker thread that owns `backend`.
    pub fn spawn(backend: Box<dyn CredentialBackend>) -> Self {
        todo!("helper {}", backend.kind() == StoreKind::File)
    }

    /// Which kind of store is in use.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Reads `slot`'s item.
    pub async fn load(&self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        todo!("helper {slot}")
    }

    /// Writes `tokens` for `slot` if `condition` holds; returns the item as written.
    pub async fn compare_and_set(
        &self,
        slot: &str,
        condition: WriteCondition,
        tokens: Tokens,
    ) -> Result<StoredCredentials, StoreError> {
        todo!("helper {slot} {condition:?} {tokens:?}")
    }

    /// Deletes `slot`'s item unless it belongs to a login newer than `generation`
    /// (a logout must not delete a re-login that overtook it).
    pub async fn delete(&self, slot: &str, generation: u64) -> Result<(), StoreError> {
        todo!("helper {slot} {generation}")
    }
}

impl CredentialStore {
    /// Opens the configured kind of store.
    pub fn open(kind: StoreKind, credentials_file: std::path::PathBuf) -> Self {
        match kind {
            StoreKind::Keychain => Self::spawn(Box::new(super::KeychainBackend)),
            StoreKind::File => Self::spawn(Box::new(super::FileBackend::new(credentials_file))),
        }
    }
}
