//! Claude Code's two locks over a credential store, taken the way Claude Code takes them
//! (2.1.197 and 2.1.332, read from the published bundles), so sessctl and a running Claude
//! Code never refresh or write one store at the same time:
//!
//! - [`RefreshLock`]: `<dir>/.oauth_refresh.lock`, then `<realpath of dir>.lock` (the lock
//!   2.1.197 and earlier use), held across re-read → refresh → write. If the second is held,
//!   the first is given back and the attempt counts as contended; if the second cannot be
//!   created at all (an unwritable parent), Claude Code goes on without it, and so do we.
//!   While held, sessctl writes the owner record (see `owner`) as 2.1.218+ does.
//! - [`StoreWriteLock`]: `<dir>/.storage-write.lock`, held around every store write.
//!
//! Staleness: 2.1.197 calls a refresh lock stale after 10 s, 2.1.218+ after 60 s; the
//! storage-write lock after 15 s. Holders of every version touch their lock every 5 s, so a
//! live lock is never older than a few seconds. sessctl holds its locks acceptably to both
//! versions (touching every 5 s, under the 10 s rule; owner record for the new one) and
//! breaks someone else's lock only by the rule of the version holding it, never a live one:
//! - `.oauth_refresh.lock` (only 2.1.218+ take it): after 60 s, or earlier when its owner
//!   record proves the holder gone, exactly as 2.1.218+ itself decides (`takeover`);
//! - `<realpath>.lock` while sessctl holds `.oauth_refresh.lock`: its holder is then an older
//!   Claude Code (2.1.218+ takes the new lock first and gives it back last), so 2.1.197's
//!   10 s rule applies, unless the owner record names that lock (60 s).
//!
//! Acquiring blocks the calling thread (polling with jitter until a deadline): call it from
//! `spawn_blocking` in async code. A guard keeps its locks fresh from a thread of its own and
//! gives them back when dropped. A guard whose lock was taken from it (its holder was judged
//! stale, e.g. after a suspend) reports `is_compromised()`: the caller must not send the
//! refresh token nor write under it.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::lockdir::{self, Attempt, HeldDir};
use super::owner::{self, OwnerRecord};
use super::store::ensure_private_dir;
use super::takeover::{self, Watch};

/// The refresh lock directory inside the storage dir.
pub const REFRESH_LOCK_DIR: &str = ".oauth_refresh.lock";
/// The storage-write lock directory inside the storage dir.
pub const STORAGE_WRITE_LOCK_DIR: &str = ".storage-write.lock";

/// How a lock is judged stale, kept fresh, and waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    /// Someone else's lock untouched for longer than this is stale and may be removed.
    pub stale: Duration,
    /// The same for the legacy refresh lock held by an older Claude Code (module header).
    pub legacy_stale: Duration,
    /// How often a held lock's mtime is refreshed.
    pub touch_every: Duration,
    /// Shortest pause between two attempts on a held lock (jittered up to twice this).
    pub poll: Duration,
}

impl LockTiming {
    /// The refresh lock: stale after 60 s (2.1.218+'s rule, the longer of the two, so no
    /// live holder of either version is ever broken); touched every 5 s (within 2.1.197's
    /// 10 s rule, as both versions touch theirs).
    /// An older Claude Code's legacy lock: 10 s, its own rule.
    pub const REFRESH: LockTiming = LockTiming {
        stale: Duration::from_secs(60),
        legacy_stale: Duration::from_secs(10),
        touch_every: Duration::from_secs(5),
        poll: Duration::from_millis(250),
    };
    /// The storage-write lock: stale after 15 s (Claude Code's rule), touched every 5 s.
    pub const STORAGE_WRITE: LockTiming = LockTiming {
        stale: Duration::from_secs(15),
        legacy_stale: Duration::from_secs(15),
        touch_every: Duration::from_secs(5),
        poll: Duration::from_millis(100),
    };
}

/// A Claude Code lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it and kept it fresh until the deadline.
    #[error("{} is held by another process (touched {:.1} s ago); gave up waiting", path.display(), age.as_secs_f64())]
    Busy { path: PathBuf, age: Duration },
    /// The file system refused (permissions, a full disk, a dir that cannot be created).
    #[error("cannot take the lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Claude Code's OAuth refresh lock over one storage dir.
pub struct RefreshLock;

