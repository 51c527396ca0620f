//! The opt-in plaintext backend (`credential_store: file`): every slot's item in one 0600
//! JSON file, rewritten atomically. Chosen only by explicit configuration, never as a
//! silent fallback.
//!
//! The file is `{"format": 1, "slots": {name: item}}`. Items are kept as raw JSON until
//! asked for, so one unreadable item does not hide (or get other slots' writes to
//! destroy) the rest. A file that is not valid JSON at all is never rewritten.
//! Error messages name the path and the parse position, never item contents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CredentialBackend, StoreError, StoreKind, StoredCredentials, describe_json_error};
use crate::fsutil;

/// The only file format this version reads and writes.
const FILE_FORMAT: u32 = 1;

/// Items in one 0600 JSON file.
pub struct FileBackend {
    path: PathBuf,
}

/// The whole credentials file.
#[derive(Serialize, Deserialize)]
struct CredentialsFile {
    format: u32,
    #[serde(default)]
    slots: BTreeMap<String, Value>,
}

impl Default for CredentialsFile {
    fn default() -> Self {
        CredentialsFile {
            format: FILE_FORMAT,
            slots: BTreeMap::new(),
        }
    }
}

impl FileBackend {
    /// A backend over `path` (created on first write).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The file's contents; an empty set of items when it does not exist.
    fn read(&self, slot: &str) -> Result<CredentialsFile, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CredentialsFile::default());
            }
            Err(err) => return Err(self.unavailable("read", &err)),
        };
        let file: CredentialsFile =
            serde_json::from_slice(&bytes).map_err(|err| StoreError::Corrupt {
                slot: slot.to_owned(),
                message: format!(
                    "{} is not a credentials file: {}",
                    self.path.display(),
                    describe_json_error(&err)
                ),
            })?;
        if file.format != FILE_FORMAT {
            return Err(StoreError::Corrupt {
                slot: slot.to_owned(),
                message: format!(
                    "{} has format {}, this sessctl reads format {FILE_FORMAT}",
                    self.path.display(),
                    file.format
                ),
            });
        }
        Ok(file)
    }

    /// Replaces the file with `file`, creating its 0700 directory if needed.
    fn write(&self, file: &CredentialsFile) -> Result<(), StoreError> {
        let mut bytes = serde_json::to_vec_pretty(file)
            .map_err(|err| StoreError::Unavailable(format!("cannot serialize items: {err}")))?;
        bytes.push(b'\n');
        if let Some(dir) = parent(&self.path) {
            fsutil::create_private_dir(dir)
                .map_err(|err| self.unavailable("create the directory of", &err))?;
        }
        fsutil::write_atomic_private(&self.path, &bytes)
            .map_err(|err| self.unavailable("write", &err))
    }

    fn unavailable(&self, action: &str, err: &std::io::Error) -> StoreError {
        StoreError::Unavailable(format!(
            "cannot {action} credentials file {}: {err}",
            self.path.display()
        ))
    }
}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|dir| !dir.as_os_str().is_empty())
}

impl CredentialBackend for FileBackend {
    fn kind(&self) -> StoreKind {
        StoreKind::File
    }

    fn load(&mut self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        let mut file = self.read(slot)?;
        let Some(raw) = file.slots.remove(slot) else {
            return Ok(None);
        };
        serde_json::from_value(raw)
            .map(Some)
            .map_err(|err| StoreError::Corrupt {
                slot: slot.to_owned(),
                message: format!(
                    "item in {} does not parse: {}",
                    self.path.display(),
                    describe_json_error(&err)
                ),
            })
    }

    fn save(&mut self, slot: &str, item: &StoredCredentials) -> Result<(), StoreError> {
        let mut file = self.read(slot)?;
        let value = serde_json::to_value(item)
            .map_err(|err| StoreError::Unavailable(format!("cannot serialize item: {err}")))?;
        file.slots.insert(slot.to_owned(), value);
        self.write(&file)
    }

    fn delete(&mut self, slot: &str) -> Result<(), StoreError> {
        let mut file = self.read(slot)?;
        if file.slots.remove(slot).is_none() {
            return Ok(());
        }
        self.write(&file)
    }

