//! The state snapshot the manager publishes after an event that changed the slots: the
//! slot records shared (`Arc`) with the manager's own copy, so publishing costs a copy of
//! pointers, one new record per slot the event changed, and no serialisation at all. The
//! state writer (`crate::daemon::jobs::writer`) serialises it off the manager's task, to
//! exactly the JSON a [`StateFile`] of the same content is written as.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::revocation::PendingRevocation;
use crate::state::{self, PendingMove, SlotRecord, StateError, StateFile};

/// Account fields kept for accounts a `use` moved out of Claude Code's store, by slot.
pub type ClaudeCodeFields = BTreeMap<String, serde_json::Map<String, serde_json::Value>>;

/// The slot records by name, each shared until its slot changes.
pub type Records = BTreeMap<String, Arc<SlotRecord>>;

/// The state file's content as of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSnapshot {
    pub next_generation: u64,
    pub slots: Arc<Records>,
    pub pending_revocations: Vec<PendingRevocation>,
    pub moving: Option<PendingMove>,
    pub claude_code_fields: ClaudeCodeFields,
    /// `StateFile::dead_logins`.
    pub dead_logins: BTreeMap<String, String>,
}

impl StateSnapshot {
    /// A snapshot holding what `state` holds.
    pub fn of(state: &StateFile) -> Self {
        StateSnapshot {
            next_generation: state.next_generation,
            slots: Arc::new(records(state.slots.clone())),
            pending_revocations: state.pending_revocations.clone(),
            moving: state.moving.clone(),
            claude_code_fields: state.claude_code_fields.clone(),
            dead_logins: state.dead_logins.clone(),
        }
    }

    /// The state file it stands for, at `revision` (a deep copy: for tests and the
    /// simulator, never the manager's hot path).
    #[cfg(test)]
    pub fn to_file(&self, revision: u64) -> StateFile {
        StateFile {
            format: 1,
            revision,
            next_generation: self.next_generation,
            slots: (self.slots.iter())
                .map(|(name, record)| (name.clone(), SlotRecord::clone(record)))
                .collect(),
            pending_revocations: self.pending_revocations.clone(),
            moving: self.moving.clone(),
            claude_code_fields: self.claude_code_fields.clone(),
            dead_logins: self.dead_logins.clone(),
        }
    }

    /// Saves it as the state file if the file on disk is at `revision` (the compare-and-set
    /// of [`StateFile::save`]); returns the new revision.
    pub fn save(&self, path: &Path, revision: u64) -> Result<u64, StateError> {
        let view = View {
            format: 1,
            revision: revision + 1,
            next_generation: self.next_generation,
            slots: Shared(&self.slots),
            pending_revocations: &self.pending_revocations,
            moving: self.moving.as_ref(),
            claude_code_fields: &self.claude_code_fields,
            dead_logins: &self.dead_logins,
        };
        state::save_if_at(path, revision, &view)
    }
}

/// Records shared from plain ones.
pub fn records(slots: BTreeMap<String, SlotRecord>) -> Records {
    slots
        .into_iter()
        .map(|(name, record)| (name, Arc::new(record)))
        .collect()
}

/// A [`StateFile`] by reference: the same fields in the same order, so the same JSON.
#[derive(Serialize)]
struct View<'a> {
    format: u32,
    revision: u64,
    next_generation: u64,
    slots: Shared<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pending_revocations: &'a [PendingRevocation],
    #[serde(skip_serializing_if = "Option::is_none")]
    moving: Option<&'a PendingMove>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    claude_code_fields: &'a ClaudeCodeFields,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    dead_logins: &'a BTreeMap<String, String>,
}

/// Shared records serialised as the plain map of a [`StateFile`].
struct Shared<'a>(&'a Records);

impl Serialize for Shared<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, record)| (name, &**record)))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::state::SlotState;

    fn state() -> StateFile {
        let record = SlotRecord {
            provider: "test".into(),
            account: None,
            account_key: None,
            state: SlotState::Active,
            reason: None,
            generation: 3,
            created_at: Utc::now(),
            last_refresh_at: None,
            last_refresh_error: None,
            refreshes: 2,
            newest_written: None,
            claude_code: None,
        };
        StateFile {
            format: 1,
            revision: 0,
            next_generation: 4,
            slots: [("a".to_owned(), record)].into(),
            pending_revocations: Vec::new(),
            moving: None,
            claude_code_fields: [(
                "b".to_owned(),
                serde_json::json!({"subscriptionType": "max"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )]
            .into(),
            dead_logins: [("b".to_owned(), "cHJpbnQ".to_owned())].into(),
        }
    }

    #[test]
    fn a_saved_snapshot_is_the_state_file_it_stands_for_byte_for_byte() {
        let dir = std::env::temp_dir().join(format!("sessctl-snapshot-{}", std::process::id()));
        let (via_file, via_snapshot) = (dir.join("file.json"), dir.join("snapshot.json"));
        let state = state();
        let snapshot = StateSnapshot::of(&state);
        assert_eq!(state.save(&via_file).unwrap(), 1);
        assert_eq!(snapshot.save(&via_snapshot, 0).unwrap(), 1);
        assert_eq!(
            std::fs::read(&via_file).unwrap(),
            std::fs::read(&via_snapshot).unwrap()
        );
        let loaded = StateFile::load(&via_snapshot).unwrap();
        assert_eq!(loaded, snapshot.to_file(1));
        assert!(matches!(
            snapshot.save(&via_snapshot, 0),
            Err(StateError::Conflict { found: 1, .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
