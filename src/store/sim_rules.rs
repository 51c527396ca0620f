//! Test-only access to the compare-and-set rules ([`super::rules`]) without the worker
//! thread, so the daemon's simulator (`crate::daemon::sim`) drives the very rules the
//! store worker applies over an in-memory backend, one call at a time.

use super::{CredentialBackend, StoreError, StoredCredentials, Tokens, WriteCondition, rules};

/// A compare-and-set as the worker runs it (no unheard write, no label).
pub(crate) fn compare_and_set(
    backend: &mut dyn CredentialBackend,
    slot: &str,
    condition: WriteCondition,
    tokens: Tokens,
) -> Result<StoredCredentials, StoreError> {
    rules::compare_and_set(backend, slot, condition, tokens, None, None)
}

/// A logout's delete as the worker runs it (recorded in the logout ledger first).
pub(crate) fn delete(
    backend: &mut dyn CredentialBackend,
    slot: &str,
    generation: u64,
) -> Result<(), StoreError> {
    rules::delete(backend, slot, generation)
}

/// A journal replay as the worker runs it.
pub(crate) fn restore(
    backend: &mut dyn CredentialBackend,
    slot: &str,
    item: StoredCredentials,
) -> Result<StoredCredentials, StoreError> {
    rules::restore(backend, slot, item, None)
}

/// The store's inventory as the worker takes it at start.
pub(crate) fn inventory(
    backend: &mut dyn CredentialBackend,
) -> Result<super::Inventory, StoreError> {
    super::inventory::take(backend)
}
