//! The model credential store of the simulator: an in-memory backend driven through the
//! store's own compare-and-set rules ([`crate::store::sim_rules`]), a switch that makes it
//! unavailable for a while, and the write-ahead journal (`crate::journal`) as the refresh
//! job keeps it. Its content is durable: it outlives every crash of the simulated daemon.
//!
//! Slowness is the scheduler's business (a store call completes after a random delay);
//! a write that completes after its caller gave up (the worker's "unheard" write) is not
//! modelled: an unavailable store here has not applied the call.

use std::collections::{BTreeMap, BTreeSet};

use crate::journal::{self, Entry};
use crate::store::{
    CredentialBackend, StoreError, StoreKind, StoredCredentials, Tokens, WriteCondition, sim_rules,
};

/// The raw items, as a keychain would hold them.
#[derive(Default)]
struct Items {
    items: BTreeMap<String, StoredCredentials>,
    texts: BTreeMap<String, String>,
}

impl CredentialBackend for Items {
    fn kind(&self) -> StoreKind {
        StoreKind::Keychain
    }
    fn load(&mut self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        Ok(self.items.get(slot).cloned())
    }
    fn save(&mut self, slot: &str, item: &StoredCredentials) -> Result<(), StoreError> {
        self.items.insert(slot.to_owned(), item.clone());
        Ok(())
    }
    fn delete(&mut self, slot: &str) -> Result<(), StoreError> {
        self.items.remove(slot);
        self.texts.remove(slot);
        Ok(())
    }
    fn list(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .items
            .keys()
            .chain(self.texts.keys())
            .cloned()
            .collect())
    }
    fn load_text(&mut self, account: &str) -> Result<Option<String>, StoreError> {
        Ok(self.texts.get(account).cloned())
    }
    fn save_text(&mut self, account: &str, text: &str) -> Result<(), StoreError> {
        self.texts.insert(account.to_owned(), text.to_owned());
        Ok(())
    }
}

/// The credential store and the journal, both durable.
#[derive(Default)]
pub struct ModelStore {
    items: Items,
    /// Set while the store refuses every call.
    pub down: bool,
    /// Set while a login's journal append fails (a full disk; refreshes' appends are not
    /// modelled failing: they report nothing either way).
    pub journal_full: bool,
    /// The journal's records, as the real journal holds them.
    journal: Vec<Entry>,
    /// The journal's `outstanding`: by slot, the items of entries the store has not taken
    /// yet; the file is emptied once none is left.
    outstanding: BTreeMap<String, Vec<(u64, u64)>>,
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("model store is down".to_owned())
}

impl ModelStore {
    pub fn load(&mut self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        if self.down {
            return Err(unavailable());
        }
        self.items.load(slot)
    }

    /// A compare-and-set under the real rules; a success settles the slot's journal entries.
    pub fn compare_and_set(
        &mut self,
        slot: &str,
        condition: WriteCondition,
        tokens: Tokens,
    ) -> Result<StoredCredentials, StoreError> {
        if self.down {
            return Err(unavailable());
        }
        let written = sim_rules::compare_and_set(&mut self.items, slot, condition, tokens);
        // As `crate::daemon::jobs::journal::settle_written`.
        match &written {
            Ok(item) => self.settle(slot, Some((item.generation, item.version))),
            Err(StoreError::Conflict {
                found_item: Some(found),
                ..
            }) => self.settle(slot, Some((found.generation, found.version))),
            Err(_) => {}
        }
        written
    }

    /// A restore of journaled tokens under the real rules (`restore` of the store worker).
    pub fn restore_item(
        &mut self,
        slot: &str,
        item: StoredCredentials,
    ) -> Result<StoredCredentials, StoreError> {
        if self.down {
            return Err(unavailable());
        }
        let restored = sim_rules::restore(&mut self.items, slot, item);
        match &restored {
            Ok(item) => self.settle(slot, Some((item.generation, item.version))),
            Err(StoreError::Conflict {
                found_item: Some(found),
                ..
            }) => self.settle(slot, Some((found.generation, found.version))),
            Err(_) => {}
        }
        restored
    }

    /// A logout's delete under the real rules.
    pub fn delete(&mut self, slot: &str, generation: u64) -> Result<(), StoreError> {
        if self.down {
            return Err(unavailable());
        }
        let deleted = sim_rules::delete(&mut self.items, slot, generation);
        // As `crate::daemon::jobs::journal::settle_deleted`.
        match &deleted {
            Ok(()) => self.settle(slot, Some((generation, u64::MAX))),
            Err(StoreError::Conflict {
                found_item: Some(found),
                ..
            }) => self.settle(slot, Some((found.generation, found.version))),
            Err(_) => {}
        }
        deleted
    }

    /// As `crate::journal::Journal::settle`.
    fn settle(&mut self, slot: &str, held: Option<(u64, u64)>) {
        let Some(entries) = self.outstanding.get_mut(slot) else {
            return;
        };
        entries.retain(|&item| held.is_some_and(|held| item > held));
        if entries.is_empty() {
            self.outstanding.remove(slot);
        }
        if self.outstanding.is_empty() {
            self.journal.clear();
        }
    }

