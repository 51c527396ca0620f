//! The state writer: a task that saves the newest state snapshot the manager published, off
//! the manager's task. Snapshots are replaced, never queued, so the file always ends at the
//! newest state; each save is a compare-and-set on the file's revision (see
//! [`crate::state`]), so a file changed behind the daemon's back is not overwritten.

use std::path::PathBuf;

use tokio::sync::{mpsc, watch};

use crate::state::StateFile;

use super::jobs::JobResult;

/// Saves snapshots from `snapshots` to `path` until the sender is dropped, then saves the
/// last one. `revision` is the revision of the file as loaded.
pub async fn run(
    path: PathBuf,
    mut revision: u64,
    mut snapshots: watch::Receiver<StateFile>,
    report: mpsc::UnboundedSender<JobResult>,
) {
    let mut last_saved: Option<StateFile> = None;
    loop {
        let closed = snapshots.changed().await.is_err();
        let mut snapshot = snapshots.borrow_and_update().clone();
        snapshot.revision = revision;
        if last_saved.as_ref() != Some(&snapshot) {
            let target = path.clone();
            let to_save = snapshot.clone();
            let result = tokio::task::spawn_blocking(move || to_save.save(&target))
                .await
                .map_err(|e| format!("state writer failed: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string()));
            match result {
                Ok(new_revision) => {
                    revision = new_revision;
                    snapshot.revision = new_revision;
                    last_saved = Some(snapshot);
                    let _ = report.send(JobResult::StateSaved(Ok(())));
                }
                Err(e) => {
                    let _ = report.send(JobResult::StateSaved(Err(e)));
                }
            }
        }
        if closed {
            return;
        }
    }
}
