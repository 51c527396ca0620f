//! Doctor's credential-store check, with the configured backend.
//!
//! Keychain: writes, reads back and deletes a probe item through the same backend the
//! daemon uses (service `sessctl`), named `.doctor-probe-<pid>`: the leading dot is outside
//! the slot-name alphabet (`[a-z0-9_-]`), so the probe can never be a slot's item, and the
//! pid keeps two doctors apart. Safe while the daemon runs: the Secret Service serializes
//! calls and the probe shares no item with it. The probe holds no token.
//!
//! File: the daemon rewrites `credentials.json` as read-modify-write, so a probe item
//! written into it from another process could race a refresh and lose a rotated token.
//! Doctor therefore never writes that file: it checks that the file (when present) is ours,
//! private and parses, and writes, reads back and removes a probe file beside it, which
//! proves the directory takes the daemon's atomic writes.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;

use crate::cli::fixes;
use crate::config::CredentialStoreKind;
use crate::paths::Paths;
use crate::secret::Secret;
use crate::store::{
    CredentialBackend, FileBackend, KeychainBackend, StoreError, StoredCredentials, Tokens,
};

use super::Check;

/// How long the keychain gets for the whole probe: a locked keyring may wait on a password
/// prompt nobody answers.
const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(10);

const CHECK: &str = "credential store";

/// The probe item's name: never a valid slot name (see the module doc).
pub fn probe_name() -> String {
    format!(".doctor-probe-{}", std::process::id())
}

/// The check for the configured store.
pub fn check(kind: CredentialStoreKind, paths: &Paths) -> Check {
    match kind {
        CredentialStoreKind::Keychain => keychain(),
        CredentialStoreKind::File => file(&paths.credentials_file),
    }
}

fn keychain() -> Check {
    let (tx, rx) = mpsc::channel();
    // A thread of its own, so a keychain that never answers cannot hang doctor.
    std::thread::spawn(move || {
        let _ = tx.send(keychain_round_trip(&probe_name()));
    });
    match rx.recv_timeout(KEYCHAIN_TIMEOUT) {
        Ok(Ok(())) => Check::pass(
            CHECK,
            "keychain: a probe item was written, read back and deleted",
        ),
        Ok(Err(error)) => Check::fail(
            CHECK,
            format!("keychain: {error}"),
            fixes::keychain_unreachable(),
        ),
        Err(_) => Check::fail(
            CHECK,
            format!(
                "keychain: no answer within {}s (locked, and waiting on a password prompt?)",
                KEYCHAIN_TIMEOUT.as_secs()
            ),
            fixes::keychain_unreachable(),
        ),
    }
}

/// Writes, reads back and deletes item `name`, then makes sure it is gone.
fn keychain_round_trip(name: &str) -> Result<(), String> {
    let mut backend = KeychainBackend::default();
    let item = StoredCredentials {
        generation: 0,
        version: 0,
        provider: None,
        account: None,
        tokens: Tokens {
            access_token: Secret::new("sessctl doctor probe"),
            refresh_token: Secret::new("sessctl doctor probe"),
            expires_at: None,
            obtained_at: Utc::now(),
            scopes: Vec::new(),
        },
    };
    backend.save(name, &item).map_err(describe)?;
    let read = backend.load(name);
    // Delete whatever the read said, so a failed comparison leaves no item behind.
    let deleted = backend.delete(name);
    match read.map_err(describe)? {
        Some(found) if found == item => {}
        Some(_) => return Err("the item read back differs from the one written".to_owned()),
        None => return Err("the item just written cannot be found".to_owned()),
    }
    deleted.map_err(describe)?;
    match backend.load(name).map_err(describe)? {
        None => Ok(()),
        Some(_) => Err("the probe item is still there after deleting it".to_owned()),
    }
}

fn describe(error: StoreError) -> String {
    match error {
        StoreError::Unavailable(message) => message,
        other => other.to_string(),
    }
}

