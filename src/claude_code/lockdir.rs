//! One proper-lockfile lock, as the npm package `proper-lockfile` 4.1.2 (which Claude Code
//! bundles) implements it: a lock is a directory; `mkdir` taking it is the atomic step; its
//! holder re-touches the directory's mtime periodically; anyone else treats it as stale,
//! and may remove it with `rmdir`, once its mtime is older than the stale threshold.
//!
//! Two deliberate strengthenings, both only ever making sessctl more careful:
//! - before removing a stale lock, its mtime is read again and must be unchanged (the holder
//!   may have touched it since the first look);
//! - a holder checks that the mtime is still the one it set before touching or removing
//!   its lock, as proper-lockfile does before touching; if not, the lock was taken from it
//!   ("compromised") and it must neither touch nor remove it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A lock directory this process created and still holds.
#[derive(Debug)]
pub(crate) struct HeldDir {
    path: PathBuf,
    /// The mtime we last set: anything else there means the lock is no longer ours.
    mtime: SystemTime,
}

/// The outcome of one attempt to take a lock.
#[derive(Debug)]
pub(crate) enum Attempt {
    Acquired(HeldDir),
    /// Someone else holds it; `age` is how long ago it was last touched.
    Held {
        age: Duration,
    },
}

/// Tries once to take the lock directory `path`, removing it first when its mtime is older
/// than `stale` (as proper-lockfile's `lock()` does with `retries: 0`).
pub(crate) fn try_lock(path: &Path, stale: Duration) -> io::Result<Attempt> {
    if let Some(held) = try_mkdir(path)? {
        return Ok(Attempt::Acquired(held));
    }
    let mtime = match fs::metadata(path) {
        Ok(meta) => meta.modified()?,
        // Released between our mkdir and stat: one more plain attempt, no stale check.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return mkdir_or_held(path),
        Err(err) => return Err(err),
    };
    let age = age_of(mtime);
    if age <= stale {
        return Ok(Attempt::Held { age });
    }
    // Stale: remove it, unless its holder touched it in the meantime.
    match fs::metadata(path) {
        Ok(meta) if meta.modified()? != mtime => {
            return Ok(Attempt::Held {
                age: Duration::ZERO,
            });
        }
        Ok(_) => remove_dir_if_present(path)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    mkdir_or_held(path)
}

fn mkdir_or_held(path: &Path) -> io::Result<Attempt> {
    Ok(match try_mkdir(path)? {
        Some(held) => Attempt::Acquired(held),
        None => Attempt::Held {
            age: Duration::ZERO,
        },
    })
}

/// `mkdir` the lock; `None` when it already exists.
fn try_mkdir(path: &Path) -> io::Result<Option<HeldDir>> {
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(err) => return Err(err),
    }
    match set_mtime_now(path) {
        Ok(mtime) => Ok(Some(HeldDir {
            path: path.to_owned(),
            mtime,
        })),
        Err(err) => {
            // As proper-lockfile does when its first touch fails: give the lock back.
            let _ = fs::remove_dir(path);
            Err(err)
        }
    }
}

/// How long ago `mtime` was; zero for an mtime in the future (proper-lockfile rounds its
/// first mtime up to the next second).
pub(crate) fn age_of(mtime: SystemTime) -> Duration {
    SystemTime::now()
        .duration_since(mtime)
        .unwrap_or(Duration::ZERO)
}

/// Sets `path`'s mtime (and atime) to now and returns the mtime the file system stored.
fn set_mtime_now(path: &Path) -> io::Result<SystemTime> {
    let now = SystemTime::now();
    let dir = File::open(path)?;
    dir.set_times(fs::FileTimes::new().set_accessed(now).set_modified(now))?;
    dir.metadata()?.modified()
}

fn remove_dir_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_dir(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Why a held lock was found not to be ours any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// The directory is gone.
    Removed,
    /// Its mtime is not the one we set: someone judged it stale and took it.
    Replaced,
}

impl HeldDir {
    /// The lock directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The lock directory's metadata, as it is now.
    pub(crate) fn metadata(&self) -> io::Result<fs::Metadata> {
        fs::metadata(&self.path)
    }

    /// Touches the lock so no one judges it stale. `Err(Lost)` when it is no longer ours;
    /// a transient I/O error is ignored (the next touch tries again, as proper-lockfile does).
    pub(crate) fn touch(&mut self) -> Result<(), Lost> {
        self.check_ours()?;
        if let Ok(mtime) = set_mtime_now(&self.path) {
            self.mtime = mtime;
        }
        Ok(())
    }

    /// Checks that the lock is still the one we took.
    pub(crate) fn check_ours(&self) -> Result<(), Lost> {
        match fs::metadata(&self.path) {
            Ok(meta) if meta.modified().ok() == Some(self.mtime) => Ok(()),
            Ok(_) => Err(Lost::Replaced),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(Lost::Removed),
            // Cannot tell: do not claim it was lost.
            Err(_) => Ok(()),
        }
    }

    /// Gives the lock back, unless it is no longer ours (then it belongs to someone else).
    pub(crate) fn release(self) -> io::Result<()> {
        match self.check_ours() {
            Ok(()) => remove_dir_if_present(&self.path),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sessctl-lockdir-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn set_mtime(path: &Path, mtime: SystemTime) {
        File::open(path).unwrap().set_modified(mtime).unwrap();
    }

    const STALE: Duration = Duration::from_secs(60);

    #[test]
    fn a_free_lock_is_taken_and_a_taken_one_is_held() {
        let dir = temp_dir("free");
        let path = dir.join("x.lock");
        let Attempt::Acquired(held) = try_lock(&path, STALE).unwrap() else {
            panic!("a free lock must be taken");
        };
        assert!(path.is_dir());
        assert!(matches!(
            try_lock(&path, STALE).unwrap(),
            Attempt::Held { .. }
        ));
        held.release().unwrap();
        assert!(!path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_older_than_the_stale_threshold_is_taken_over() {
        let dir = temp_dir("stale");
        let path = dir.join("x.lock");
        fs::create_dir(&path).unwrap();
        set_mtime(&path, SystemTime::now() - Duration::from_secs(61));
        assert!(matches!(
            try_lock(&path, STALE).unwrap(),
            Attempt::Acquired(_)
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_touched_within_the_threshold_is_not_broken() {
        let dir = temp_dir("fresh");
        let path = dir.join("x.lock");
        fs::create_dir(&path).unwrap();
        set_mtime(&path, SystemTime::now() - Duration::from_secs(59));
        let attempt = try_lock(&path, STALE).unwrap();
        assert!(matches!(attempt, Attempt::Held { age } if age >= Duration::from_secs(59)));
        assert!(path.is_dir());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_holder_whose_lock_was_taken_neither_touches_nor_removes_it() {
        let dir = temp_dir("lost");
        let path = dir.join("x.lock");
        let Attempt::Acquired(mut held) = try_lock(&path, STALE).unwrap() else {
            panic!("a free lock must be taken");
        };
        // Someone judged it stale, removed it and took it: a new mtime.
        let theirs = SystemTime::now() + Duration::from_secs(3);
        set_mtime(&path, theirs);
        assert_eq!(held.touch(), Err(Lost::Replaced));
        held.release().unwrap();
        assert!(path.is_dir(), "someone else's lock was removed");
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), theirs);
        fs::remove_dir_all(&dir).unwrap();
    }
}
