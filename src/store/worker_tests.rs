//! Tests of the store worker's compare-and-set rules, over an in-memory backend and over
//! the real file backend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::store::test_support::{TempDir, item, tokens};

/// Items in a shared map, so a test can look behind the store; can be told to fail.
#[derive(Clone, Default)]
struct MemoryBackend {
    items: Arc<Mutex<HashMap<String, StoredCredentials>>>,
    texts: Arc<Mutex<HashMap<String, String>>>,
    unavailable: Arc<AtomicBool>,
    saves: Arc<AtomicUsize>,
}

impl MemoryBackend {
    fn get(&self, slot: &str) -> Option<StoredCredentials> {
        self.items.lock().unwrap().get(slot).cloned()
    }

    fn put(&self, slot: &str, item: StoredCredentials) {
        self.items.lock().unwrap().insert(slot.to_owned(), item);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "test keychain is locked".to_owned(),
            ));
        }
        Ok(())
    }
}

impl CredentialBackend for MemoryBackend {
    fn kind(&self) -> StoreKind {
        StoreKind::Keychain
    }
    fn load(&mut self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        self.check()?;
        Ok(self.get(slot))
    }
    fn save(&mut self, slot: &str, item: &StoredCredentials) -> Result<(), StoreError> {
        self.check()?;
        // Widen the window between a read and a write, were they ever to interleave.
        std::thread::yield_now();
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.put(slot, item.clone());
        Ok(())
    }
    fn delete(&mut self, slot: &str) -> Result<(), StoreError> {
        self.check()?;
        self.items.lock().unwrap().remove(slot);
        Ok(())
    }
    fn list(&mut self) -> Result<Vec<String>, StoreError> {
        self.check()?;
        let items = self
            .items
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        let texts = self
            .texts
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        Ok(items.into_iter().chain(texts).collect())
    }
    fn load_text(&mut self, account: &str) -> Result<Option<String>, StoreError> {
        self.check()?;
        Ok(self.texts.lock().unwrap().get(account).cloned())
    }
    fn save_text(&mut self, account: &str, text: &str) -> Result<(), StoreError> {
        self.check()?;
        self.texts
            .lock()
            .unwrap()
            .insert(account.to_owned(), text.to_owned());
        Ok(())
    }
}

/// A backend whose every call panics.
struct PanickingBackend;

impl CredentialBackend for PanickingBackend {
    fn kind(&self) -> StoreKind {
        StoreKind::Keychain
    }
    fn load(&mut self, _: &str) -> Result<Option<StoredCredentials>, StoreError> {
        panic!("backend bug")
    }
    fn save(&mut self, _: &str, _: &StoredCredentials) -> Result<(), StoreError> {
        panic!("backend bug")
    }
    fn delete(&mut self, _: &str) -> Result<(), StoreError> {
        panic!("backend bug")
    }
    fn list(&mut self) -> Result<Vec<String>, StoreError> {
        panic!("backend bug")
    }
    fn load_text(&mut self, _: &str) -> Result<Option<String>, StoreError> {
        panic!("backend bug")
    }
    fn save_text(&mut self, _: &str, _: &str) -> Result<(), StoreError> {
        panic!("backend bug")
    }
}

/// The same rules must hold over every backend: a memory store and a file store, each
/// already holding `slot` "work" at generation 3 version 2 (tokens tagged "old").
fn stores_with_work_at_3_2() -> Vec<(CredentialStore, Option<TempDir>)> {
    let memory = MemoryBackend::default();
    memory.put("work", item(3, 2, "old"));

    let dir = TempDir::new("worker-file");
    let mut file = FileBackend::new(dir.path("creds.json"));
    file.save("work", &item(3, 2, "old")).unwrap();

    vec![
        (CredentialStore::spawn(Box::new(memory)), None),
        (CredentialStore::spawn(Box::new(file)), Some(dir)),
    ]
}

