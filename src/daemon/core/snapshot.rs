//! The state snapshot the manager publishes after an event that changed the slots: the
//! slot records shared (`Arc`) with the manager's own copy, so publishing costs a copy of
//! pointers, one new record per slot the event changed, and no serialisation at all. The
//! state writer (`crate::daemon::jobs::writer`) serialises it off the manager's task, to
//! exactly the JSON a [`StateFile`] of the same content is written as.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::revocation::PendingRevocation;
use crate::state::{PendingMove, SlotRecord, StateFile};
use crate::state_log::Delta;

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
    /// of [`StateFile::save`]); returns the new revision. (The daemon saves through the
    /// state log: `crate::daemon::jobs::state_saver`.)
    #[cfg(test)]
    pub fn save(
        &self,
        path: &std::path::Path,
        revision: u64,
    ) -> Result<u64, crate::state::StateError> {
        crate::state::save_if_at(path, revision, &self.view(revision + 1))
    }

    /// The state file it stands for at `revision`, as the bytes a save writes.
    pub fn to_json(&self, revision: u64) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec(&self.view(revision))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    fn view(&self, revision: u64) -> View<'_> {
        View {
            format: 1,
            revision,
            next_generation: self.next_generation,
            slots: Shared(&self.slots),
            pending_revocations: &self.pending_revocations,
            moving: self.moving.as_ref(),
            claude_code_fields: &self.claude_code_fields,
            dead_logins: &self.dead_logins,
        }
    }

    /// What changed since `durable` (the snapshot last saved), as the delta over revision
    /// `after` of a log started at `base` (`crate::state_log`). A record the manager did not
    /// replace is the same `Arc`, so the slots it did not touch cost one pointer comparison
    /// each, in one walk over both maps in order (a few microseconds at 1,000 slots).
    pub fn delta_since(&self, durable: &StateSnapshot, base: u64, after: u64) -> Delta {
        let slots = if Arc::ptr_eq(&self.slots, &durable.slots) {
            BTreeMap::new()
        } else {
            changed(&self.slots, &durable.slots)
        };
        Delta {
            base,
            after,
            next_generation: self.next_generation,
            slots,
            pending_revocations: self.pending_revocations.clone(),
            moving: self.moving.clone(),
            claude_code_fields: self.claude_code_fields.clone(),
            dead_logins: self.dead_logins.clone(),
        }
    }
}

/// The records of `now` that are not in `before` or differ there, and `None` for each name
/// of `before` that `now` lacks.
fn changed(now: &Records, before: &Records) -> BTreeMap<String, Option<SlotRecord>> {
    use std::cmp::Ordering;
    let mut changed = BTreeMap::new();
    let (mut now, mut before) = (now.iter().peekable(), before.iter().peekable());
    loop {
        let order = match (now.peek(), before.peek()) {
            (None, None) => return changed,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((name, _)), Some((old_name, _))) => name.cmp(old_name),
        };
        match order {
            Ordering::Less | Ordering::Equal => {
                let Some((name, record)) = now.next() else {
                    return changed;
                };
                let old = if order == Ordering::Equal {
                    before.next().map(|(_, old)| old)
                } else {
                    None
                };
                if old.is_none_or(|old| !Arc::ptr_eq(old, record) && **old != **record) {
                    changed.insert(name.clone(), Some(SlotRecord::clone(record)));
                }
            }
            Ordering::Greater => {
                if let Some((name, _)) = before.next() {
                    changed.insert(name.clone(), None);
                }
            }
        }
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
    use crate::state::{SlotState, StateError};

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

    #[test]
    fn a_delta_holds_the_slots_added_changed_and_removed_and_no_other() {
        let mut before = StateSnapshot::of(&state());
        let records = Arc::make_mut(&mut before.slots);
        for name in ["b", "c", "d"] {
            records.insert(name.to_owned(), Arc::clone(&records["a"]));
        }
        let mut now = before.clone();
        let records = Arc::make_mut(&mut now.slots);
        // "a": a new Arc, the same record (not a change); "b" changed; "c" removed; "e" added.
        records.insert("a".to_owned(), Arc::new(SlotRecord::clone(&records["a"])));
        let mut changed = SlotRecord::clone(&records["b"]);
        changed.refreshes += 1;
        records.insert("b".to_owned(), Arc::new(changed.clone()));
        records.remove("c");
        records.insert("e".to_owned(), Arc::clone(&records["d"]));
        let delta = now.delta_since(&before, 7, 9);
        let names: Vec<_> = delta
            .slots
            .iter()
            .map(|(n, r)| (n.as_str(), r.is_some()))
            .collect();
        assert_eq!(names, [("b", true), ("c", false), ("e", true)]);
        assert_eq!(delta.slots["b"], Some(changed));
        assert_eq!((delta.base, delta.after), (7, 9));
        assert!(before.delta_since(&before, 0, 0).slots.is_empty());
    }

    #[test]
    fn a_delta_applied_to_the_older_state_gives_the_newer_one_global_fields_too() {
        let before = StateSnapshot::of(&state());
        let mut now = before.clone();
        now.next_generation += 1;
        now.dead_logins.insert("c".to_owned(), "ZGVhZA".to_owned());
        now.claude_code_fields.clear();
        let mut file = before.to_file(3);
        now.delta_since(&before, 3, 3).apply(&mut file);
        assert_eq!(file, now.to_file(4));
    }
}
