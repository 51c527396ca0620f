//! Writing the state file and its log ([`super`]): a save appends a delta and fdatasyncs
//! the log; a full write (the first save, a save after a failed append, a compaction)
//! replaces the state file atomically and then empties the log. One writer at a time (the
//! daemon's, under its instance lock).
//!
//! The compare-and-set: the writer remembers the identity (device, inode, size, mtime) of
//! the state file and of the log as it last wrote or read them, and checks both before
//! every write, one `stat` each. A file edited, restored or removed behind the writer's
//! back no longer matches, and the write is refused with [`StateError::Conflict`] (the
//! daemon then warns and rewrites the state whole, [`LogWriter::write_full_at`]). This is
//! stricter than comparing revisions (an edit that keeps the revision is noticed too) and
//! costs no read of the file. Like the revision check before it, it is not atomic against
//! another process: the instance lock keeps other writers away.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Delta, encode, keep_unreadable_tail, log_path, read};
use crate::fsutil;
use crate::state::StateError;

/// The log is compacted once it is larger than the state file, and at least this large:
/// a small state file is cheap to rewrite, but not on every few saves. With the bound
/// proportional to the state file, the cost of compaction per save stays flat however
/// many slots there are.
pub const MIN_COMPACT_BYTES: u64 = 64 * 1024;

/// What tells one version of a file from another without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileId {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (metadata.dev(), metadata.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        FileId {
            dev,
            ino,
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

/// The identity of the file at `path`; `None` when there is none.
fn identity(path: &Path) -> Result<Option<FileId>, StateError> {
    match std::fs::metadata(path) {
        Ok(metadata) => Ok(Some(FileId::of(&metadata))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io("inspect", path, source)),
    }
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The state file and its log, open for saving.
pub struct LogWriter {
    path: PathBuf,
    log: PathBuf,
    file: File,
    base_id: Option<FileId>,
    log_id: Option<FileId>,
    /// The revision of the state file itself (the log's deltas start there).
    base_revision: u64,
    /// The revision of the state with the log applied: what the next save follows.
    revision: u64,
    /// Whether the next save must be a full write: the log may not end where this writer
    /// last left it (a log found non-empty, a failed append or truncation), or there is no
    /// state file for deltas to follow.
    needs_full: bool,
}

impl LogWriter {
    /// Opens the log beside the state file at `path`, whose state (log applied) was loaded
    /// at `revision`. A log that holds records not applied at load (garbled, or another
    /// file's) is copied aside first (`state.json.log.bad-<seconds>`), since the first save
    /// empties it.
    pub fn open(path: &Path, revision: u64) -> Result<Self, StateError> {
        let log = log_path(path);
        let bytes = read(&log)?;
        keep_unreadable_tail(path)?;
        let existed = log.exists();
        let file = fsutil::private_file_options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|source| io("open", &log, source))?;
        if !existed {
            fsutil::sync_parent_dir(&log).map_err(|source| io("create", &log, source))?;
        }
        let base_id = identity(path)?;
        Ok(LogWriter {
            path: path.to_path_buf(),
            log_id: identity(&log)?,
            log,
            file,
            needs_full: !bytes.is_empty() || base_id.is_none(),
            base_id,
            base_revision: revision,
            revision,
        })
    }

    /// The revision of the state as saved.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Saves the next revision: the delta `delta(base, after)` appended to the log, or, when
    /// a full write is due, the state file `full(revision)` written whole. Returns the new
    /// revision; a file changed behind the writer is a [`StateError::Conflict`].
    pub fn save(
        &mut self,
        delta: impl FnOnce(u64, u64) -> Delta,
        full: impl FnOnce(u64) -> Result<Vec<u8>, StateError>,
    ) -> Result<u64, StateError> {
        self.check()?;
        if self.needs_full {
            let next = self.revision + 1;
            return self.write_full_at(next, &full(next)?);
        }
        let bytes = encode(&delta(self.base_revision, self.revision)).map_err(|err| {
            StateError::Corrupt {
                path: self.log.clone(),
                message: format!("cannot serialize: {err}"),
            }
        })?;
        // Whatever fails from here may leave part of a record: no delta may follow it.
        self.needs_full = true;
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| io("append to", &self.log, source))?;
        self.log_id = Some(FileId::of(
            &self
                .file
                .metadata()
                .map_err(|s| io("inspect", &self.log, s))?,
        ));
        self.needs_full = false;
        self.revision += 1;
        Ok(self.revision)
    }

    /// Whether the log holds no delta.
    pub fn is_empty(&self) -> bool {
        self.log_id.is_none_or(|id| id.len == 0)
    }

    /// Whether the log has outgrown its bound ([`MIN_COMPACT_BYTES`]).
    pub fn needs_compaction(&self) -> bool {
        let len = |id: Option<FileId>| id.map_or(0, |id| id.len);
        len(self.log_id) > len(self.base_id).max(MIN_COMPACT_BYTES)
    }

    /// Rewrites the state file whole as `full(revision)` (the state as saved) and empties
    /// the log, if the files are still as this writer left them.
    pub fn compact(
        &mut self,
        full: impl FnOnce(u64) -> Result<Vec<u8>, StateError>,
    ) -> Result<(), StateError> {
        self.check()?;
        let revision = self.revision;
        self.write_full_at(revision, &full(revision)?)?;
        Ok(())
    }

    /// Writes `bytes` (the whole state at `revision`) as the state file, atomically, then
    /// empties the log: a crash between the two leaves deltas the state file already holds,
    /// which loading skips. Checks nothing: after a conflict, this is the overwrite.
    pub fn write_full_at(&mut self, revision: u64, bytes: &[u8]) -> Result<u64, StateError> {
        self.needs_full = true;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsutil::create_private_dir(dir).map_err(|s| io("create the directory of", dir, s))?;
        }
        fsutil::write_atomic_private(&self.path, bytes)
            .map_err(|source| io("write", &self.path, source))?;
        self.base_id = identity(&self.path)?;
        (self.base_revision, self.revision) = (revision, revision);
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| io("empty", &self.log, source))?;
        self.log_id = identity(&self.log)?;
        self.needs_full = false;
        Ok(revision)
    }

    /// Refuses to write over a state file or log that changed since this writer's last
    /// write: a [`StateError::Conflict`], or [`StateError::Corrupt`] when the state file is
    /// no longer readable (then nothing is written over it, as before the log).
    fn check(&self) -> Result<(), StateError> {
        if identity(&self.path)? == self.base_id && identity(&self.log)? == self.log_id {
            return Ok(());
        }
        Err(StateError::Conflict {
            path: self.path.clone(),
            expected: self.revision,
            found: crate::state::on_disk_revision(&self.path)?,
        })
    }
}
