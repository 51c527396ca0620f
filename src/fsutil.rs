//! Small file-system helpers shared by every writer of our files: atomic 0600 writes
//! (temp file, fsync, rename, fsync of the directory) and 0700 directory creation.
//! Nothing here knows what the files mean.

use std::io;
use std::path::Path;

/// Writes `bytes` to `path` atomically with mode 0600: a reader sees the old file or the
/// new one, never a torn mix, even after a crash.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    todo!(
        "helper: temp file in the same dir (O_EXCL, 0600), write, fsync, rename, fsync dir {path:?} {}",
        bytes.len()
    )
}

/// Creates `dir` (and parents) and makes sure `dir` itself is mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    todo!("helper {dir:?}")
}