fn file(path: &Path) -> Check {
    let fix = fixes::credentials_file(path);
    let existing = match file_itself(path) {
        Ok(existing) => existing,
        Err(problem) => return Check::fail(CHECK, problem, fix),
    };
    if let Err(problem) = directory_takes_writes(path) {
        return Check::fail(CHECK, problem, fix);
    }
    let what = if existing {
        "is private and parses"
    } else {
        "does not exist yet (written at the first login)"
    };
    Check::pass(
        CHECK,
        format!(
            "file {} {what}; its directory took a probe file (written, read back, removed)",
            path.display()
        ),
    )
}

/// Checks the credentials file, read-only. `Ok(false)` when there is none yet.
fn file_itself(path: &Path) -> Result<bool, String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    owned_and_private(path, &meta)?;
    // Reading an item that cannot exist parses the whole file and changes nothing.
    match FileBackend::new(path.to_owned()).load(&probe_name()) {
        Ok(_) => Ok(true),
        Err(error) => Err(error.to_string()),
    }
}

/// Checks that the file is ours and private (mode 0600).
#[cfg(unix)]
fn owned_and_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if meta.uid() != uid {
        return Err(format!(
            "{} belongs to uid {}, not to you (uid {uid})",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by others (mode {mode:o}, should be 600)",
            path.display()
        ));
    }
    Ok(())
}

/// Elsewhere there are no Unix owner and mode bits to check.
#[cfg(not(unix))]
fn owned_and_private(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Writes, reads back and removes a probe file in the credentials file's directory.
fn directory_takes_writes(path: &Path) -> Result<(), String> {
    let Some(dir) = path.parent().filter(|d| d.exists()) else {
        // The daemon creates it (0700) at start; nothing to probe yet.
        return Ok(());
    };
    let probe = dir.join(format!("{}.tmp", probe_name()));
    let contents = b"sessctl doctor probe\n";
    let result = crate::fsutil::private_file_options()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::read(&probe));
    let removed = std::fs::remove_file(&probe);
    match result {
        Ok(read) if read == contents => {}
        Ok(_) => return Err(format!("{} reads back differently", probe.display())),
        Err(e) => return Err(format!("cannot write in {}: {e}", dir.display())),
    }
    removed.map_err(|e| format!("cannot remove {}: {e}", probe.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_probe_name_can_never_be_a_slot() {
        let name = probe_name();
        assert!(crate::slot_name::validate(&name).is_err(), "{name}");
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        crate::test_dirs::fresh(&format!("doctor-{tag}"))
    }

    #[test]
    fn a_private_parsable_file_passes_and_leaves_nothing_behind() {
        let dir = temp_dir("ok");
        let path = dir.join("credentials.json");
        std::fs::write(&path, br#"{"format":1,"slots":{}}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let check = file(&path);
        assert_eq!(check.outcome, super::super::Outcome::Pass, "{check:?}");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "the probe file was left behind");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            br#"{"format":1,"slots":{}}"#,
            "the credentials file was changed"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_open_or_broken_file_fails_with_the_fix() {
        let dir = temp_dir("bad");
        let path = dir.join("credentials.json");
        std::fs::write(&path, br#"{"format":1,"slots":{}}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = file(&path);
        assert_eq!(open.outcome, super::super::Outcome::Fail);
        assert!(open.detail.contains("mode 644"), "{open:?}");
        assert!(open.fix.unwrap().contains("0600"));

        std::fs::write(&path, b"not json").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let broken = file(&path);
        assert_eq!(broken.outcome, super::super::Outcome::Fail);
        assert!(
            broken.detail.contains("not a credentials file"),
            "{broken:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_file_yet_is_fine() {
        let dir = temp_dir("none");
        let check = file(&dir.join("credentials.json"));
        assert_eq!(check.outcome, super::super::Outcome::Pass, "{check:?}");
        assert!(check.detail.contains("does not exist yet"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