    fn list(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self.read("*")?.slots.into_keys().collect())
    }

    /// A reserved item is kept as a JSON string under its account.
    fn load_text(&mut self, account: &str) -> Result<Option<String>, StoreError> {
        match self.read(account)?.slots.remove(account) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(StoreError::Corrupt {
                slot: account.to_owned(),
                message: format!("item in {} is not text", self.path.display()),
            }),
        }
    }

    fn save_text(&mut self, account: &str, text: &str) -> Result<(), StoreError> {
        let mut file = self.read(account)?;
        file.slots
            .insert(account.to_owned(), Value::String(text.to_owned()));
        self.write(&file)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::store::test_support::{TempDir, item};

    #[test]
    fn a_missing_file_has_no_items_and_deleting_from_it_is_fine() {
        let dir = TempDir::new("file-missing");
        let mut backend = FileBackend::new(dir.path("creds.json"));
        assert_eq!(backend.load("work").unwrap(), None);
        backend.delete("work").unwrap();
        assert!(!dir.path("creds.json").exists());
    }

    #[test]
    fn items_round_trip_per_slot_in_a_0600_file_in_a_0700_dir() {
        let dir = TempDir::new("file-roundtrip");
        let path = dir.path("sub/creds.json");
        let mut backend = FileBackend::new(path.clone());
        backend.save("work", &item(2, 1, "a")).unwrap();
        backend.save("home", &item(5, 3, "b")).unwrap();

        assert_eq!(backend.load("work").unwrap(), Some(item(2, 1, "a")));
        assert_eq!(backend.load("home").unwrap(), Some(item(5, 3, "b")));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["format"], 1);
        assert_eq!(json["slots"]["work"]["refresh_token"], "refresh-a");

        backend.delete("work").unwrap();
        assert_eq!(backend.load("work").unwrap(), None);
        assert_eq!(backend.load("home").unwrap(), Some(item(5, 3, "b")));
    }

    #[test]
    fn unreadable_json_is_corrupt_and_is_not_overwritten() {
        let dir = TempDir::new("file-corrupt");
        let path = dir.path("creds.json");
        std::fs::write(
            &path,
            b"{\"format\":1,\"slots\":{\"work\":{\"refresh_token\":\"SECRET",
        )
        .unwrap();
        let mut backend = FileBackend::new(path.clone());

        let err = backend.load("work").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(!err.to_string().contains("SECRET"));
        assert!(matches!(
            backend.save("work", &item(1, 1, "a")),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(std::fs::read(&path).unwrap().ends_with(b"SECRET"));
    }

    #[test]
    fn one_unparseable_item_does_not_hide_the_others() {
        let dir = TempDir::new("file-bad-item");
        let path = dir.path("creds.json");
        std::fs::write(&path, br#"{"format":1,"slots":{"bad":{"version":"x"}}}"#).unwrap();
        let mut backend = FileBackend::new(path);

        assert!(matches!(
            backend.load("bad"),
            Err(StoreError::Corrupt { .. })
        ));
        backend.save("good", &item(1, 1, "g")).unwrap();
        assert_eq!(backend.load("good").unwrap(), Some(item(1, 1, "g")));
    }

    #[test]
    fn an_unknown_format_is_corrupt() {
        let dir = TempDir::new("file-format");
        let path = dir.path("creds.json");
        std::fs::write(&path, br#"{"format":2,"slots":{}}"#).unwrap();
        let mut backend = FileBackend::new(path);
        assert!(matches!(backend.load("x"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn an_io_error_is_unavailable_and_names_the_path() {
        let dir = TempDir::new("file-io");
        // A directory where the file should be: reading it fails with an I/O error.
        let path = dir.path("creds.json");
        std::fs::create_dir_all(&path).unwrap();
        let mut backend = FileBackend::new(path.clone());
        match backend.load("work") {
            Err(StoreError::Unavailable(msg)) => {
                assert!(msg.contains(&path.display().to_string()), "{msg}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
