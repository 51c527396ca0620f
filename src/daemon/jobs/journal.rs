//! The refresh job's use of the write-ahead journal (`crate::journal`): the append (one
//! fsync, off the runtime's threads) between a rotated reply's arrival and the store write,
//! and the retirement of a slot's entries once the store has its tokens. Never decides
//! anything about a result; a failed append is logged and the store write goes on.

use std::time::Instant;

use crate::journal::Entry;
use crate::store::{StoreError, Tokens, WriteCondition};

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
                durable_us = arrived.elapsed().as_micros() as u64,
                "rotated tokens journaled"
            ),
            Ok(Err(e)) => tracing::error!(slot = name, "{e}; the keychain write is the only copy"),
            Err(e) => tracing::error!(slot = name, "journal task failed: {e}"),
        }
    }

    /// The store took a slot's tokens (or holds newer ones, or deleted the item): its
    /// journal entries are retired.
    pub(in crate::daemon) fn settle_if_stored<T>(
        &self,
        name: &str,
        result: &Result<T, StoreError>,
    ) {
        if let (Some(journal), Ok(_) | Err(StoreError::Conflict { .. })) = (&self.journal, result) {
            journal.settle(name);
        }
    }
}
