//! What the credential store holds, without any token: each slot item's identity and
//! label, and the logout ledger. The daemon reconciles its slot list with this at start
//! (`crate::daemon::reconcile`). Reserved accounts (a leading `.`: the ledger, other
//! components' items, doctor's probe) are never slots and are left out.

use std::collections::BTreeMap;

use super::{CredentialBackend, StoreError, StoredCredentials, ledger};

/// The non-secret label every item written from now on carries, so an item whose slot
/// the state file lost can be adopted back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemLabel {
    pub provider: Option<String>,
    pub account: Option<String>,
}

/// One slot item, tokens left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSummary {
    pub generation: u64,
    pub version: u64,
    pub label: ItemLabel,
}

impl ItemSummary {
    fn of(item: &StoredCredentials) -> Self {
        ItemSummary {
            generation: item.generation,
            version: item.version,
            label: ItemLabel {
                provider: item.provider.clone(),
                account: item.account.clone(),
            },
        }
    }
}

/// Everything the store says about which slots exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Slot items by slot name; an unreadable one carries why (never its contents).
    pub items: BTreeMap<String, Result<ItemSummary, String>>,
    /// Per slot name, the newest generation logged out (see `super::ledger`).
    pub logged_out: BTreeMap<String, u64>,
}

/// Whether `account` is a reserved item rather than a slot.
pub fn is_reserved(account: &str) -> bool {
    account.starts_with('.')
}

/// Reads the inventory: one listing, then each slot item.
pub fn take(backend: &mut dyn CredentialBackend) -> Result<Inventory, StoreError> {
    let mut accounts = backend.list()?;
    accounts.retain(|account| !is_reserved(account));
    accounts.sort();
    accounts.dedup();
    let mut items = BTreeMap::new();
    for account in accounts {
        let summary = match backend.load(&account) {
            Ok(Some(item)) => Ok(ItemSummary::of(&item)),
            // Deleted since the listing.
            Ok(None) => continue,
            Err(StoreError::Corrupt { message, .. }) => Err(message),
            Err(err) => return Err(err),
        };
        items.insert(account, summary);
    }
    Ok(Inventory {
        items,
        logged_out: ledger::read(backend)?,
    })
}
