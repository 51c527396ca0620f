//! The state file's delta log: `state.json.log`, beside the state file, mode 0600. A save
//! appends one record holding only what changed since the last durable save (the slot
//! records changed or removed, and the small global fields) and makes it durable with one
//! fdatasync, instead of rewriting the whole state file (a 1,000-slot file is ~400 KB, and
//! its atomic replace costs three flushes: the temp file, the rename, the directory). The
//! whole file is rewritten atomically only by compaction ([`writer`]), which then empties
//! the log. Like the state file, the log never holds a token: a record is made of the
//! state file's own fields.
//!
//! A record is `len (u32 LE) | first 8 bytes of SHA-256(payload) | payload`, the payload a
//! [`Delta`] as JSON. Loading reads the state file, then applies the records in order
//! ([`scan`]): a record cut short (a crash mid-append, never acknowledged) ends the log
//! silently; one that fails its checksum, does not parse, or does not follow the state file
//! (another file's log) ends the readable part, and what follows is reported, never applied
//! and never a panic. The daemon's writer keeps a copy of such a log before it compacts.
//!
//! Revisions chain: a delta written over a state file at revision `base` takes the state
//! from revision `after` to `after + 1`. A delta whose `after` is below the state file's
//! revision is already in it (a compaction that stopped after its rename and before the
//! log was emptied) and is skipped; one over another base does not belong to this file.

pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::revocation::PendingRevocation;
use crate::state::{PendingMove, SlotRecord, StateError, StateFile};

/// Appended to the state file's name to name its log.
pub const SUFFIX: &str = ".log";
/// Bytes before each record's payload: its length and its checksum.
pub(crate) const HEADER: usize = 4 + CHECKSUM;
/// Bytes of SHA-256 kept per record: enough to tell a garbled record from a good one.
const CHECKSUM: usize = 8;
/// No delta is near this (one holds the records an event changed); a length above it means
/// the rest of the file is not records.
const MAX_RECORD: usize = 64 << 20;

/// The log beside the state file at `state`.
pub fn log_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(SUFFIX);
    PathBuf::from(name)
}

/// What one save changed: the state at revision `after` becomes the state at `after + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// The revision of the state file this log was started over.
    pub base: u64,
    /// The revision this delta applies to.
    pub after: u64,
    pub next_generation: u64,
    /// The slot records changed or added, and `None` for each slot removed.
    pub slots: BTreeMap<String, Option<SlotRecord>>,
    /// The global fields, whole (they are small): see [`StateFile`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_revocations: Vec<PendingRevocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving: Option<PendingMove>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claude_code_fields: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dead_logins: BTreeMap<String, String>,
}

impl Delta {
    /// Applies it to `state` (at revision `self.after`).
    pub fn apply(self, state: &mut StateFile) {
        state.revision = self.after + 1;
        state.next_generation = self.next_generation;
        for (name, record) in self.slots {
            match record {
                Some(record) => state.slots.insert(name, record),
                None => state.slots.remove(&name),
            };
        }
        state.pending_revocations = self.pending_revocations;
        state.moving = self.moving;
        state.claude_code_fields = self.claude_code_fields;
        state.dead_logins = self.dead_logins;
    }
}

/// Why a log was not read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Read to the end.
    Clean,
    /// The last record is cut short: a save that never finished, so nothing depended on it.
    Torn { offset: u64 },
    /// Bytes that are not a record of this file's log (garbled, or another file's).
    Unreadable { offset: u64, why: String },
}

impl Tail {
    /// Whether the log holds bytes worth keeping that were not applied.
    pub fn is_unreadable(&self) -> bool {
        matches!(self, Tail::Unreadable { .. })
    }
}

/// A log read over a state file at some revision.
#[derive(Debug)]
pub struct Scan {
    /// The deltas that follow the state file, in order.
    pub deltas: Vec<Delta>,
    /// How many records were already in the state file.
    pub skipped: usize,
    pub tail: Tail,
}

impl Scan {
    /// The revision the state file reaches with these deltas.
    pub fn revision(&self, base: u64) -> u64 {
        self.deltas.last().map_or(base, |delta| delta.after + 1)
    }
}

/// One record's bytes.
pub fn encode(delta: &Delta) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(delta)?;
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&checksum(&payload));
    bytes.extend_from_slice(&payload);
    Ok(bytes)
}

