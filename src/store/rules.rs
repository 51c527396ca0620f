//! The compare-and-set rules, once, for every backend (run on the store worker's thread,
//! [`super::worker`], which serializes them):
//! - a refresh (`WriteCondition::Exact`) replaces only exactly the item it read;
//! - a login (`WriteCondition::NewLogin`) replaces only an absent item or an older login;
//! - a logout (`delete`) never removes a newer login, and is recorded in the logout
//!   ledger (`super::ledger`) before the item goes;
//! - a journal replay (`restore`) replaces only an older item or none.
//!
//! Every item written carries its slot's label (provider, account) as last told, or else
//! the label of the item it replaces. An item that cannot be parsed has no generation to
//! protect: a login may replace it and a logout may remove it (both are explicit user
//! actions and the only way out), but a refresh may not.

use super::worker::Unheard;
use super::{
    CredentialBackend, ItemId, ItemLabel, StoreError, StoredCredentials, Tokens, WriteCondition,
    ledger,
};

pub(super) fn compare_and_set(
    backend: &mut dyn CredentialBackend,
    slot: &str,
    condition: WriteCondition,
    tokens: Tokens,
    unheard: Option<&Unheard>,
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
    let follows_unheard = unheard.is_some_and(|u| {
        u.condition == condition && current.as_ref().map(ItemId::of) == Some(u.written)
    });
    let (generation, version) = match (&current, follows_unheard) {
        // The item is this caller's own write it never heard of: these tokens follow it.
        (Some(found), true) => (found.generation, next_version(slot, found.version)?),
        _ => next_identity(slot, condition, current.as_ref())?,
    };
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

pub(super) fn delete(
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

pub(super) fn restore(
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

impl ItemId {
    /// The identity of `item`.
    pub(super) fn of(item: &StoredCredentials) -> Self {
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