    /// Journals rotated tokens before their store write (the journal never fails here).
    pub fn journal_append(&mut self, slot: &str, condition: WriteCondition, tokens: Tokens) {
        // As `crate::daemon::jobs::journal::journal_append`.
        let (generation, replaces_version) = match condition {
            WriteCondition::Exact {
                generation,
                version,
            } => (generation, Some(version)),
            WriteCondition::NewLogin { generation } => (generation, None),
        };
        let entry = Entry {
            slot: slot.to_owned(),
            generation,
            replaces_version,
            tokens,
        };
        let item = entry.item();
        (self.outstanding.entry(slot.to_owned()).or_default())
            .push((item.generation, item.version));
        self.journal.push(entry);
    }

    /// The start's replay (`crate::daemon::start::journal`): the newest entry of each slot
    /// still in `slots` is restored unless the store holds it or newer. Entries the store
    /// could not take stay for the next start.
    pub fn replay_journal(&mut self, slots: &BTreeSet<String>) -> BTreeMap<String, journal::Entry> {
        // The real selection of what to replay.
        let newest = journal::newest_per_slot(self.journal.clone());
        let mut unreplayed = BTreeSet::new();
        let mut held = BTreeMap::new();
        for (slot, entry) in newest {
            if !slots.contains(&slot) {
                continue;
            }
            if self.down {
                unreplayed.insert(slot.clone());
                held.insert(slot, entry);
                continue;
            }
            // A conflict means the store holds these tokens or newer: nothing to do.
            let _ = sim_rules::restore(&mut self.items, &slot, entry.item());
        }
        if unreplayed.is_empty() {
            self.journal.clear();
        } else {
            self.journal.retain(|e| unreplayed.contains(&e.slot));
        }
        self.outstanding = (unreplayed.into_iter())
            .map(|slot| (slot, vec![(0, 0)]))
            .collect();
        held
    }

    /// The inventory the start reconciles the state file with (`None` while down).
    pub fn inventory(&mut self) -> Option<crate::store::Inventory> {
        if self.down {
            return None;
        }
        sim_rules::inventory(&mut self.items).ok()
    }

    /// The journal's entries, by slot and item identity (for the trace).
    pub fn journal_summary(&self) -> String {
        let entries: Vec<String> = (self.journal.iter())
            .map(|e| (e.slot.clone(), e.item()))
            .map(|(slot, item)| format!("{slot} ({}, {})", item.generation, item.version))
            .collect();
        entries.join(", ")
    }

    /// Every refresh token held durably (store items and journal entries), for the checks.
    pub fn durable_refresh_tokens(&self) -> impl Iterator<Item = &str> {
        let stored = self.items.items.values().map(|i| &i.tokens);
        let journaled = self.journal.iter().map(|e| &e.tokens);
        stored.chain(journaled).map(|t| t.refresh_token.expose())
    }

    /// The item of `slot`, whatever the store's availability (for the checks).
    pub fn peek(&self, slot: &str) -> Option<&StoredCredentials> {
        self.items.items.get(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn tokens(rt: &str) -> Tokens {
        Tokens {
            access_token: Secret::new(format!("a-{rt}")),
            refresh_token: Secret::new(rt),
            expires_at: None,
            obtained_at: chrono::DateTime::UNIX_EPOCH,
            scopes: Vec::new(),
        }
    }

    #[test]
    fn a_refresh_replaces_only_the_item_it_read() {
        let mut store = ModelStore::default();
        let first = store
            .compare_and_set(
                "s",
                WriteCondition::NewLogin { generation: 3 },
                tokens("r1"),
            )
            .unwrap();
        assert_eq!((first.generation, first.version), (3, 1));
        let exact = WriteCondition::Exact {
            generation: 3,
            version: 1,
        };
        store.compare_and_set("s", exact, tokens("r2")).unwrap();
        let stale = store.compare_and_set("s", exact, tokens("r3"));
        assert!(matches!(stale, Err(StoreError::Conflict { .. })));
        assert_eq!(store.peek("s").unwrap().version, 2);
    }

    #[test]
    fn a_down_store_applies_nothing_and_a_logout_never_removes_a_newer_login() {
        let mut store = ModelStore::default();
        store
            .compare_and_set(
                "s",
                WriteCondition::NewLogin { generation: 5 },
                tokens("r1"),
            )
            .unwrap();
        store.down = true;
        assert!(matches!(
            store.delete("s", 5),
            Err(StoreError::Unavailable(_))
        ));
        store.down = false;
        assert!(matches!(
            store.delete("s", 4),
            Err(StoreError::Conflict { .. })
        ));
        store.delete("s", 5).unwrap();
        assert!(store.load("s").unwrap().is_none());
    }

    #[test]
    fn the_journal_restores_what_the_store_missed_and_is_emptied_once_stored() {
        let mut store = ModelStore::default();
        store
            .compare_and_set(
                "s",
                WriteCondition::NewLogin { generation: 1 },
                tokens("r1"),
            )
            .unwrap();
        let exact = WriteCondition::Exact {
            generation: 1,
            version: 1,
        };
        store.journal_append("s", exact, tokens("r2"));
        assert!(store.durable_refresh_tokens().any(|t| t == "r2"));
        store.replay_journal(&["s".to_owned()].into());
        assert_eq!(store.peek("s").unwrap().tokens.refresh_token.expose(), "r2");
        assert!(store.journal.is_empty());

        store.journal_append("s", exact, tokens("r3"));
        // The stored item is newer than the journaled one: the replay keeps it.
        store
            .compare_and_set(
                "s",
                WriteCondition::Exact {
                    generation: 1,
                    version: 2,
                },
                tokens("r4"),
            )
            .unwrap();
        assert!(store.journal.is_empty());
    }
}
