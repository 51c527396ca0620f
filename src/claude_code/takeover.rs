//! Claude Code 2.1.218+'s early takeover of a refresh lock whose holder is *proven* gone,
//! step for step as its 2.1.332 bundle does it (`kR`/`RYl`, with `Ch`, `rje`, `hw` and
//! `__t`), so sessctl breaks exactly the locks Claude Code itself would break, no more:
//!
//! - the caller has watched `.oauth_refresh.lock` (the new lock, never the legacy one alone)
//!   keep one mtime for at least [`WATCH`] (longer than the 5 s a live holder of any
//!   version touches it in);
//! - the owner record parses, and the lock's mtime is still the watched one and its birth
//!   time the record's `lockBirthtimeMs`;
//! - the record's `pidDomain` and `pidSpace` are ours (same machine, same pid namespace),
//!   and this process's view of `/proc` can be trusted;
//! - its pid is a valid pid and is dead (`kill(pid, 0)` fails with `ESRCH`), a zombie, or,
//!   when the record has a `procStart`, alive with another start time (the pid was reused);
//! - the legacy lock is absent or is the one the record names (its birth time).
//!
//! Then the legacy lock is removed, the new lock checked once more (mtime and birth time)
//! and removed, and the record removed if it is still that holder's. The caller then takes
//! the locks the ordinary way. Anything it cannot prove leaves the lock alone (the 60 s rule
//! still applies). Linux only: elsewhere a holder is never proven gone here.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::owner::{self, OwnerRecord};

/// How long the new lock's mtime must have stayed the same before its holder may be judged
/// gone (Claude Code's `oC`, 7.5 s: one and a half of its 5 s touch interval).
pub const WATCH: Duration = Duration::from_millis(7500);

/// What one takeover attempt found (Claude Code's outcome names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The holder was proven gone; its locks and record were removed.
    TakenOver,
    /// The lock is not the one watched any more (touched, released or replaced).
    LockChanged,
    /// No (valid) owner record: nothing proves the holder gone.
    NoOwnerRecord,
    /// The record belongs to another lock than the one held.
    RecordMismatch,
    /// The holder is on another machine or in another pid namespace.
    ForeignPidSpace,
    /// This process cannot trust what it sees in `/proc`.
    PidViewUntrusted,
    /// The holder's pid is alive (or cannot be judged).
    HolderNotProvenGone,
    /// The legacy lock is held by someone the record does not name.
    LegacyLockHeld,
}

/// Watches a held `.oauth_refresh.lock` across the attempts of one acquisition: says when
/// its mtime has stayed the same for [`WATCH`], once per mtime.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    seen: Option<(SystemTime, Instant)>,
    tried: Option<SystemTime>,
}

impl Watch {
    /// The lock's mtime when it has not changed for [`WATCH`] and no takeover was tried
    /// for it yet; `None` otherwise (and when it cannot be read).
    pub(crate) fn due(&mut self, main: &Path) -> Option<SystemTime> {
        let mtime = fs::metadata(main).and_then(|meta| meta.modified()).ok()?;
        match self.seen {
            Some((seen, since)) if seen == mtime => {
                if since.elapsed() >= WATCH && self.tried != Some(mtime) {
                    self.tried = Some(mtime);
                    return Some(mtime);
                }
            }
            _ => self.seen = Some((mtime, Instant::now())),
        }
        None
    }
}

/// The early takeover, tried once `main` has kept one mtime for [`WATCH`]: true when the lock is gone or changed and worth trying again now.
pub(crate) fn take_over_if_gone(dir: &Path, main: &Path, legacy: &Path, watch: &mut Watch) -> bool {
    let Some(mtime) = watch.due(main) else {
        return false;
    };
    match take_over(dir, main, legacy, mtime) {
        Ok(Outcome::TakenOver) => {
            tracing::warn!(
                lock = %main.display(),
                "took over Claude Code's refresh lock: its owner record proves the holder gone"
            );
            true
        }
        Ok(Outcome::LockChanged) => true,
        Ok(outcome) => {
            tracing::debug!(lock = %main.display(), "no early takeover: {outcome:?}");
            false
        }
        Err(err) => {
            tracing::warn!(lock = %main.display(), "early takeover skipped: {err}");
            false
        }
    }
}

/// Takes over the refresh locks of `dir` (`main`, `legacy`) when their holder is proven gone
/// (module header). `watched_mtime` is the mtime the caller saw unchanged for [`WATCH`].
pub fn take_over(
    dir: &Path,
    main: &Path,
    legacy: &Path,
    watched_mtime: SystemTime,
) -> io::Result<Outcome> {
    match attempt(dir, main, legacy, watched_mtime) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Outcome::LockChanged),
        other => other,
    }
}

