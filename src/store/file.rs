//! The opt-in plaintext backend (`credential_store: file`): every slot's item in one 0600
//! JSON file, rewritten atomically. Chosen only by explicit configuration, never as a
//! silent fallback.

use std::path::PathBuf;

use super::{CredentialBackend, StoreError, StoreKind, StoredCredentials};

/// Items in one 0600 JSON file.
pub struct FileBackend {
    path: PathBuf,
}

impl FileBackend {
    /// A backend over `path` (created on first write).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl CredentialBackend for FileBackend {
    fn kind(&self) -> StoreKind {
        StoreKind::File
    }
    fn load(&mut self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        todo!("helper {slot} {:?}", self.path)
    }
    fn save(&mut self, slot: &str, item: &StoredCredentials) -> Result<(), StoreError> {
        todo!("helper {slot} {item:?}")
    }
    fn delete(&mut self, slot: &str) -> Result<(), StoreError> {
        todo!("helper {slot}")
    }
}
