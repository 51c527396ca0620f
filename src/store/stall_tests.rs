//! Tests of the store worker over a backend that stalls (a frozen keychain): callers wait a
//! bounded time, abandoned calls are skipped, and a write that lands after its caller gave
//! up never turns the caller's next write into a conflict.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::test_support::{item, tokens};
use super::*;

/// Items in a shared map; every call waits while the gate is closed.
#[derive(Clone, Default)]
struct StallingBackend {
    items: Arc<Mutex<HashMap<String, StoredCredentials>>>,
    /// (closed, calls started) and the condvar that wakes stalled calls.
    gate: Arc<(Mutex<(bool, usize)>, Condvar)>,
}

impl StallingBackend {
    fn close(&self) {
        self.gate.0.lock().unwrap().0 = true;
    }

    fn open(&self) {
        self.gate.0.lock().unwrap().0 = false;
        self.gate.1.notify_all();
    }

    /// Calls that reached the backend so far.
    fn calls(&self) -> usize {
        self.gate.0.lock().unwrap().1
    }

    fn pass(&self) {
        let (lock, wake) = &*self.gate;
        let mut state = lock.lock().unwrap();
        state.1 += 1;
        while state.0 {
            state = wake.wait(state).unwrap();
        }
    }

    fn get(&self, slot: &str) -> Option<StoredCredentials> {
        self.items.lock().unwrap().get(slot).cloned()
    }
}

impl CredentialBackend for StallingBackend {
    fn kind(&self) -> StoreKind {
        StoreKind::Keychain
    }
    fn load(&mut self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        self.pass();
        Ok(self.get(slot))
    }
    fn save(&mut self, slot: &str, item: &StoredCredentials) -> Result<(), StoreError> {
        self.pass();
        self.items
            .lock()
            .unwrap()
            .insert(slot.to_owned(), item.clone());
        Ok(())
    }
    fn delete(&mut self, slot: &str) -> Result<(), StoreError> {
        self.pass();
        self.items.lock().unwrap().remove(slot);
        Ok(())
    }
    fn list(&mut self) -> Result<Vec<String>, StoreError> {
        self.pass();
        Ok(self.items.lock().unwrap().keys().cloned().collect())
    }
    // Reserved items (the logout ledger) are not what these tests stall.
    fn load_text(&mut self, _account: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    fn save_text(&mut self, _account: &str, _text: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

const WAIT: Duration = Duration::from_millis(200);

fn exact(generation: u64, version: u64) -> WriteCondition {
    WriteCondition::Exact {
        generation,
        version,
    }
}

/// A store over a backend holding "work" at generation 3 version 2, callers waiting `WAIT`.
fn stalling_store() -> (CredentialStore, StallingBackend) {
    let backend = StallingBackend::default();
    backend
        .items
        .lock()
        .unwrap()
        .insert("work".to_owned(), item(3, 2, "old"));
    let store = CredentialStore::spawn_waiting(Box::new(backend.clone()), WAIT);
    (store, backend)
}

/// Waits (really, briefly) until the worker thread has answered or skipped everything sent
/// so far: a load through an open gate is answered after all of it.
async fn settle(store: &CredentialStore) {
    store.load("work").await.unwrap();
}

#[tokio::test]
async fn a_stalled_store_answers_unavailable_within_the_wait() {
    let (store, backend) = stalling_store();
    backend.close();
    let err = store
        .compare_and_set("work", exact(3, 2), tokens("rotated"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("did not answer")),
        "{err}"
    );
    backend.open();
}

#[tokio::test]
async fn a_write_landing_after_its_caller_gave_up_is_followed_not_refused() {
    let (store, backend) = stalling_store();
    backend.close();
    // The write of the rotated tokens stalls; its caller gives up and holds them unsaved.
    assert!(
        store
            .compare_and_set("work", exact(3, 2), tokens("t1"))
            .await
            .is_err()
    );
    backend.open();
    settle(&store).await;
    // It landed after all, unheard.
    assert_eq!(backend.get("work"), Some(item(3, 3, "t1")));
    // The caller, still at (3, 2), refreshed again: its newer tokens follow the unheard write.
    let written = store
        .compare_and_set("work", exact(3, 2), tokens("t2"))
        .await
        .unwrap();
    assert_eq!(written, item(3, 4, "t2"));
    assert_eq!(backend.get("work"), Some(item(3, 4, "t2")));
    // Heard now: the old condition is a plain conflict again.
    assert!(matches!(
        store
            .compare_and_set("work", exact(3, 2), tokens("t3"))
            .await,
        Err(StoreError::Conflict {
            found_item: Some(ItemId {
                generation: 3,
                version: 4
            }),
            ..
        })
    ));
}

#[tokio::test]
async fn queued_calls_whose_callers_gave_up_are_skipped() {
    let (store, backend) = stalling_store();
    backend.close();
    // The first write reaches the backend and stalls; two retries queue behind it and
    // time out too.
    for tag in ["t1", "t1-retry", "t1-retry-again"] {
        assert!(
            store
                .compare_and_set("work", exact(3, 2), tokens(tag))
                .await
                .is_err()
        );
    }
    assert_eq!(
        backend.calls(),
        1,
        "only the first write reached the backend"
    );
    backend.open();
    settle(&store).await;
    // Only the stalled write landed (its load and save, then `settle`'s load): the
    // abandoned retries never ran.
    assert_eq!(backend.calls(), 3);
    assert_eq!(backend.get("work"), Some(item(3, 3, "t1")));
}

#[tokio::test]
async fn a_write_of_another_identity_is_still_a_conflict_after_an_unheard_write() {
    let (store, backend) = stalling_store();
    backend.close();
    assert!(
        store
            .compare_and_set("work", exact(3, 2), tokens("t1"))
            .await
            .is_err()
    );
    backend.open();
    settle(&store).await;
    // A caller at another version (not the one that gave up) is refused as before.
    assert!(matches!(
        store
            .compare_and_set("work", exact(3, 1), tokens("x"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(backend.get("work"), Some(item(3, 3, "t1")));
}
