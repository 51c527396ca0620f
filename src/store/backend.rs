//! The raw storage a [`super::CredentialStore`] drives: load, save and delete one slot's
//! item, plus the text of reserved items (accounts starting with `.`, such as the logout
//! ledger) and the list of accounts. Backends know nothing of versions or compare-and-set;
//! the worker does that.

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
    /// Every account holding an item (reserved ones included), in no particular order.
    fn list(&mut self) -> Result<Vec<String>, StoreError>;
    /// The raw text of a reserved item, or `None` when there is none.
    fn load_text(&mut self, account: &str) -> Result<Option<String>, StoreError>;
    /// Replaces (or creates) a reserved item with `text`.
    fn save_text(&mut self, account: &str, text: &str) -> Result<(), StoreError>;
}
