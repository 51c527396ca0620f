//! Snapshot writers: tasks that save the newest snapshot the manager published (the state
//! file, the quota cache) off the manager's task. Snapshots are replaced, never queued, so a
//! file always ends at the newest state however fast the manager publishes; the last
//! snapshot is saved when the manager drops its sender at shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, watch};

use crate::cache::QuotaCache;
use crate::state::StateError;

use crate::daemon::core::NumberedState;
use crate::daemon::core::reports::JobResult;

/// Saves every new snapshot from `snapshots` with `save` (a blocking function), reporting
/// each outcome with `report`, until the sender is dropped.
pub async fn run<T, O, S, R>(mut snapshots: watch::Receiver<T>, save: S, report: R)
where
    T: Clone + PartialEq + Send + Sync + 'static,
    O: Send + 'static,
    S: Fn(&T) -> Result<O, String> + Clone + Send + 'static,
    R: Fn(Result<O, String>),
{
    let mut last_saved: Option<T> = None;
    loop {
        let closed = snapshots.changed().await.is_err();
        let snapshot = snapshots.borrow_and_update().clone();
        if last_saved.as_ref() != Some(&snapshot) {
            let save = save.clone();
            let to_save = snapshot.clone();
            let result = tokio::task::spawn_blocking(move || save(&to_save))
                .await
                .unwrap_or_else(|e| Err(format!("writer task failed: {e}")));
            if result.is_ok() {
                last_saved = Some(snapshot);
            }
            report(result);
        }
        if closed {
            return;
        }
    }
}

/// The state file's writer: a compare-and-set on the file's revision, which this writer
/// tracks (starting from the revision the daemon loaded).
///
/// A file changed, restored or removed behind the daemon's back is overwritten with the
/// daemon's own state, with a warning: the daemon (the only one, by its instance lock)
/// holds the newer state, and the credential store is the record of which slots exist
/// (`crate::daemon::start::reconcile`), so the file on disk has nothing newer to offer.
pub async fn state_file(
    path: PathBuf,
    revision: u64,
    snapshots: watch::Receiver<NumberedState>,
    report: mpsc::UnboundedSender<JobResult>,
) {
    let revision = Arc::new(AtomicU64::new(revision));
    let save = move |(number, snapshot): &NumberedState| {
        let mut snapshot = snapshot.clone();
        snapshot.revision = revision.load(Ordering::SeqCst);
        let new = match snapshot.save(&path) {
            Err(StateError::Conflict {
                expected, found, ..
            }) => {
                tracing::warn!(
                    path = %path.display(),
                    expected,
                    found,
                    "the state file was changed, restored or removed behind the daemon; rewriting it with the daemon's own state"
                );
                snapshot.revision = found;
                snapshot.save(&path)
            }
            other => other,
        }
        .map_err(|e| e.to_string())?;
        revision.store(new, Ordering::SeqCst);
        Ok(*number)
    };
    run(snapshots, save, |result| {
        let _ = report.send(JobResult::StateSaved(result));
    })
    .await;
}

/// The quota cache's writer: plain atomic replacement (the daemon is its only writer).
/// After each `quota.json` it writes the statusline's `quota.lines` beside it
/// ([`crate::cache_lines`]); a failure there is only logged, since the statusline then
/// reads the JSON file, which is what this writer reports on.
pub async fn quota_cache(
    path: PathBuf,
    snapshots: watch::Receiver<QuotaCache>,
    report: mpsc::UnboundedSender<JobResult>,
) {
    let save = move |cache: &QuotaCache| {
        cache.write(&path).map_err(|e| e.to_string())?;
        if let Err(e) = crate::cache_lines::write(&path, cache) {
            tracing::warn!(error = %e, "cannot write the statusline's quota.lines; it reads quota.json instead");
        }
        Ok(cache.updated_at)
    };
    run(snapshots, save, |result| {
        let _ = report.send(JobResult::CacheSaved(result));
    })
    .await;
}
