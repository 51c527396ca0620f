//! The refresh job's use of the write-ahead journal (`crate::journal`): the append (one
//! fsync, off the runtime's threads) between a rotated reply's arrival and the store write,
//! and the retirement of a slot's entries once the store has its tokens. Never decides
//! anything about a result; a failed append is logged and the store write goes on.

use std::time::Instant;

use crate::journal::Entry;
use crate::store::{StoreError, StoredCredentials, Tokens, WriteCondition};

use crate::daemon::jobs::JobContext;

impl JobContext {
    /// Appends rotated tokens to the journal and fsyncs, before the store write; logs how
    /// long they were held only in memory (reply arrival to durable). A failed append is
    /// logged and the store write goes on: it is then the only durable copy, as before.
    pub(in crate::daemon) async fn journal_append(
        &self,
        name: &str,
        condition: WriteCondition,
        tokens: &Tokens,
        arrived: Instant,
    ) {
        let Some(journal) = self.journal.clone() else {
            return;
        };
        let (generation, replaces_version) = match condition {
            WriteCondition::Exact {
                generation,
                version,
            } => (generation, Some(version)),
            WriteCondition::NewLogin { generation } => (generation, None),
        };
        let entry = Entry {
            slot: name.to_owned(),
            generation,
            replaces_version,
            tokens: tokens.clone(),
        };
        let appended = tokio::task::spawn_blocking(move || journal.append(&entry)).await;
        match appended {
            Ok(Ok(())) => tracing::debug!(
                slot = name,
                durable_us = u64::try_from(arrived.elapsed().as_micros()).unwrap_or(u64::MAX),
                "rotated tokens journaled"
            ),
            Ok(Err(e)) => tracing::error!(slot = name, "{e}; the keychain write is the only copy"),
            Err(e) => tracing::error!(slot = name, "journal task failed: {e}"),
        }
    }

    /// A write of a slot's tokens ended: the journal entries the store now holds (or
    /// supersedes: a conflict names the item found) are retired. A conflict with no item,
    /// or a failure, retires nothing.
    pub(in crate::daemon) fn settle_written(
        &self,
        name: &str,
        result: &Result<StoredCredentials, StoreError>,
    ) {
        let held = match result {
            Ok(item) => (item.generation, item.version),
            Err(StoreError::Conflict {
                found_item: Some(found),
                ..
            }) => (found.generation, found.version),
            Err(_) => return,
        };
        if let Some(journal) = &self.journal {
            journal.settle(name, Some(held));
        }
    }

    /// A logout's delete ended: done, the slot's entries are retired; refused for a newer
    /// login, the entries that login's item supersedes are.
    pub(in crate::daemon) fn settle_deleted(&self, name: &str, result: &Result<(), StoreError>) {
        let held = match result {
            Ok(()) => None,
            Err(StoreError::Conflict {
                found_item: Some(found),
                ..
            }) => Some((found.generation, found.version)),
            Err(_) => return,
        };
        if let Some(journal) = &self.journal {
            journal.settle(name, held);
        }
    }
}
