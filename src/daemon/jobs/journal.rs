//! The jobs' use of the write-ahead journal (`crate::journal`): the append (one fsync, off
//! the runtime's threads) between a rotated reply's arrival and the store write, a login's
//! append before its first store write (reported, so the core can answer the login once
//! its tokens are durable), and the retirement of a slot's entries once the store has its
//! tokens. Never decides anything about a result; a failed append is logged and the store
//! write goes on.

use std::time::Instant;

use crate::journal::Entry;
use crate::store::{StoreError, StoredCredentials, Tokens, WriteCondition};

use crate::daemon::core::reports::JobResult;
use crate::daemon::jobs::JobContext;

impl JobContext {
    /// Appends a login's tokens to the journal (fsynced) and reports whether they are
    /// there: without a journal, or when the append fails, they are not, and the login
    /// waits for its store write as it did before the journal.
    pub fn journal_login(&self, name: String, generation: u64, tokens: Tokens) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let entry = Entry {
                slot: name.clone(),
                generation,
                replaces_version: None,
                tokens,
            };
            let journaled = match ctx.append(entry).await {
                Ok(true) => {
                    tracing::debug!(
                        slot = name,
                        durable_us =
                            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                        "login tokens journaled"
                    );
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    tracing::error!(
                        slot = name,
                        "{e}; the login is answered once the keychain has its tokens"
                    );
                    false
                }
            };
            ctx.report(JobResult::LoginJournaled {
                name,
                generation,
                journaled,
            });
        });
    }

    /// Appends `entry` and fsyncs: `Ok(false)` when there is no journal this run.
    async fn append(&self, entry: Entry) -> Result<bool, String> {
        let Some(journal) = self.journal.clone() else {
            return Ok(false);
        };
        match tokio::task::spawn_blocking(move || journal.append(&entry)).await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("journal task failed: {e}")),
        }
    }

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
        match self.append(entry).await {
            Ok(true) => tracing::debug!(
                slot = name,
                durable_us = u64::try_from(arrived.elapsed().as_micros()).unwrap_or(u64::MAX),
                "rotated tokens journaled"
            ),
            Ok(false) => {}
            Err(e) => tracing::error!(slot = name, "{e}; the keychain write is the only copy"),
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

    /// A logout's delete of login `generation` ended: done, that login's entries (and older
    /// ones) are retired, not a newer login's journaled while the delete ran; refused for a
    /// newer login, the entries that login's item supersedes are.
    pub(in crate::daemon) fn settle_deleted(
        &self,
        name: &str,
        generation: u64,
        result: &Result<(), StoreError>,
    ) {
        let held = match result {
            Ok(()) => Some((generation, u64::MAX)),
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
