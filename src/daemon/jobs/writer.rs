//! Snapshot writers: tasks that save the newest snapshot the manager published (the state
//! file, the quota cache) off the manager's task. Snapshots are replaced, never queued, so a
//! file always ends at the newest state however fast the manager publishes; the last
//! snapshot is saved when the manager drops its sender at shutdown. The state file is saved
//! as deltas in its log (`crate::state_log`, `super::state_saver`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::cache::QuotaCache;

use crate::daemon::core::NumberedState;
use crate::daemon::core::reports::JobResult;
use crate::daemon::jobs::state_saver::StateSaver;

/// The quota cache is written at most once per this interval: at 1,000 slots a usage result
/// arrives every few hundred milliseconds, and each write is the whole cache. A change after
/// a quiet spell is written at once; changes close behind a write gather into the next one.
/// Readers judge staleness by minutes; the state file is never delayed (replies wait on it).
pub const CACHE_COALESCE: Duration = Duration::from_secs(1);

/// Saves every new snapshot from `snapshots` with `save` (a blocking function), reporting
/// each outcome with `report`, then the blocking work `tidy` hands out, if any (work that
/// must not delay the report), until the sender is dropped. Writes are at least `coalesce`
/// apart: a change sooner after a write waits, gathering others, unless the sender is gone.
pub async fn run<T, O, S, R, D, J>(
    mut snapshots: watch::Receiver<T>,
    coalesce: Duration,
    save: S,
    report: R,
    tidy: D,
) where
    T: Clone + PartialEq + Send + Sync + 'static,
    O: Send + 'static,
    S: Fn(&T) -> Result<O, String> + Clone + Send + 'static,
    R: Fn(Result<O, String>),
    D: Fn() -> Option<J>,
    J: FnOnce() + Send + 'static,
{
    let mut last_saved: Option<T> = None;
    let mut last_write: Option<tokio::time::Instant> = None;
    loop {
        let mut closed = snapshots.changed().await.is_err();
        // Gathers changes until `coalesce` after the last write, or until the manager drops
        // its sender (shutdown): then it saves at once.
        let deadline = last_write.map_or_else(tokio::time::Instant::now, |at| at + coalesce);
        while !closed && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, snapshots.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => closed = true,
                Err(_) => break,
            }
        }
        let snapshot = snapshots.borrow_and_update().clone();
        if last_saved.as_ref() != Some(&snapshot) {
            let save = save.clone();
            let to_save = snapshot.clone();
            last_write = Some(tokio::time::Instant::now());
            let result = tokio::task::spawn_blocking(move || save(&to_save))
                .await
                .unwrap_or_else(|e| Err(format!("writer task failed: {e}")));
            if result.is_ok() {
                last_saved = Some(snapshot);
            }
            report(result);
            if let Some(job) = tidy() {
                let _ = tokio::task::spawn_blocking(job).await;
            }
        }
        if closed {
            return;
        }
    }
}

/// The state file's writer: each snapshot saved as a delta in the state file's log, the
/// log compacted into the file after the save is reported ([`StateSaver`]), and at the end
/// (a graceful stop) folded into the file.
pub async fn state_file(
    path: PathBuf,
    revision: u64,
    snapshots: watch::Receiver<NumberedState>,
    report: mpsc::UnboundedSender<JobResult>,
) {
    let loaded = snapshots.borrow().1.clone();
    let saver = Arc::new(Mutex::new(StateSaver::new(path, revision, loaded)));
    // Set by a save after which the log has outgrown its bound: only then is there a
    // compaction to start (no thread hop after the other saves).
    let due = Arc::new(AtomicBool::new(false));
    let (saving, due_after) = (Arc::clone(&saver), Arc::clone(&due));
    let save = move |(number, snapshot): &NumberedState| {
        let mut saver = saving.lock().unwrap_or_else(PoisonError::into_inner);
        saver.save(snapshot).map_err(|e| e.to_string())?;
        due_after.store(saver.compaction_due(), Ordering::Relaxed);
        Ok(*number)
    };
    let tidying = Arc::clone(&saver);
    let tidy = move || {
        let saver = Arc::clone(&tidying);
        (due.swap(false, Ordering::Relaxed))
            .then_some(move || saver.lock().unwrap_or_else(PoisonError::into_inner).tidy())
    };
    run(
        snapshots,
        Duration::ZERO,
        save,
        |result| {
            let _ = report.send(JobResult::StateSaved(result));
        },
        tidy,
    )
    .await;
    let finish = move || {
        saver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finish();
    };
    let _ = tokio::task::spawn_blocking(finish).await;
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
    let report = move |result| {
        let _ = report.send(JobResult::CacheSaved(result));
    };
    run(snapshots, CACHE_COALESCE, save, report, || None::<fn()>).await;
}

#[cfg(test)]
mod tests {

    use super::*;

    /// Runs a writer over a channel of numbers with `coalesce`; returns the sender and what
    /// was saved so far.
    fn writer(
        coalesce: Duration,
    ) -> (
        watch::Sender<u32>,
        Arc<Mutex<Vec<u32>>>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = watch::channel(0);
        let saved = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&saved);
        let save = move |n: &u32| {
            log.lock().unwrap().push(*n);
            Ok(())
        };
        let task = tokio::spawn(run(
            rx,
            coalesce,
            save,
            |_: Result<(), String>| {},
            || None::<fn()>,
        ));
        (tx, saved, task)
    }

    #[tokio::test(start_paused = true)]
    async fn changes_close_behind_a_write_make_one_write_of_the_newest() {
        let (tx, saved, task) = writer(CACHE_COALESCE);
        tx.send_replace(1);
        while saved.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        for n in 2..=5 {
            tx.send_replace(n);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(CACHE_COALESCE).await;
        assert_eq!(*saved.lock().unwrap(), [1, 5]);
        drop(tx);
        task.await.unwrap();
        assert_eq!(*saved.lock().unwrap(), [1, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_sender_saves_the_last_snapshot_at_once() {
        let (tx, saved, task) = writer(Duration::from_secs(3600));
        tx.send_replace(7);
        drop(tx);
        task.await.unwrap();
        assert_eq!(*saved.lock().unwrap(), [7]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_after_a_quiet_spell_is_written_without_waiting() {
        let (tx, saved, task) = writer(CACHE_COALESCE);
        let started = tokio::time::Instant::now();
        tx.send_replace(1);
        while saved.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(tokio::time::Instant::now(), started, "no time passed");
        drop(tx);
        task.await.unwrap();
        assert_eq!(*saved.lock().unwrap(), [1]);
    }
}
