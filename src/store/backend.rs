//! The raw storage a [`super::CredentialStore`] drives: load, save and delete one slot's
//! item. Backends know nothing of versions or compare-and-set; the worker does that.

use super::{StoreError, StoreKind, StoredCredentials};

/// A place to keep one item per slot. Calls block; only the store worker makes them.
pub trait CredentialBackend: Send + 'static {
    /// Which kind of store this is.
    fn kind(&self) -> StoreKind;
    /// The item for `slot`, or `None` when there is none.
    fn load(&mut self, slot: &str) -> Result<Option<StoredCredentials>, StoreError>;
    /// Replaces (or creates) the item for `slot`, in place.
    fn save(&mut self, slot: &str, item: &StoredCredentials) -> Result<(), StoreError>;
    /// Removes the item for `slot`; removing a missing item is not an error.
    fn delete(&mut self, slot: &str) -> Result<(), StoreError>;
}
