//! Reconciles the state file's slot list with the credential store at start. The store is
//! the source of truth for which slots exist (an item under service `sessctl` per slot,
//! plus the logout ledger); the state file holds their non-secret metadata. So:
//! - an item with no slot is adopted back as a slot (logged at warn), from the provider
//!   and account the item carries; one that carries none (written by an older sessctl) or
//!   cannot be read is listed in `status` with the command that fixes it;
//! - a slot the ledger says was logged out is dropped, whatever an old state file says;
//! - a slot whose item is gone stays, and says so when its load finds nothing
//!   (`credentials_missing`);
//! - login generations continue above every generation the store has seen.
//!
//! Pure over a [`StateFile`] and an [`Inventory`]; never sees a token.

use chrono::{DateTime, Utc};

use crate::account::AccountKey;
use crate::protocol::UnplacedCredential;
use crate::state::{ItemVersion, SlotRecord, SlotState, StateFile};
use crate::store::{CredentialStore, Inventory, ItemLabel, ItemSummary, StoredCredentials};

/// How long start-up waits for the store's inventory before going on with the state file's
/// list: long enough for a slow keyring over many items, short enough that a keyring
/// waiting on an unlock prompt does not keep the daemon from answering.
const INVENTORY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// What reconciling changed.
#[derive(Debug, Default, PartialEq)]
pub struct Reconciled {
    /// Slots adopted from items the state file did not list.
    pub adopted: Vec<String>,
    /// Slots the state file listed that were logged out.
    pub dropped: Vec<String>,
    /// Items that could not be placed: shown in `status` and `doctor`.
    pub unplaced: Vec<UnplacedCredential>,
    /// Whether `next_generation` had to move up.
    pub generation_raised: bool,
}

impl Reconciled {
    /// Whether the state must be saved.
    pub fn changed(&self) -> bool {
        !self.adopted.is_empty() || !self.dropped.is_empty() || self.generation_raised
    }
}

/// Reads the store's inventory and reconciles `state` with it; tells the store each
/// slot's label. When the store cannot be read, the state file's list stands (warned).
pub async fn at_start(store: &CredentialStore, state: &mut StateFile) -> Reconciled {
    let reconciled = match tokio::time::timeout(INVENTORY_TIMEOUT, store.inventory()).await {
        Ok(Ok(inventory)) => reconcile(state, &inventory, Utc::now()),
        Ok(Err(e)) => {
            tracing::warn!(
                "cannot list the credential store ({e}); the slots are as the state file lists them"
            );
            Reconciled::default()
        }
        Err(_) => {
            tracing::warn!(
                "the credential store did not list its items within {}s (locked, waiting on a prompt?); the slots are as the state file lists them",
                INVENTORY_TIMEOUT.as_secs()
            );
            Reconciled::default()
        }
    };
    for (name, record) in &state.slots {
        store.label(name, label_of(record));
    }
    reconciled
}

/// The label items of this slot carry.
pub fn label_of(record: &SlotRecord) -> ItemLabel {
    ItemLabel {
        provider: Some(record.provider.clone()),
        account: record.account.clone(),
    }
}

/// Applies the store's word to `state` (see the module docs).
pub fn reconcile(state: &mut StateFile, inventory: &Inventory, now: DateTime<Utc>) -> Reconciled {
    let mut out = Reconciled::default();
    drop_logged_out(state, inventory, &mut out);
    adopt_orphans(state, inventory, now, &mut out);
    let newest_seen = inventory
        .items
        .values()
        .filter_map(|item| item.as_ref().ok().map(|i| i.generation))
        .chain(inventory.logged_out.values().copied())
        .max()
        .unwrap_or(0);
    if state.next_generation <= newest_seen {
        state.next_generation = newest_seen + 1;
        out.generation_raised = true;
    }
    out
}