pub(crate) fn checksum(payload: &[u8]) -> [u8; CHECKSUM] {
    let digest = Sha256::digest(payload);
    let mut sum = [0; CHECKSUM];
    sum.copy_from_slice(&digest[..CHECKSUM]);
    sum
}

/// Reads the records in `bytes` that follow a state file at revision `base`.
pub fn scan(bytes: &[u8], base: u64) -> Scan {
    let mut scan = Scan {
        deltas: Vec::new(),
        skipped: 0,
        tail: Tail::Clean,
    };
    let mut revision = base;
    let mut at = 0;
    while at < bytes.len() {
        let offset = at as u64;
        let delta = match record_at(&bytes[at..]) {
            Record::Torn => {
                scan.tail = Tail::Torn { offset };
                break;
            }
            Record::Bad(why) => {
                scan.tail = Tail::Unreadable { offset, why };
                break;
            }
            Record::Delta(delta, len) => {
                at += len;
                delta
            }
        };
        if delta.after < revision && delta.base < base {
            scan.skipped += 1;
        } else if delta.after == revision && delta.base == base {
            revision += 1;
            scan.deltas.push(*delta);
        } else {
            let why = format!(
                "a record over revision {} of a state file at {} does not follow revision {revision} of this one",
                delta.after, delta.base
            );
            scan.tail = Tail::Unreadable { offset, why };
            break;
        }
    }
    scan
}

enum Record {
    Delta(Box<Delta>, usize),
    Torn,
    Bad(String),
}

fn record_at(bytes: &[u8]) -> Record {
    if bytes.len() < HEADER {
        return Record::Torn;
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap_or_default()) as usize;
    if len > MAX_RECORD {
        return Record::Bad(format!("a record of {len} bytes"));
    }
    let Some(payload) = bytes.get(HEADER..HEADER + len) else {
        return Record::Torn;
    };
    if checksum(payload) != bytes[4..HEADER] {
        return Record::Bad("a record fails its checksum".to_owned());
    }
    match serde_json::from_slice(payload) {
        Ok(delta) => Record::Delta(Box::new(delta), HEADER + len),
        Err(err) => Record::Bad(format!("a record is not a delta: {err}")),
    }
}

/// The log's bytes; empty when there is no log.
pub fn read(log: &Path) -> Result<Vec<u8>, StateError> {
    match std::fs::read(log) {
        Ok(bytes) => Ok(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(io_error("read", log, source)),
    }
}

/// Applies the log beside `path` to `state` (just read from `path`), reporting a tail
/// that was not applied.
pub fn replay(path: &Path, state: &mut StateFile) -> Result<(), StateError> {
    let log = log_path(path);
    let scan = scan(&read(&log)?, state.revision);
    match &scan.tail {
        Tail::Clean => {}
        Tail::Torn { offset } => tracing::info!(
            path = %log.display(), offset,
            "the state log ends in a save that never finished; ignoring it"
        ),
        Tail::Unreadable { offset, why } => tracing::warn!(
            path = %log.display(), offset,
            "the state log is unreadable from here on ({why}); loading what came before it"
        ),
    }
    for delta in scan.deltas {
        delta.apply(state);
    }
    Ok(())
}

/// Empties the log beside the state file at `path` (just rewritten whole), if there is one.
pub fn clear(path: &Path) -> Result<(), StateError> {
    let log = log_path(path);
    let file = match std::fs::OpenOptions::new().write(true).open(&log) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(io_error("open", &log, source)),
    };
    file.set_len(0)
        .and_then(|()| file.sync_data())
        .map_err(|source| io_error("empty", &log, source))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Copies the log beside the state file at `path`, if it holds records that would not be
/// applied (garbled, or another file's), to `state.json.log.bad-<seconds>` beside it: called
/// before anything empties the log, so that nothing anyone could still want is lost.
pub fn keep_unreadable_tail(path: &Path) -> Result<(), StateError> {
    let log = &log_path(path);
    let bytes = read(log)?;
    if bytes.is_empty() {
        return Ok(());
    }
    let base = crate::state::base_revision(path)?;
    let Tail::Unreadable { offset, why } = scan(&bytes, base).tail else {
        return Ok(());
    };
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".bad-{seconds}"));
    let kept = PathBuf::from(name);
    crate::fsutil::write_atomic_private(&kept, &bytes)
        .map_err(|source| io_error("keep", &kept, source))?;
    tracing::warn!(
        path = %log.display(), kept = %kept.display(), offset,
        "the state log is unreadable from here on ({why}); a copy is kept before it is emptied"
    );
    Ok(())
}