fn attempt(
    dir: &Path,
    main: &Path,
    legacy: &Path,
    watched_mtime: SystemTime,
) -> io::Result<Outcome> {
    let Some(record) = read_record(dir) else {
        return Ok(if fs::metadata(main)?.modified()? == watched_mtime {
            Outcome::NoOwnerRecord
        } else {
            Outcome::LockChanged
        });
    };
    if let Some(changed) = still_watched(main, &record, watched_mtime)? {
        return Ok(changed);
    }
    if record.pid_domain != owner::pid_domain() || record.pid_space != owner::pid_space() {
        return Ok(Outcome::ForeignPidSpace);
    }
    if !pid_view_trusted() {
        return Ok(Outcome::PidViewUntrusted);
    }
    if !proven_gone(record.pid, record.proc_start.as_deref()) {
        return Ok(Outcome::HolderNotProvenGone);
    }
    match birth_ms(legacy) {
        Ok(birth) if !same_ms(Some(birth), record.legacy_lock_birthtime_ms) => {
            return Ok(Outcome::LegacyLockHeld);
        }
        Ok(_) => remove_dir(legacy)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    if let Some(changed) = still_watched(main, &record, watched_mtime)? {
        return Ok(changed);
    }
    remove_dir(main)?;
    owner::remove_if_ours(dir, &record);
    Ok(Outcome::TakenOver)
}

/// The owner record as Claude Code reads it: a file of at most 4096 bytes whose JSON fits
/// its schema (`procStart` at most 64 characters, `pidDomain` and `pidSpace` at most 512,
/// birth times positive); anything else is no record.
fn read_record(dir: &Path) -> Option<OwnerRecord> {
    if fs::metadata(owner::owner_path(dir)).ok()?.len() > 4096 {
        return None;
    }
    owner::read(dir).filter(|record| {
        record
            .proc_start
            .as_ref()
            .is_none_or(|start| start.chars().count() <= 64)
            && record.pid_domain.chars().count() <= 512
            && record.pid_space.chars().count() <= 512
            && record.lock_birthtime_ms > 0.0
            && record
                .legacy_lock_birthtime_ms
                .is_none_or(|birth| birth > 0.0)
    })
}

/// `None` while `main` is the watched lock the record names, else why not.
fn still_watched(
    main: &Path,
    record: &OwnerRecord,
    watched_mtime: SystemTime,
) -> io::Result<Option<Outcome>> {
    let meta = fs::metadata(main)?;
    if meta.modified()? != watched_mtime {
        return Ok(Some(Outcome::LockChanged));
    }
    let birth = meta.created().ok().map(owner::epoch_ms);
    Ok((!same_ms(birth, Some(record.lock_birthtime_ms))).then_some(Outcome::RecordMismatch))
}

/// A lock's birth time as JavaScript's `birthtimeMs` gives it.
fn birth_ms(path: &Path) -> io::Result<f64> {
    Ok(fs::metadata(path)?.created().map_or(0.0, owner::epoch_ms))
}

/// Two `birthtimeMs` values are one time (within a microsecond: the record went through
/// JSON). A zero or missing time matches nothing, as in Claude Code's schema.
fn same_ms(found: Option<f64>, recorded: Option<f64>) -> bool {
    match (found, recorded) {
        (Some(found), Some(recorded)) if found > 0.0 => (found - recorded).abs() < 1e-3,
        _ => false,
    }
}

/// `rmdir`, a missing dir being fine.
fn remove_dir(path: &Path) -> io::Result<()> {
    match fs::remove_dir(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Claude Code's `__t()`: `/proc/self` is this process and `/proc` lists at least 16 pids
/// (not a sandbox's narrow view).
#[cfg(target_os = "linux")]
fn pid_view_trusted() -> bool {
    let me = fs::read_link("/proc/self").ok();
    if me.as_deref() != Some(Path::new(&std::process::id().to_string())) {
        return false;
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    let pids = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
        })
        .count();
    pids >= 16
}

#[cfg(not(target_os = "linux"))]
fn pid_view_trusted() -> bool {
    false
}

/// Claude Code's test: a valid pid (`1 < pid <= 2^31-1`) that is dead, a zombie, or (with
/// `proc_start`) alive with another start time. A pid whose state cannot be read is not
/// proven gone.
#[cfg(target_os = "linux")]
pub(crate) fn proven_gone(pid: u32, proc_start: Option<&str>) -> bool {
    let Ok(pid_t) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid_t <= 1 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let dead = unsafe { libc::kill(pid_t, 0) } != 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    if dead {
        return true;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|at| stat.get(at + 2..))
        .and_then(|rest| rest.split(' ').next());
    if matches!(state, Some("Z" | "X")) {
        return true;
    }
    match (proc_start, owner::start_time_field(&stat)) {
        (Some(recorded), Some(now)) => recorded != now,
        _ => false,
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn proven_gone(_pid: u32, _proc_start: Option<&str>) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
#[path = "takeover_tests.rs"]
mod tests;