impl RefreshLock {
    /// Takes both refresh locks of `dir` (creating `dir` 0700 when missing), waiting for a
    /// live holder until `deadline`.
    pub fn acquire(dir: &Path, deadline: Instant) -> Result<RefreshLockGuard, LockError> {
        Self::acquire_with(dir, deadline, LockTiming::REFRESH)
    }

    /// [`RefreshLock::acquire`] with other timing (tests use a shorter touch interval).
    pub fn acquire_with(
        dir: &Path,
        deadline: Instant,
        timing: LockTiming,
    ) -> Result<RefreshLockGuard, LockError> {
        ensure_private_dir(dir).map_err(|source| io_error(dir, source))?;
        let main_path = dir.join(REFRESH_LOCK_DIR);
        let legacy_path = legacy_lock_path(dir);
        let mut watch = Watch::default();
        loop {
            let (path, age) = match lockdir::try_lock(&main_path, timing.stale)
                .map_err(|source| io_error(&main_path, source))?
            {
                Attempt::Held { age } => {
                    if takeover::take_over_if_gone(dir, &main_path, &legacy_path, &mut watch) {
                        continue;
                    }
                    (&main_path, age)
                }
                Attempt::Acquired(main) => match take_legacy(main, dir, &legacy_path, timing)? {
                    Ok(held) => return Ok(RefreshLockGuard::start(dir, held, timing)),
                    Err(age) => (&legacy_path, age),
                },
            };
            pause_or_give_up(path, age, deadline, timing)?;
        }
    }
}

/// With `main` held, takes the legacy lock: `Ok(dirs to hold)`, or `Err(age)` when it is
/// held (then `main` has been given back, as Claude Code does).
fn take_legacy(
    main: HeldDir,
    dir: &Path,
    legacy_path: &Path,
    timing: LockTiming,
) -> Result<Result<Vec<HeldDir>, Duration>, LockError> {
    match lockdir::try_lock(legacy_path, legacy_stale(dir, legacy_path, timing)) {
        Ok(Attempt::Acquired(legacy)) => Ok(Ok(vec![main, legacy])),
        Ok(Attempt::Held { age }) => {
            let main_path = main.path().to_owned();
            main.release()
                .map_err(|source| io_error(&main_path, source))?;
            Ok(Err(age))
        }
        // Claude Code holds the new lock alone when the old one cannot be created.
        Err(_) => Ok(Ok(vec![main])),
    }
}

/// The stale rule for the legacy lock while sessctl holds the new one: an older Claude
/// Code's (`legacy_stale`), unless the owner record names this legacy lock (a 2.1.218+
/// holder's: `stale`).
fn legacy_stale(dir: &Path, legacy_path: &Path, timing: LockTiming) -> Duration {
    let birth = std::fs::metadata(legacy_path)
        .and_then(|meta| meta.created())
        .map(owner::epoch_ms);
    let named = owner::read(dir)
        .and_then(|record| record.legacy_lock_birthtime_ms)
        .zip(birth.ok())
        .is_some_and(|(named, birth)| (named - birth).abs() < 1e-3);
    if named {
        timing.stale
    } else {
        timing.legacy_stale
    }
}

/// `<realpath of dir>.lock` (the dir as given when it cannot be resolved).
pub fn legacy_lock_path(dir: &Path) -> PathBuf {
    let mut path = std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_owned())
        .into_os_string();
    path.push(".lock");
    PathBuf::from(path)
}

/// Claude Code's storage-write lock over one storage dir.
pub struct StoreWriteLock;

impl StoreWriteLock {
    /// Takes `<dir>/.storage-write.lock` (creating `dir` 0700 when missing), waiting for a
    /// live holder until `deadline`.
    pub fn acquire(dir: &Path, deadline: Instant) -> Result<StoreWriteGuard, LockError> {
        Self::acquire_with(dir, deadline, LockTiming::STORAGE_WRITE)
    }

    /// [`StoreWriteLock::acquire`] with other timing.
    pub fn acquire_with(
        dir: &Path,
        deadline: Instant,
        timing: LockTiming,
    ) -> Result<StoreWriteGuard, LockError> {
        ensure_private_dir(dir).map_err(|source| io_error(dir, source))?;
        let path = dir.join(STORAGE_WRITE_LOCK_DIR);
        loop {
            match lockdir::try_lock(&path, timing.stale)
                .map_err(|source| io_error(&path, source))?
            {
                Attempt::Acquired(held) => {
                    return Ok(StoreWriteGuard {
                        keeper: Keeper::start(vec![held], timing.touch_every),
                    });
                }
                Attempt::Held { age } => pause_or_give_up(&path, age, deadline, timing)?,
            }
        }
    }
}

