//! Small file-system helpers shared by every writer of our files: atomic 0600 writes
//! (temp file, fsync, rename, fsync of the directory) and 0700 directory creation.
//! Nothing here knows what the files mean.
//!
//! The permission bits are Unix-only (the crate targets Linux and macOS); elsewhere the
//! writes are still atomic but the modes are left to the platform.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

/// Mode of every file we write: readable and writable by the owner only.
#[cfg(unix)]
const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of every directory we create: only the owner may list or enter it.
#[cfg(unix)]
const PRIVATE_DIR_MODE: u32 = 0o700;
/// How many temp names to try before giving up; a collision needs the same pid, counter
/// and 64 random bits, so more than one attempt only ever matters after a crash.
const TEMP_NAME_ATTEMPTS: u32 = 8;

/// Distinguishes temp files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically with mode 0600: a reader sees the old file or the
/// new one, never a torn mix, even after a crash.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let (tmp_path, mut file) = create_temp_file(dir, path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp_path, path)
        });
    if let Err(err) = written {
        // Best effort: the write already failed, and that error is the one to report.
        let _ = fs::remove_file(&tmp_path);
        return Err(err);
    }
    sync_dir(dir)
}

/// Creates `dir` (and parents) and makes sure `dir` itself is mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates a fresh 0600 file next to `target`, refusing to open an existing one.
fn create_temp_file(dir: &Path, target: &Path) -> io::Result<(PathBuf, File)> {
    let base = target.file_name().map_or_else(
        || "file".to_owned(),
        |name| name.to_string_lossy().into_owned(),
    );
    let mut last_err = None;
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let name = format!(
            ".{base}.tmp.{}.{}.{:016x}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
            fastrand::u64(..)
        );
        let tmp_path = dir.join(name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(PRIVATE_FILE_MODE);
        match options.open(&tmp_path) {
            Ok(file) => return Ok((tmp_path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last_err = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no temp file name was free")))
}

/// Options that create files with mode 0600 (on Unix), for files opened in place rather
/// than written atomically (locks, append-only journals).
pub fn private_file_options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    options.mode(PRIVATE_FILE_MODE);
    options
}

/// Makes the creation of `path` (a new name in its directory) durable.
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    sync_dir(parent_dir(path))
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sessctl-fsutil-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn atomic_write_replaces_the_file_with_mode_0600_and_leaves_no_temp_file() {
        let dir = temp_dir("write");
        let path = dir.join("state.json");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

        write_atomic_private(&path, b"new contents").unwrap();

        assert_eq!(fs::read(&path).unwrap(), b"new contents");
        assert_eq!(mode(&path), 0o600);
        let entries: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(entries.len(), 1, "a temp file was left behind");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp_file() {
        let dir = temp_dir("fail");
        // Renaming a file over a non-empty directory fails after the temp file exists.
        let path = dir.join("occupied");
        fs::create_dir_all(path.join("child")).unwrap();

        assert!(write_atomic_private(&path, b"x").is_err());

        let entries: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(entries.len(), 1, "a temp file was left behind");
        assert!(path.join("child").is_dir());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_dir_is_created_with_parents_and_mode_0700() {
        let dir = temp_dir("dir");
        let leaf = dir.join("a").join("b");

        create_private_dir(&leaf).unwrap();
        assert_eq!(mode(&leaf), 0o700);

        fs::set_permissions(&leaf, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&leaf).unwrap();
        assert_eq!(mode(&leaf), 0o700, "an existing dir is tightened too");
        fs::remove_dir_all(&dir).unwrap();
    }
}
