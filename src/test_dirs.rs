//! Scratch directories for unit tests: one fresh, uniquely named directory under the
//! system temp dir per call, so tests running in parallel never share files.

use std::path::PathBuf;

/// Creates and returns `$TMPDIR/sessctl-<tag>-<pid>-<random>`.
pub fn fresh(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sessctl-{tag}-{}-{:x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).expect("create a scratch dir for a test");
    dir
}