/// Waits a jittered poll interval before the next attempt, or fails with `Busy` when the
/// deadline comes first.
fn pause_or_give_up(
    path: &Path,
    age: std::time::Duration,
    deadline: Instant,
    timing: LockTiming,
) -> Result<(), LockError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(LockError::Busy {
            path: path.to_owned(),
            age,
        });
    }
    let jitter = timing.poll.mul_f64(1.0 + fastrand::f64());
    std::thread::sleep(jitter.min(deadline - now));
    Ok(())
}

fn io_error(path: &Path, source: std::io::Error) -> LockError {
    LockError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Both refresh locks, held; given back (with the owner record) on drop.
pub struct RefreshLockGuard {
    dir: PathBuf,
    owner: Option<OwnerRecord>,
    keeper: Keeper,
}

impl RefreshLockGuard {
    fn start(dir: &Path, held: Vec<HeldDir>, timing: LockTiming) -> Self {
        let owner = write_owner_record(dir, &held);
        RefreshLockGuard {
            dir: dir.to_owned(),
            owner,
            keeper: Keeper::start(held, timing.touch_every),
        }
    }

    /// True when a lock was taken from us: send nothing, write nothing.
    pub fn is_compromised(&self) -> bool {
        self.keeper.is_compromised()
    }

    /// Whether the legacy `<realpath>.lock` is held too (false only when it could not be
    /// created at all).
    pub fn holds_legacy_lock(&self) -> bool {
        self.keeper.count() > 1
    }
}

impl Drop for RefreshLockGuard {
    fn drop(&mut self) {
        if let Some(record) = &self.owner {
            owner::remove_if_ours(&self.dir, record);
        }
        self.keeper.stop_and_release();
    }
}

/// The owner record for the held locks; `None` (and nothing written) when the file
/// system has no birth time, as Claude Code does.
fn write_owner_record(dir: &Path, held: &[HeldDir]) -> Option<OwnerRecord> {
    let birth = |lock: &HeldDir| lock.metadata().and_then(|meta| meta.created()).ok();
    let main_birth = birth(held.first()?)?;
    let legacy_birth = held.get(1).and_then(birth);
    let record = OwnerRecord::for_this_process(main_birth, legacy_birth);
    owner::write(dir, &record).ok()?;
    Some(record)
}

/// The storage-write lock, held; given back on drop.
pub struct StoreWriteGuard {
    keeper: Keeper,
}

impl StoreWriteGuard {
    /// True when the lock was taken from us: do not write.
    pub fn is_compromised(&self) -> bool {
        self.keeper.is_compromised()
    }
}

impl Drop for StoreWriteGuard {
    fn drop(&mut self) {
        self.keeper.stop_and_release();
    }
}

/// Held lock dirs and the thread that touches them.
struct Keeper {
    shared: Arc<Mutex<Shared>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    dirs: Vec<HeldDir>,
    lost: bool,
}

impl Keeper {
    fn start(dirs: Vec<HeldDir>, every: Duration) -> Self {
        let shared = Arc::new(Mutex::new(Shared { dirs, lost: false }));
        let (stop, stopped) = mpsc::channel::<()>();
        let touched = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("claude-code-lock".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let mut shared = touched
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let lost = shared.dirs.iter_mut().any(|dir| dir.touch().is_err());
                    shared.lost |= lost;
                }
            })
            .ok();
        Keeper {
            shared,
            stop: Some(stop),
            thread,
        }
    }

    fn count(&self) -> usize {
        self.shared.lock().map_or(0, |shared| shared.dirs.len())
    }

    fn is_compromised(&self) -> bool {
        let shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // No keeper thread: the locks go stale unattended.
        shared.lost
            || self.thread.is_none()
            || shared.dirs.iter().any(|dir| dir.check_ours().is_err())
    }

    fn stop_and_release(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Newest first: the legacy lock before the main one, as Claude Code releases them.
        while let Some(dir) = shared.dirs.pop() {
            let path = dir.path().to_owned();
            if let Err(err) = dir.release() {
                tracing::warn!(lock = %path.display(), "could not remove a Claude Code lock: {err}");
            }
        }
    }
}
