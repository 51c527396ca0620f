//! The state file: the slot registry and each slot's non-secret state (never a token).
//! Written atomically with mode 0600; a save is a compare-and-set on the file's
//! `revision`, so a file changed behind the daemon's back is never silently overwritten:
//! the daemon's writer notices, warns and rewrites it with the daemon's own state. Which
//! slots exist is the credential store's word (`crate::daemon::reconcile`); this file
//! holds their non-secret metadata.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::account::AccountKey;
use crate::fsutil;
use crate::slot_reason::SlotReason;

/// Health of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    Active,
    Degraded,
    Inactive,
}

impl SlotState {
    /// The state as the state file and `status --json` write it (for logs and text).
    pub fn as_str(self) -> &'static str {
        match self {
            SlotState::Active => "active",
            SlotState::Degraded => "degraded",
            SlotState::Inactive => "inactive",
        }
    }
}

/// One slot's persistent, non-secret record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub provider: String,
    /// The account as shown in `status` (the e-mail, else the subject).
    pub account: Option<String>,
    /// The account's stable key: a login of the same account finds this slot by it.
    /// Missing in state files written before keys existed; derived from `account` on load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key: Option<AccountKey>,
    pub state: SlotState,
    /// Why the slot is not active; `None` when it is.
    pub reason: Option<SlotReason>,
    /// The login this slot's credentials belong to (see `store::WriteCondition`).
    pub generation: u64,
    pub created_at: DateTime<Utc>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_refresh_error: Option<String>,
    pub refreshes: u64,
    /// The newest credential item (generation, version) the daemon wrote or read for this
    /// slot: an older item read back is a stale copy (a restored backup) whose refresh
    /// token was already spent, and is never presented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_written: Option<ItemVersion>,
    /// Set for a slot whose credentials stay in Claude Code's own store: the config dir
    /// (as `CLAUDE_CONFIG_DIR` would name it). sessctl's store holds no item for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_code: Option<std::path::PathBuf>,
}

/// The identity of one credential item; ordered by generation, then version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemVersion {
    pub generation: u64,
    pub version: u64,
}

impl SlotRecord {
    /// Whether an item of `found` is older than one already written or read.
    pub fn is_stale(&self, found: ItemVersion) -> bool {
        self.newest_written.is_some_and(|newest| found < newest)
    }

    /// Records that the store now holds `item` (kept when it is the newest seen).
    pub fn note_item(&mut self, item: ItemVersion) {
        if self.newest_written.is_none_or(|newest| newest < item) {
            self.newest_written = Some(item);
        }
    }
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
    /// Revocations still owed (no tokens: those wait in the credential store). Absent in
    /// state files written before revocations were retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_revocations: Vec<crate::revocation::PendingRevocation>,
    /// A `use` under way (recorded before its first write, so a restart finishes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving: Option<PendingMove>,
    /// The fields of Claude Code's `claudeAiOauth` that belong to an account a `use` moved
    /// out of Claude Code's store (scopes, subscriptionType, rateLimitTier, accountUuid…;
    /// never a token), by slot: written back with the account when it moves in again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claude_code_fields: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// For inactive Claude Code slots, by slot: the keyed fingerprint
    /// (`crate::fingerprint`) of the refresh token the daemon saw die, never the token; a
    /// login in the slot's store with another refresh token is a new one, even when it was
    /// made while no daemon ran (`crate::daemon::core::claude_code_reload`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dead_logins: BTreeMap<String, String>,
}

/// A `use` recorded in the state file (no tokens): slot `slot`'s login moves from
/// sessctl's store into Claude Code's store in `dir`, and `outgoing`'s login (the one in
/// that store) into sessctl's store. See `crate::daemon::core::moving`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMove {
    pub slot: String,
    pub dir: PathBuf,
    /// The slot whose login is in `dir` now; `None` when the store holds no login.
    pub outgoing: Option<String>,
    /// The generation of `slot`'s item in sessctl's store (the one the move takes).
    pub from_generation: u64,
    /// The generation `slot` has once its login is in Claude Code's store.
    pub generation: u64,
    /// The generation of the item `outgoing`'s login gets in sessctl's store.
    pub outgoing_generation: u64,
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
            pending_revocations: Vec::new(),
            moving: None,
            claude_code_fields: BTreeMap::new(),
            dead_logins: BTreeMap::new(),
        }
    }
}

