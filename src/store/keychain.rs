//! The OS keychain backend (keyring v4: macOS Keychain, Windows Credential Manager, Linux
//! Secret Service). One item per slot: service `sessctl`, account = slot name, the
//! password is the item's JSON.

use super::{CredentialBackend, StoreError, StoreKind, StoredCredentials};

/// Keychain service name of every sessctl item.
pub const KEYCHAIN_SERVICE: &str = "sessctl";

/// Items in the OS keychain.
pub struct KeychainBackend;

impl CredentialBackend for KeychainBackend {
    fn kind(&self) -> StoreKind {
        StoreKind::Keychain
    }
    fn load(&mut self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        todo!("helper {slot}")
    }
    fn save(&mut self, slot: &str, item: &StoredCredentials) -> Result<(), StoreError> {
        todo!("helper {slot} {item:?}")
    }
    fn delete(&mut self, slot: &str) -> Result<(), StoreError> {
        todo!("helper {slot}")
    }
}
