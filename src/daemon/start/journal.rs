//! The journal at daemon start (`crate::journal`): reads (or creates) its key in the
//! keychain, replays what a previous daemon journaled but did not store, and opens the
//! journal for this run. Runs before any credential is loaded, so the newest tokens are in
//! the store before anything reads it. Without a key (keychain unreachable or the key item
//! malformed) or with `credential_store: file` there is no journal this run: said once.
//!
//! Entries the store could not take now (it is down) stay in the journal, and their tokens
//! go to the manager ([`Opened::held`]): the slot starts from them, not from the older item
//! the store holds, whose refresh token was already spent.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::journal::{self, Entry, Journal, JournalKey};
use crate::state::StateFile;
use crate::store::{CredentialStore, StoreError, StoreKind, read_or_create_item};

/// How long the start waits for the keychain (the key, then the replay): a keychain that
/// does not answer must not keep the daemon from starting.
const KEYCHAIN_AT_START: Duration = Duration::from_secs(10);

/// The journal of this run, and the newest entry of each slot the replay could not store.
#[derive(Default)]
pub struct Opened {
    pub journal: Option<Arc<Journal>>,
    pub held: BTreeMap<String, Entry>,
}

/// Opens the journal of this run, replaying the previous one first.
pub async fn open(
    kind: StoreKind,
    state_dir: &Path,
    store: &CredentialStore,
    state: &StateFile,
) -> Opened {
    if kind != StoreKind::Keychain {
        return Opened::default();
    }
    let key = match tokio::time::timeout(KEYCHAIN_AT_START, read_key()).await {
        Ok(Ok(key)) => key,
        Err(_) => {
            tracing::warn!(
                "no write-ahead journal this run: the keychain did not answer within {} s; a rotated token is durable only once the keychain has it",
                KEYCHAIN_AT_START.as_secs()
            );
            return Opened::default();
        }
        Ok(Err(why)) => {
            tracing::warn!(
                "no write-ahead journal this run: {why}; a rotated token is durable only once the keychain has it"
            );
            return Opened::default();
        }
    };
    let path = state_dir.join(journal::FILE_NAME);
    let replayed = tokio::time::timeout(KEYCHAIN_AT_START, replay(&path, &key, store, state)).await;
    let unreplayed = if let Ok(unreplayed) = replayed {
        unreplayed
    } else {
        tracing::error!(
            "journal: the keychain did not answer within {} s; the entries are kept for the next start",
            KEYCHAIN_AT_START.as_secs()
        );
        journal::read(&path, &key)
            .map(|c| journal::newest_per_slot(c.entries))
            .unwrap_or_default()
            .into_iter()
            .filter(|(slot, _)| state.slots.contains_key(slot) && !in_claude_code(state, slot))
            .collect()
    };
    let kept: Vec<String> = unreplayed.keys().cloned().collect();
    match Journal::open(&path, &key, kept) {
        Ok(journal) => Opened {
            journal: Some(Arc::new(journal)),
            held: unreplayed,
        },
        Err(e) => {
            tracing::error!("no write-ahead journal this run: {e}");
            Opened {
                journal: None,
                held: unreplayed,
            }
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
/// store holds them or newer already, by (generation, version). Returns the entries that
/// could not be stored, by slot: they stay in the journal for the next start, and this run
/// starts those slots from them. An unreadable journal is moved aside after what could be
/// read was used.
async fn replay(
    path: &Path,
    key: &JournalKey,
    store: &CredentialStore,
    state: &StateFile,
) -> BTreeMap<String, Entry> {
    let contents = match journal::read(path, key) {
        Ok(contents) => contents,
        Err(e) => {
            tracing::error!("cannot read the write-ahead journal: {e}");
            return BTreeMap::new();
        }
    };
    let mut unreplayed = BTreeMap::new();
    for (slot, entry) in journal::newest_per_slot(contents.entries) {
        if !state.slots.contains_key(&slot) {
            tracing::info!(slot, "journal: the slot is gone; its entry is dropped");
            continue;
        }
        if in_claude_code(state, &slot) {
            tracing::info!(
                slot,
                "journal: the slot's login lives in Claude Code's store now; its entry is dropped"
            );
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
                tracing::error!(
                    slot,
                    "journal: {e}; the entry is kept, and the slot starts from its tokens"
                );
                unreplayed.insert(slot, entry);
            }
        }
    }
    if let Some(problem) = contents.problem {
        set_aside(path, &problem);
        return BTreeMap::new();
    }
    if unreplayed.is_empty() {
        let _ = std::fs::write(path, b"");
    }
    unreplayed
}

/// Whether `slot`'s login lives in Claude Code's store (a `use` moved it there), so an
/// entry of its time in sessctl's store is an old copy, never put back. The outgoing slot
/// of a move still under way is not: its entry is the copy the move is making.
fn in_claude_code(state: &StateFile, slot: &str) -> bool {
    let outgoing = state.moving.as_ref().and_then(|m| m.outgoing.as_deref());
    (state.slots.get(slot)).is_some_and(|r| r.claude_code.is_some()) && outgoing != Some(slot)
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
