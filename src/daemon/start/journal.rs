//! The journal at daemon start (`crate::journal`): reads (or creates) its key in the
//! keychain, replays what a previous daemon journaled but did not store, and opens the
//! journal for this run. Runs before any credential is loaded, so the newest tokens are in
//! the store before anything reads it. Without a key (keychain unreachable or the key item
//! malformed) or with `credential_store: file` there is no journal this run: said once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::journal::{self, Journal, JournalKey};
use crate::state::StateFile;
use crate::store::{CredentialStore, StoreError, StoreKind, read_or_create_item};

/// How long the start waits for the keychain (the key, then the replay): a keychain that
/// does not answer must not keep the daemon from starting.
const KEYCHAIN_AT_START: Duration = Duration::from_secs(10);

/// Opens the journal of this run, replaying the previous one first.
pub async fn open(
    kind: StoreKind,
    state_dir: &Path,
    store: &CredentialStore,
    state: &StateFile,
) -> Option<Arc<Journal>> {
    if kind != StoreKind::Keychain {
        return None;
    }
    let key = match tokio::time::timeout(KEYCHAIN_AT_START, read_key()).await {
        Ok(Ok(key)) => key,
        Err(_) => {
            tracing::warn!(
                "no write-ahead journal this run: the keychain did not answer within {} s; a rotated token is durable only once the keychain has it",
                KEYCHAIN_AT_START.as_secs()
            );
            return None;
        }
        Ok(Err(why)) => {
            tracing::warn!(
                "no write-ahead journal this run: {why}; a rotated token is durable only once the keychain has it"
            );
            return None;
        }
    };
    let path = state_dir.join(journal::FILE_NAME);
    let unreplayed = match tokio::time::timeout(
        KEYCHAIN_AT_START,
        replay(&path, &key, store, state),
    )
    .await
    {
        Ok(unreplayed) => unreplayed,
        Err(_) => {
            tracing::error!(
                "journal: the keychain did not answer within {} s; the entries are kept for the next start",
                KEYCHAIN_AT_START.as_secs()
            );
            journal::read(&path, &key)
                .map(|c| journal::newest_per_slot(c.entries).into_keys().collect())
                .unwrap_or_default()
        }
    };
    match Journal::open(&path, &key, unreplayed) {
        Ok(journal) => Some(Arc::new(journal)),
        Err(e) => {
            tracing::error!("no write-ahead journal this run: {e}");
            None
        }
    }
}

async fn read_key() -> Result<JournalKey, String> {
    let text = tokio::task::spawn_blocking(|| {
        read_or_create_item(journal::KEY_ACCOUNT, || JournalKey::generate().encode())
    })
    .await
    .map_err(|e| format!("key task failed: {e}"))?
    .map_err(|e| e.to_string())?;
    JournalKey::decode(&text).map_err(|e| e.to_string())
}

/// Stores the newest journaled tokens of each slot the state file still has, unless the
/// store holds them or newer already, by (generation, version). Returns the slots whose
/// entries could not be stored: they stay in the journal for the next start. An unreadable
/// journal is moved aside after what could be read was used.
async fn replay(
    path: &Path,
    key: &JournalKey,
    store: &CredentialStore,
    state: &StateFile,
) -> Vec<String> {
    let contents = match journal::read(path, key) {
        Ok(contents) => contents,
        Err(e) => {
            tracing::error!("cannot read the write-ahead journal: {e}");
            return Vec::new();
        }
    };
    let mut unreplayed = Vec::new();
    for (slot, entry) in journal::newest_per_slot(contents.entries) {
        if !state.slots.contains_key(&slot) {
            tracing::info!(slot, "journal: the slot is gone; its entry is dropped");
            continue;
        }
        match store.restore(&slot, entry.item()).await {
            Ok(item) => tracing::warn!(
                slot,
                generation = item.generation,
                version = item.version,
                "journal: stored tokens the previous daemon received but had not stored"
            ),
            Err(StoreError::Conflict { .. }) => {
                tracing::debug!(slot, "journal: the store holds these tokens or newer");
            }
            Err(e) => {
                tracing::error!(slot, "journal: {e}; the entry is kept for the next start");
                unreplayed.push(slot);
            }
        }
    }
    if let Some(problem) = contents.problem {
        set_aside(path, &problem);
        return Vec::new();
    }
    if unreplayed.is_empty() {
        let _ = std::fs::write(path, b"");
    }
    unreplayed
}

/// Moves an unreadable journal out of the way (kept for inspection, still sealed).
fn set_aside(path: &Path, problem: &str) {
    let aside = path.with_extension(format!("unreadable-{}", chrono::Utc::now().timestamp()));
    match std::fs::rename(path, &aside) {
        Ok(()) => tracing::error!(
            "write-ahead journal partly unreadable: {problem}; moved to {}",
            aside.display()
        ),
        Err(e) => tracing::error!(
            "write-ahead journal partly unreadable: {problem}; cannot move it aside: {e}"
        ),
    }
}
