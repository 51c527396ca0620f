//! The state file: the slot registry and each slot's non-secret state (never a token).
//! Written atomically with mode 0600; a save is a compare-and-set on the file's
//! `revision`, so a file changed behind the daemon's back is never silently overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Health of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    Active,
    Degraded,
    Inactive,
}

/// One slot's persistent, non-secret record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub provider: String,
    pub account: Option<String>,
    pub state: SlotState,
    /// Why the slot is not active (`session_expired`, `client_rejected`, ...).
    pub reason: Option<String>,
    /// The login this slot's credentials belong to (see `store::WriteCondition`).
    pub generation: u64,
    pub created_at: DateTime<Utc>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_refresh_error: Option<String>,
    pub refreshes: u64,
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// File format version.
    pub format: u32,
    /// Bumped by every save; the compare-and-set key.
    pub revision: u64,
    /// The next login generation to hand out (never reused, across slots and restarts).
    pub next_generation: u64,
    pub slots: BTreeMap<String, SlotRecord>,
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} state file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is unreadable: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "state file {path} changed behind the daemon (expected revision {expected}, found {found}); not overwriting it"
    )]
    Conflict {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
}

impl Default for StateFile {
    fn default() -> Self {
        StateFile {
            format: 1,
            revision: 0,
            next_generation: 1,
            slots: BTreeMap::new(),
        }
    }
}

impl StateFile {
    /// Reads the state file; a missing file is an empty registry.
    pub fn load(path: &Path) -> Result<StateFile, StateError> {
        todo!("helper {path:?}")
    }

    /// Saves `self` if the file on disk is still at revision `self.revision` (or absent
    /// when that is 0), writing revision + 1; returns the new revision.
    pub fn save(&self, path: &Path) -> Result<u64, StateError> {
        todo!("helper {path:?}")
    }
}