fn assert_conflict(result: Result<StoredCredentials, StoreError>, want_found: &str) {
    match result {
        Err(StoreError::Conflict { found, .. }) => assert_eq!(found, want_found),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn exact_write_of_the_read_item_succeeds_and_bumps_the_version() {
    for (store, _dir) in stores_with_work_at_3_2() {
        let exact = WriteCondition::Exact {
            generation: 3,
            version: 2,
        };
        let written = store
            .compare_and_set("work", exact, tokens("new"))
            .await
            .unwrap();
        assert_eq!(written, item(3, 3, "new"));
        assert_eq!(store.load("work").await.unwrap(), Some(item(3, 3, "new")));
    }
}

#[tokio::test]
async fn a_stale_refresh_is_refused_and_the_newer_item_kept() {
    for (store, _dir) in stores_with_work_at_3_2() {
        for stale in [
            WriteCondition::Exact {
                generation: 3,
                version: 1,
            },
            WriteCondition::Exact {
                generation: 2,
                version: 2,
            },
        ] {
            let result = store.compare_and_set("work", stale, tokens("stale")).await;
            assert_conflict(result, "generation 3 version 2");
        }
        assert_eq!(store.load("work").await.unwrap(), Some(item(3, 2, "old")));
    }
}

#[tokio::test]
async fn a_refresh_of_a_missing_item_is_refused() {
    for (store, _dir) in stores_with_work_at_3_2() {
        let exact = WriteCondition::Exact {
            generation: 1,
            version: 1,
        };
        let result = store.compare_and_set("home", exact, tokens("x")).await;
        assert_conflict(result, "no item");
        assert_eq!(store.load("home").await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_login_replaces_an_older_generation_or_fills_an_empty_slot_at_version_1() {
    for (store, _dir) in stores_with_work_at_3_2() {
        let login = WriteCondition::NewLogin { generation: 4 };
        let written = store
            .compare_and_set("work", login, tokens("login"))
            .await
            .unwrap();
        assert_eq!(written, item(4, 1, "login"));
        assert_eq!(store.load("work").await.unwrap(), Some(item(4, 1, "login")));

        let fresh = store
            .compare_and_set("home", login, tokens("home"))
            .await
            .unwrap();
        assert_eq!(fresh, item(4, 1, "home"));
    }
}

#[tokio::test]
async fn a_login_over_the_same_or_a_newer_generation_is_refused() {
    for (store, _dir) in stores_with_work_at_3_2() {
        for generation in [3, 2] {
            let login = WriteCondition::NewLogin { generation };
            let result = store.compare_and_set("work", login, tokens("late")).await;
            assert_conflict(result, "generation 3 version 2");
        }
        assert_eq!(store.load("work").await.unwrap(), Some(item(3, 2, "old")));
    }
}

#[tokio::test]
async fn a_logout_never_deletes_a_newer_login() {
    for (store, _dir) in stores_with_work_at_3_2() {
        let err = store.delete("work", 2).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert_eq!(store.load("work").await.unwrap(), Some(item(3, 2, "old")));

        store.delete("work", 3).await.unwrap();
        assert_eq!(store.load("work").await.unwrap(), None);
        store.delete("work", 3).await.unwrap();
    }
}

#[tokio::test]
async fn a_logout_of_a_newer_generation_deletes_an_older_item() {
    for (store, _dir) in stores_with_work_at_3_2() {
        store.delete("work", 5).await.unwrap();
        assert_eq!(store.load("work").await.unwrap(), None);
    }
}

#[tokio::test]
async fn an_unavailable_backend_surfaces_and_nothing_is_written() {
    let backend = MemoryBackend::default();
    backend.put("work", item(3, 2, "old"));
    backend.unavailable.store(true, Ordering::SeqCst);
    let store = CredentialStore::spawn(Box::new(backend.clone()));
    let exact = WriteCondition::Exact {
        generation: 3,
        version: 2,
    };

    let write = store.compare_and_set("work", exact, tokens("new")).await;
    assert!(matches!(write, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        store.load("work").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.delete("work", 3).await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(backend.get("work"), Some(item(3, 2, "old")));

    backend.unavailable.store(false, Ordering::SeqCst);
    store
        .compare_and_set("work", exact, tokens("new"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_refreshes_of_one_version_exactly_one_wins() {
    let backend = MemoryBackend::default();
    backend.put("work", item(3, 2, "old"));
    let store = CredentialStore::spawn(Box::new(backend.clone()));
    let exact = WriteCondition::Exact {
        generation: 3,
        version: 2,
    };

    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .compare_and_set("work", exact, tokens(&i.to_string()))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(written) => winners.push(written),
            Err(StoreError::Conflict { found, .. }) => assert_eq!(found, "generation 3 version 3"),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    assert_eq!(winners.len(), 1);
    assert_eq!(backend.saves.load(Ordering::SeqCst), 1);
    assert_eq!(backend.get("work"), Some(winners[0].clone()));
    assert_eq!(winners[0].version, 3);
}

#[tokio::test]
async fn a_stopped_worker_is_reported_as_unavailable() {
    let (requests, inbox) = mpsc::channel();
    drop(inbox);
    let store = CredentialStore {
        requests,
        kind: StoreKind::Keychain,
        wait: STORE_WAIT,
    };
    match store.load("work").await {
        Err(StoreError::Unavailable(message)) => assert_eq!(message, WORKER_STOPPED),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_panicking_backend_is_unavailable_and_the_worker_keeps_serving() {
    let store = CredentialStore::spawn(Box::new(PanickingBackend));
    for _ in 0..2 {
        assert!(matches!(
            store.load("work").await,
            Err(StoreError::Unavailable(_))
        ));
    }
}

#[tokio::test]
async fn an_unreadable_item_blocks_a_refresh_but_not_a_login_or_logout() {
    let dir = TempDir::new("worker-corrupt");
    let path = dir.path("creds.json");
    let bad = br#"{"format":1,"slots":{"work":{"generation":"?"}}}"#;
    let store = CredentialStore::open(StoreKind::File, path.clone());
    assert_eq!(store.kind(), StoreKind::File);

    std::fs::write(&path, bad).unwrap();
    let exact = WriteCondition::Exact {
        generation: 1,
        version: 1,
    };
    let refresh = store.compare_and_set("work", exact, tokens("r")).await;
    assert!(matches!(refresh, Err(StoreError::Corrupt { .. })));

    let login = WriteCondition::NewLogin { generation: 2 };
    let written = store
        .compare_and_set("work", login, tokens("l"))
        .await
        .unwrap();
    assert_eq!(written, item(2, 1, "l"));

    std::fs::write(&path, bad).unwrap();
    store.delete("work", 1).await.unwrap();
    assert_eq!(store.load("work").await.unwrap(), None);
}

#[tokio::test]
async fn conflicts_describe_identities_never_tokens() {
    let backend = MemoryBackend::default();
    backend.put("work", item(3, 2, "SECRET"));
    let store = CredentialStore::spawn(Box::new(backend));
    let login = WriteCondition::NewLogin { generation: 3 };
    let err = store
        .compare_and_set("work", login, tokens("SECRET"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(!message.contains("SECRET"), "{message}");
    assert!(message.contains("generation 3 version 2"), "{message}");
}

#[tokio::test]
async fn items_carry_their_label_and_a_refresh_keeps_it() {
    for (store, _dir) in stores_with_work_at_3_2() {
        let label = ItemLabel {
            provider: Some("claude".to_owned()),
            account: Some("me@example.com".to_owned()),
        };
        store.label("work", label.clone());
        let login = WriteCondition::NewLogin { generation: 4 };
        let written = store
            .compare_and_set("work", login, tokens("l"))
            .await
            .unwrap();
        assert_eq!(written.provider.as_deref(), Some("claude"));
        let inventory = store.inventory().await.unwrap();
        let summary = inventory.items["work"].clone().unwrap();
        assert_eq!((summary.generation, summary.version), (4, 1));
        assert_eq!(summary.label, label);
    }
}

#[tokio::test]
async fn a_logout_is_recorded_in_the_ledger_which_the_inventory_lists_apart() {
    for (store, _dir) in stores_with_work_at_3_2() {
        let login = WriteCondition::NewLogin { generation: 1 };
        store
            .compare_and_set("home", login, tokens("h"))
            .await
            .unwrap();
        store.delete("work", 3).await.unwrap();
        // A logout of a slot with no item is recorded too.
        store.delete("gone", 7).await.unwrap();
        let inventory = store.inventory().await.unwrap();
        assert_eq!(inventory.items.keys().collect::<Vec<_>>(), ["home"]);
        let logged_out: Vec<_> = inventory.logged_out.into_iter().collect();
        assert_eq!(logged_out, [("gone".to_owned(), 7), ("work".to_owned(), 3)]);
    }
}

#[tokio::test]
async fn a_restore_replaces_only_an_older_item_or_none() {
    for (store, _dir) in stores_with_work_at_3_2() {
        for same_or_newer in [
            item(3, 2, "same"),
            item(3, 1, "older"),
            item(2, 9, "old-login"),
        ] {
            let result = store.restore("work", same_or_newer).await;
            assert_conflict(result, "generation 3 version 2");
        }
        assert_eq!(store.load("work").await.unwrap(), Some(item(3, 2, "old")));
        // Newer by version (even skipping one), by generation, or into an empty slot.
        for newer in [item(3, 4, "v4"), item(4, 1, "g4")] {
            assert_eq!(store.restore("work", newer.clone()).await.unwrap(), newer);
            assert_eq!(store.load("work").await.unwrap(), Some(newer));
        }
        let fresh = item(1, 1, "fresh");
        assert_eq!(store.restore("other", fresh.clone()).await.unwrap(), fresh);
    }
}