/// The newest generation of `name` that was logged out (0: none).
fn logged_out(inventory: &Inventory, name: &str) -> u64 {
    inventory.logged_out.get(name).copied().unwrap_or(0)
}

/// Drops the slots the ledger says were logged out (unless a newer login holds the item,
/// whose label the record then takes).
fn drop_logged_out(state: &mut StateFile, inventory: &Inventory, out: &mut Reconciled) {
    state.slots.retain(|name, record| {
        let item = inventory.items.get(name).and_then(|item| item.as_ref().ok());
        let item_generation = item.map_or(0, |item| item.generation);
        if let Some(item) = item.filter(|item| item.generation > record.generation) {
            relabel(name, record, item);
        }
        let ended = logged_out(inventory, name);
        let gone = record.generation <= ended && item_generation <= ended;
        if gone {
            tracing::info!(
                slot = name,
                generation = record.generation,
                "the state file lists a slot that was logged out (restored from a backup?); dropping it"
            );
            out.dropped.push(name.clone());
        }
        !gone
    });
}

/// Adopts every item that has no slot and names its provider; lists the others.
fn adopt_orphans(
    state: &mut StateFile,
    inventory: &Inventory,
    now: DateTime<Utc>,
    out: &mut Reconciled,
) {
    for (name, item) in &inventory.items {
        if state.slots.contains_key(name) {
            continue;
        }
        match item {
            Ok(item) if item.generation <= logged_out(inventory, name) => tracing::warn!(
                slot = name,
                "a credential item of a logged-out login is still stored; ignoring it"
            ),
            Ok(ItemSummary {
                generation,
                label:
                    ItemLabel {
                        provider: Some(provider),
                        account,
                    },
                ..
            }) => {
                tracing::warn!(
                    slot = name,
                    provider,
                    "the credential store holds a slot the state file does not list; adopting it back"
                );
                let record = adopted_record(provider, account.as_deref(), *generation, now);
                state.slots.insert(name.clone(), record);
                out.adopted.push(name.clone());
            }
            Ok(_) => out.unplaced.push(unplaced(
                name,
                "it does not say which provider it belongs to (written by an older sessctl)",
            )),
            Err(message) => out
                .unplaced
                .push(unplaced(name, &format!("it cannot be read: {message}"))),
        }
    }
}

/// A newer login than the record's holds the item (the state file is older): the item's
/// label says whose it is.
fn relabel(name: &str, record: &mut SlotRecord, item: &ItemSummary) {
    if let Some(provider) = &item.label.provider {
        tracing::warn!(
            slot = name,
            "the state file is older than the slot's credential item; taking the item's provider and account"
        );
        record.provider.clone_from(provider);
        record.account.clone_from(&item.label.account);
        record.account_key = item
            .label
            .account
            .as_deref()
            .and_then(|label| AccountKey::from_label(provider, label));
    }
}

fn adopted_record(
    provider: &str,
    account: Option<&str>,
    generation: u64,
    now: DateTime<Utc>,
) -> SlotRecord {
    SlotRecord {
        provider: provider.to_owned(),
        account: account.map(str::to_owned),
        account_key: account.and_then(|label| AccountKey::from_label(provider, label)),
        state: SlotState::Active,
        reason: None,
        generation,
        created_at: now,
        last_refresh_at: None,
        last_refresh_error: None,
        refreshes: 0,
        newest_written: None,
        claude_code: None,
    }
}

fn unplaced(name: &str, why: &str) -> UnplacedCredential {
    tracing::warn!(
        slot = name,
        "a credential item matches no slot and cannot be adopted: {why}"
    );
    UnplacedCredential {
        name: name.to_owned(),
        problem: format!("credential item {name} matches no slot: {why}"),
        fix: format!("sessctl login {name} --provider <provider> (replaces the item)"),
    }
}

/// The identity of a stored item.
pub fn version_of(item: &StoredCredentials) -> ItemVersion {
    ItemVersion {
        generation: item.generation,
        version: item.version,
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