impl StateFile {
    /// Reads the state file and applies its log (`crate::state_log`); a missing file is an
    /// empty registry.
    pub fn load(path: &Path) -> Result<StateFile, StateError> {
        let mut state: StateFile = match read_if_exists(path)? {
            None => return Ok(StateFile::default()),
            Some(text) => parse(path, &text)?,
        };
        crate::state_log::replay(path, &mut state)?;
        state.derive_missing_account_keys();
        Ok(state)
    }

    /// Gives each slot recorded before account keys existed the key of its recorded
    /// account, so a new login of that account finds the slot.
    fn derive_missing_account_keys(&mut self) {
        for record in self.slots.values_mut() {
            if record.account_key.is_none() {
                record.account_key = record
                    .account
                    .as_deref()
                    .and_then(|label| AccountKey::from_label(&record.provider, label));
            }
        }
    }

    /// Saves `self` if the state on disk (its log applied) is still at revision
    /// `self.revision` (or absent when that is 0), writing revision + 1 as compact JSON and
    /// emptying the log (the reader takes any layout,
    /// so a pretty-printed file from an older sessctl still loads); returns the new revision.
    ///
    /// The check and the rename are not atomic against another process; the daemon's
    /// single-instance lock is what keeps other writers away. The check catches a file
    /// edited or restored by hand while the daemon ran.
    pub fn save(&self, path: &Path) -> Result<u64, StateError> {
        let next = StateFile {
            revision: self.revision + 1,
            ..self.clone()
        };
        save_if_at(path, self.revision, &next)
    }
}

/// Writes `file` (a state file whose revision is `expected` + 1) as compact JSON if the file
/// on disk is still at revision `expected` (or absent when that is 0): the compare-and-set
/// of [`StateFile::save`], shared with the daemon's published snapshots
/// (`crate::daemon::core::snapshot`). Returns the new revision.
pub(crate) fn save_if_at<T: Serialize>(
    path: &Path,
    expected: u64,
    file: &T,
) -> Result<u64, StateError> {
    {
        let found = on_disk_revision(path)?;
        if found != expected {
            return Err(StateError::Conflict {
                path: path.to_path_buf(),
                expected,
                found,
            });
        }
        let mut bytes = serde_json::to_vec(file).map_err(|err| StateError::Corrupt {
            path: path.to_path_buf(),
            message: format!("cannot serialize: {err}"),
        })?;
        bytes.push(b'\n');
        // The log is emptied below: a part of it that loading could not apply is kept.
        crate::state_log::keep_unreadable_tail(path)?;
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fsutil::create_private_dir(dir).map_err(|source| StateError::Io {
                action: "create the directory of",
                path: path.to_path_buf(),
                source,
            })?;
        }
        fsutil::write_atomic_private(path, &bytes).map_err(|source| StateError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })?;
        // The file now holds every delta of the log: loading would skip them all.
        crate::state_log::clear(path)?;
        Ok(expected + 1)
    }
}

