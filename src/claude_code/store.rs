//! Reading and writing one Claude Code credential store: the `.credentials.json` file on
//! Linux (and every platform but macOS), the keychain item on macOS (see `keychain_macos`).
//!
//! Writes are atomic (temp file in the same dir, fsync, rename, fsync of the dir), mode 0600,
//! and create a missing storage dir with mode 0700 (an existing dir keeps its mode: it is the
//! user's). A write takes a [`StoreWriteGuard`] as proof that Claude Code's
//! `.storage-write.lock` is held, as Claude Code itself holds it for every write.
//! Errors name the path and what was wrong, never the content.

use std::io;
use std::path::{Path, PathBuf};

use super::credentials::{self, FormatError, StoreContents, StoreDocument};
use super::location::ConfigDir;
use super::locks::StoreWriteGuard;
use crate::fsutil;

/// A Claude Code store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but could not be read.
    #[error("cannot read Claude Code's credentials at {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    /// The file (or keychain secret) is not a credentials document sessctl can use; it is
    /// left untouched.
    #[error("Claude Code's credentials at {path} are unusable: {source}")]
    Format { path: PathBuf, source: FormatError },
    /// The new document could not be written; the old one is still in place.
    #[error("cannot write Claude Code's credentials at {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    /// The storage-write lock was taken from us before the write: nothing was written.
    #[error(
        "not writing Claude Code's credentials at {path}: the storage-write lock was taken over"
    )]
    LockLost { path: PathBuf },
    /// The macOS keychain refused (or the `security` tool failed).
    #[error("Claude Code's keychain item {service:?}: {detail}")]
    Keychain { service: String, detail: String },
}

/// One Claude Code credential store.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    config: ConfigDir,
}

impl CredentialStore {
    /// The store of `config`.
    pub fn new(config: ConfigDir) -> Self {
        CredentialStore { config }
    }

    /// Which config dir this store belongs to.
    pub fn config(&self) -> &ConfigDir {
        &self.config
    }

    /// Where the credentials live, for `status` and messages: the file path, or on macOS
    /// `keychain:<service>`.
    pub fn describe(&self) -> String {
        #[cfg(target_os = "macos")]
        return format!("keychain:{}", self.config.keychain_service());
        #[cfg(not(target_os = "macos"))]
        return self.config.credentials_path().display().to_string();
    }

    /// What the store holds now.
    pub fn read(&self) -> Result<StoreContents, StoreError> {
        #[cfg(target_os = "macos")]
        return super::keychain_macos::read(&self.config);
        #[cfg(not(target_os = "macos"))]
        return read_file(&self.config.credentials_path());
    }

    /// Replaces the stored document (atomically), under Claude Code's storage-write lock;
    /// refuses (writing nothing) when that lock is no longer ours.
    pub fn write(
        &self,
        document: &StoreDocument,
        lock: &StoreWriteGuard,
    ) -> Result<(), StoreError> {
        if lock.is_compromised() {
            return Err(StoreError::LockLost {
                path: self.config.credentials_path(),
            });
        }
        #[cfg(target_os = "macos")]
        return super::keychain_macos::write(&self.config, document);
        #[cfg(not(target_os = "macos"))]
        return write_file(&self.config.credentials_path(), document);
    }
}

/// Reads a `.credentials.json` file into one of the distinct [`StoreContents`] cases.
pub fn read_file(path: &Path) -> Result<StoreContents, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(StoreContents::Missing),
        Err(source) => {
            return Err(StoreError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    credentials::parse(&bytes).map_err(|source| StoreError::Format {
        path: path.to_owned(),
        source,
    })
}

/// Writes `document` to `path` atomically with mode 0600, creating a missing parent dir
/// with mode 0700. Only through [`CredentialStore::write`], which checks the lock.
// On macOS the store is the keychain item; this serves the other platforms.
#[cfg_attr(target_os = "macos", allow(dead_code))]
pub(crate) fn write_file(path: &Path, document: &StoreDocument) -> Result<(), StoreError> {
    let written = ensure_private_dir(parent(path))
        .and_then(|()| fsutil::write_atomic_private(path, &document.to_bytes()));
    written.map_err(|source| StoreError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Creates `dir` (and missing parents) with mode 0700 when it does not exist; an existing
/// dir is left as it is.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg_attr(target_os = "macos", allow(dead_code))]
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::claude_code::credentials::OAuthTokens;
    use crate::secret::Secret;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "sessctl-cc-store-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ))
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn tokens() -> OAuthTokens {
        OAuthTokens {
            access_token: Secret::new("at"),
            refresh_token: Secret::new("rt"),
            expires_at_ms: Some(1),
            scopes: None,
        }
    }

    #[test]
    fn a_missing_file_is_missing() {
        let dir = temp_dir("missing");
        let contents = read_file(&dir.join(".credentials.json")).unwrap();
        assert!(matches!(contents, StoreContents::Missing));
    }

    #[test]
    fn write_creates_the_dir_0700_and_the_file_0600_and_reads_back() {
        let dir = temp_dir("write").join("nested");
        let path = dir.join(".credentials.json");
        let mut document = StoreDocument::new();
        document.set_tokens(&tokens());

        write_file(&path, &document).unwrap();

        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        let StoreContents::Present { tokens: read, .. } = read_file(&path).unwrap() else {
            panic!("expected the written login");
        };
        assert_eq!(read, tokens());
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "a temp file was left behind");
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn an_existing_dir_keeps_its_mode_and_a_loose_file_becomes_0600() {
        let dir = temp_dir("existing");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join(".credentials.json");
        std::fs::write(&path, b"{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        write_file(&path, &StoreDocument::new()).unwrap();

        assert_eq!(mode(&dir), 0o755);
        assert_eq!(mode(&path), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_the_path() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".credentials.json");
        std::fs::write(&path, b"{\"claudeAiOauth\": {\"refreshToken\": \"rt-x").unwrap();
        let err = read_file(&path).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Format { .. }), "{message}");
        assert!(message.contains(".credentials.json"), "{message}");
        assert!(!message.contains("rt-x"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
