//! The state file's saver, behind the state writer (`super::writer`): each snapshot the
//! manager publishes is saved as a delta over the last one saved (`crate::state_log`), so a
//! save costs what the event changed; the log is compacted into the state file after a
//! save's outcome is reported, off the reply path. Blocking: runs on the blocking pool.

use std::path::PathBuf;

use crate::daemon::core::snapshot::StateSnapshot;
use crate::state::StateError;
use crate::state_log::writer::LogWriter;

/// The state file and log, and the snapshot they hold.
pub struct StateSaver {
    path: PathBuf,
    /// Opened at the first save (an error then is that save's error, and retried).
    log: Option<LogWriter>,
    /// The revision the daemon loaded, until the log is open.
    loaded: u64,
    /// The snapshot the files hold: what the next delta is taken against.
    durable: StateSnapshot,
}

impl StateSaver {
    /// A saver for the state file at `path`, which holds `loaded` at `revision`.
    pub fn new(path: PathBuf, revision: u64, loaded: StateSnapshot) -> Self {
        StateSaver {
            path,
            log: None,
            loaded: revision,
            durable: loaded,
        }
    }

    /// Saves `snapshot`; returns the new revision. A state file or log changed, restored
    /// or removed behind the daemon's back is overwritten with the daemon's own state, with
    /// a warning: the daemon (the only one, by its instance lock) holds the newer state,
    /// and the credential store is the record of which slots exist
    /// (`crate::daemon::start::reconcile`), so the files have nothing newer to offer.
    pub fn save(&mut self, snapshot: &StateSnapshot) -> Result<u64, StateError> {
        let log = match &mut self.log {
            Some(log) => log,
            none @ None => none.insert(LogWriter::open(&self.path, self.loaded)?),
        };
        let (durable, path) = (&self.durable, &self.path);
        let saved = log.save(
            |base, after| snapshot.delta_since(durable, base, after),
            |revision| full(snapshot, path, revision),
        );
        let revision = match saved {
            Err(StateError::Conflict {
                expected, found, ..
            }) => {
                tracing::warn!(
                    path = %path.display(),
                    expected,
                    found,
                    "the state file was changed, restored or removed behind the daemon; rewriting it with the daemon's own state"
                );
                crate::state_log::keep_unreadable_tail(path)?;
                // Past both: a revision is never reused, whatever the file was set back to.
                let next = found.max(expected) + 1;
                log.write_full_at(next, &full(snapshot, path, next)?)?
            }
            other => other?,
        };
        self.durable = snapshot.clone();
        Ok(revision)
    }

    /// Whether the log has outgrown its bound, so [`StateSaver::tidy`] has work to do.
    pub fn compaction_due(&self) -> bool {
        self.log.as_ref().is_some_and(LogWriter::needs_compaction)
    }

    /// Compacts the log into the state file once it has outgrown its bound; a failure is
    /// logged, and the next save or compaction tries again.
    pub fn tidy(&mut self) {
        if self.compaction_due() {
            self.compact();
        }
    }

    /// At a graceful stop: folds any log into the state file, so the file alone holds the
    /// whole state (for an older sessctl, a backup, a reader that knows no log).
    pub fn finish(&mut self) {
        if self.log.is_none() {
            // No save since start: the log may still hold the last run's deltas.
            match LogWriter::open(&self.path, self.loaded) {
                Ok(log) => self.log = Some(log),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fold the state log into the state file");
                    return;
                }
            }
        }
        if self.log.as_ref().is_some_and(|log| !log.is_empty()) {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let (durable, path) = (&self.durable, &self.path);
        if let Err(e) = log.compact(|revision| full(durable, path, revision)) {
            tracing::warn!(error = %e, "cannot compact the state log; trying again after the next save");
        }
    }
}

/// The whole state file of `snapshot` at `revision`.
fn full(
    snapshot: &StateSnapshot,
    path: &std::path::Path,
    revision: u64,
) -> Result<Vec<u8>, StateError> {
    snapshot
        .to_json(revision)
        .map_err(|err| StateError::Corrupt {
            path: path.to_path_buf(),
            message: format!("cannot serialize: {err}"),
        })
}

#[cfg(all(test, unix))]
#[path = "state_saver_tests.rs"]
mod tests;