/// The file's text, or `None` when it does not exist.
fn read_if_exists(path: &Path) -> Result<Option<String>, StateError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, StateError> {
    serde_json::from_str(text).map_err(|err| StateError::Corrupt {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}

/// The revision of the state on disk, its log applied; 0 when there is no state file.
pub(crate) fn on_disk_revision(path: &Path) -> Result<u64, StateError> {
    let base = base_revision(path)?;
    if base == 0 && !path.exists() {
        return Ok(0);
    }
    let log = crate::state_log::read(&crate::state_log::log_path(path))?;
    Ok(crate::state_log::scan(&log, base).revision(base))
}

/// The revision written in the state file itself (its log not applied); 0 when there is none.
pub(crate) fn base_revision(path: &Path) -> Result<u64, StateError> {
    /// Only the compare-and-set key: a file whose other fields changed shape still has
    /// a revision to compare.
    #[derive(Deserialize)]
    struct RevisionOnly {
        revision: u64,
    }
    match read_if_exists(path)? {
        None => Ok(0),
        Some(text) => Ok(parse::<RevisionOnly>(path, &text)?.revision),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A unique directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "sessctl-state-{name}-{}-{:x}",
                std::process::id(),
                fastrand::u64(..)
            ));
            TempDir(dir)
        }
        fn file(&self) -> PathBuf {
            self.0.join("nested").join("state.json")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sample() -> StateFile {
        let mut state = StateFile {
            next_generation: 4,
            ..StateFile::default()
        };
        state.slots.insert(
            "work".to_owned(),
            SlotRecord {
                provider: "claude".to_owned(),
                account: Some("me@example.com".to_owned()),
                account_key: AccountKey::from_label("claude", "me@example.com"),
                state: SlotState::Degraded,
                reason: Some(SlotReason::CredentialStoreUnavailable),
                generation: 3,
                created_at: "2025-01-02T03:04:05Z".parse().unwrap(),
                last_refresh_at: None,
                last_refresh_error: Some("timeout".to_owned()),
                refreshes: 7,
                newest_written: Some(ItemVersion {
                    generation: 3,
                    version: 9,
                }),
                claude_code: None,
            },
        );
        state
    }

    #[test]
    fn each_state_is_written_as_its_name() {
        for state in [SlotState::Active, SlotState::Degraded, SlotState::Inactive] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
    }

    #[test]
    fn a_reason_this_build_does_not_know_loads_and_is_saved_back_unchanged() {
        let dir = TempDir::new("otherreason");
        crate::fsutil::create_private_dir(dir.file().parent().unwrap()).unwrap();
        let text = r#"{"format":1,"revision":2,"next_generation":2,"slots":{"w":{
            "provider":"claude","account":null,"state":"inactive","reason":"quota_exhausted",
            "generation":1,"created_at":"2025-01-02T03:04:05Z","last_refresh_at":null,
            "last_refresh_error":null,"refreshes":0}}}"#;
        std::fs::write(dir.file(), text).unwrap();
        let state = StateFile::load(&dir.file()).unwrap();
        let reason = Some(SlotReason::Other("quota_exhausted".to_owned()));
        assert_eq!(state.slots["w"].reason, reason);
        state.save(&dir.file()).unwrap();
        assert_eq!(
            StateFile::load(&dir.file()).unwrap().slots["w"].reason,
            reason
        );
        let saved = std::fs::read_to_string(dir.file()).unwrap();
        assert!(saved.contains(r#""reason":"quota_exhausted""#), "{saved}");
    }

    #[test]
    fn an_item_older_than_the_newest_written_is_stale() {
        let at = |generation, version| ItemVersion {
            generation,
            version,
        };
        let mut record = sample().slots.remove("work").unwrap();
        record.newest_written = None;
        assert!(!record.is_stale(at(1, 1)));
        record.note_item(at(3, 9));
        record.note_item(at(3, 2));
        assert_eq!(record.newest_written, Some(at(3, 9)));
        assert!(record.is_stale(at(3, 8)) && record.is_stale(at(2, 50)));
        assert!(!record.is_stale(at(3, 9)) && !record.is_stale(at(4, 1)));
    }

    #[test]
    fn saves_are_compact_and_pretty_files_from_older_versions_still_load() {
        let dir = TempDir::new("compact");
        let saved = sample();
        let revision = saved.save(&dir.file()).unwrap();
        let text = std::fs::read_to_string(dir.file()).unwrap();
        assert_eq!(text.lines().count(), 1, "one line of compact JSON: {text}");
        let loaded = StateFile::load(&dir.file()).unwrap();
        assert_eq!(loaded.revision, revision);
        std::fs::write(dir.file(), serde_json::to_vec_pretty(&loaded).unwrap()).unwrap();
        assert_eq!(StateFile::load(&dir.file()).unwrap(), loaded);
    }

    #[test]
    fn a_missing_file_loads_as_an_empty_registry() {
        let dir = TempDir::new("missing");
        assert_eq!(StateFile::load(&dir.file()).unwrap(), StateFile::default());
    }

    #[test]
    fn save_then_load_round_trips_and_bumps_the_revision() {
        let dir = TempDir::new("roundtrip");
        let mut state = sample();

        assert_eq!(state.save(&dir.file()).unwrap(), 1);
        let loaded = StateFile::load(&dir.file()).unwrap();
        state.revision = 1;
        assert_eq!(loaded, state);

        assert_eq!(loaded.save(&dir.file()).unwrap(), 2);
        assert_eq!(StateFile::load(&dir.file()).unwrap().revision, 2);
    }

    #[test]
    fn a_state_file_from_before_account_keys_gets_them_from_the_account() {
        let dir = TempDir::new("oldkeys");
        crate::fsutil::create_private_dir(dir.file().parent().unwrap()).unwrap();
        let slot = |account: &str| {
            format!(
                r#"{{"provider":"claude","account":{account},"state":"active","reason":null,
                "generation":1,"created_at":"2025-01-02T03:04:05Z","last_refresh_at":null,
                "last_refresh_error":null,"refreshes":0}}"#
            )
        };
        let text = format!(
            r#"{{"format":1,"revision":3,"next_generation":2,"slots":{{"a":{},"b":{},"c":{}}}}}"#,
            slot(r#""Me@Example.com""#),
            slot(r#""user-7""#),
            slot("null")
        );
        std::fs::write(dir.file(), text).unwrap();
        let state = StateFile::load(&dir.file()).unwrap();
        let key = |name: &str| state.slots[name].account_key.clone();
        assert_eq!(key("a").unwrap().email.as_deref(), Some("me@example.com"));
        assert_eq!(key("b").unwrap().subject.as_deref(), Some("user-7"));
        assert_eq!(key("c"), None);
    }

    #[test]
    fn the_file_is_0600_in_a_0700_directory() {
        let dir = TempDir::new("mode");
        sample().save(&dir.file()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.file()), 0o600);
        assert_eq!(mode(dir.file().parent().unwrap()), 0o700);
    }

    #[test]
    fn a_stale_save_is_refused_and_the_newer_file_kept_byte_for_byte() {
        let dir = TempDir::new("conflict");
        let stale = StateFile::load(&dir.file()).unwrap();
        let newer = StateFile::load(&dir.file()).unwrap();
        newer.save(&dir.file()).unwrap();
        let before = std::fs::read(dir.file()).unwrap();

        let mut changed = stale.clone();
        changed.next_generation = 99;
        let err = changed.save(&dir.file()).unwrap_err();

        assert!(matches!(
            err,
            StateError::Conflict {
                expected: 0,
                found: 1,
                ..
            }
        ));
        assert_eq!(std::fs::read(dir.file()).unwrap(), before);
    }

    #[test]
    fn saving_a_nonzero_revision_over_a_missing_file_is_a_conflict() {
        let dir = TempDir::new("vanished");
        let mut state = sample();
        state.revision = 5;
        assert!(matches!(
            state.save(&dir.file()),
            Err(StateError::Conflict {
                expected: 5,
                found: 0,
                ..
            })
        ));
        assert!(!dir.file().exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_on_load_and_save() {
        let dir = TempDir::new("corrupt");
        crate::fsutil::create_private_dir(dir.file().parent().unwrap()).unwrap();
        std::fs::write(dir.file(), b"{\"revision\": 1, \"slots\": ").unwrap();

        assert!(matches!(
            StateFile::load(&dir.file()),
            Err(StateError::Corrupt { .. })
        ));
        assert!(matches!(
            StateFile::default().save(&dir.file()),
            Err(StateError::Corrupt { .. })
        ));
        assert_eq!(
            std::fs::read(dir.file()).unwrap(),
            b"{\"revision\": 1, \"slots\": "
        );
    }
}
