//! The daemon's log files on disk: their names, their order, and which old ones go. Shared
//! by the daemon's logging (which prunes) and `sessctl logs` (which reads), so both agree
//! on what a log file is. Plain `std` and `chrono`: the light CLI uses it.
//!
//! A log file is a regular file named `sessctl.log` (rotation `never`) or
//! `sessctl.<UTC period start>.log` with the period written `YYYY-MM-DD`, `YYYY-MM-DD-HH`
//! or `YYYY-MM-DD-HH-MM` (daily, hourly, minutely; the names tracing-appender gives).
//! Nothing else in the directory is ever deleted, whatever its name looks like.

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::LogRotation;

/// File names start with this (and a dot).
pub const FILE_PREFIX: &str = "sessctl";
/// File names end with this (after a dot).
pub const FILE_SUFFIX: &str = "log";

/// The period part of a log file name: `Some("")` for the undated `sessctl.log`,
/// `Some("2026-11-23-14")` for a dated one, `None` for any other name.
fn period_of(name: &str) -> Option<&str> {
    let inner = name
        .strip_prefix(FILE_PREFIX)?
        .strip_prefix('.')?
        .strip_suffix(FILE_SUFFIX)?;
    if inner.is_empty() {
        return Some("");
    }
    let period = inner.strip_suffix('.')?;
    is_period(period).then_some(period)
}

/// `YYYY-MM-DD`, optionally followed by `-HH` and then `-MM`: ASCII digits only.
fn is_period(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let widths = [4, 2, 2, 2, 2];
    (3..=5).contains(&groups.len())
        && groups
            .iter()
            .zip(widths)
            .all(|(g, w)| g.len() == w && g.bytes().all(|b| b.is_ascii_digit()))
}

/// True for a name the daemon's log appender writes (see the module docs).
pub fn is_log_file_name(name: &str) -> bool {
    period_of(name).is_some()
}

/// Orders log file names oldest first: dated files by their period (zero-padded, so text
/// order is time order, and a daily file sorts before the hourly files of its day), then
/// the undated `sessctl.log`, which only rotation `never` writes and which is then the
/// current file.
fn age_key(name: &str) -> (bool, &str) {
    let period = period_of(name).unwrap_or("");
    (period.is_empty(), period)
}

/// The log files in `dir`, oldest first. Only regular files with a log file name count
/// (a symlink or directory of that name does not).
///
/// # Errors
/// The directory cannot be read (`NotFound` when it does not exist).
pub fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_log_file_name(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(name);
        }
    }
    names.sort_by(|a, b| age_key(a).cmp(&age_key(b)));
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// The oldest log file in `dir` newer than `current` (by the period in the names), if any:
/// where a reader following `current` goes on after a rotation.
///
/// # Errors
/// The directory cannot be read.
pub fn next_after(dir: &Path, current: &Path) -> io::Result<Option<PathBuf>> {
    let name = current
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let key = age_key(name);
    Ok(list(dir)?.into_iter().find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| age_key(n) > key)
    }))
}

/// The file the daemon writes to at `now` with `rotation` (tracing-appender's name).
pub fn current_file_name(rotation: LogRotation, now: DateTime<Utc>) -> String {
    let format = match rotation {
        LogRotation::Daily => "%Y-%m-%d",
        LogRotation::Hourly => "%Y-%m-%d-%H",
        LogRotation::Minutely => "%Y-%m-%d-%H-%M",
        LogRotation::Never => return format!("{FILE_PREFIX}.{FILE_SUFFIX}"),
    };
    format!("{FILE_PREFIX}.{}.{FILE_SUFFIX}", now.format(format))
}

/// When the file after the one current at `now` starts; `None` for rotation `never`.
pub fn next_rotation_at(rotation: LogRotation, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let period_secs: i64 = match rotation {
        LogRotation::Daily => 86_400,
        LogRotation::Hourly => 3_600,
        LogRotation::Minutely => 60,
        LogRotation::Never => return None,
    };
    // Unix time has no leap seconds, so UTC periods are whole multiples of their length.
    let next = (now.timestamp().div_euclid(period_secs) + 1) * period_secs;
    DateTime::from_timestamp(next, 0)
}

/// Deletes the oldest log files in `dir` so that at most `keep` remain, counting the file
/// named `current` (which is never deleted, whether or not it exists yet). Returns what was
/// deleted; a file that cannot be deleted is reported and skipped.
///
/// # Errors
/// The directory cannot be read.
pub fn prune(dir: &Path, keep: usize, current: &str) -> io::Result<Vec<PathBuf>> {
    let others: Vec<PathBuf> = list(dir)?
        .into_iter()
        .filter(|p| p.file_name().is_none_or(|n| n != current))
        .collect();
    let excess = others.len().saturating_sub(keep.saturating_sub(1));
    let mut deleted = Vec::new();
    for path in others.into_iter().take(excess) {
        match std::fs::remove_file(&path) {
            Ok(()) => deleted.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("sessctl: cannot delete old log {}: {e}", path.display()),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn touch(dir: &Path, names: &[&str]) {
        for name in names {
            std::fs::write(dir.join(name), format!("{name}\n")).unwrap();
        }
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn temp_dir(tag: &str) -> PathBuf {
        crate::test_dirs::fresh(&format!("logfiles-{tag}"))
    }

    #[test]
    fn only_the_appenders_names_are_log_files() {
        for name in [
            "sessctl.log",
            "sessctl.2026-11-23.log",
            "sessctl.2026-11-23-07.log",
            "sessctl.2026-11-23-07-59.log",
        ] {
            assert!(is_log_file_name(name), "{name}");
        }
        for name in [
            "sessctl-notes.log",
            "sessctl.notes.log",
            "sessctl.2026-11-23.log.gz",
            "sessctl.2026-11-23.txt",
            "sessctl.2026-11-23-07-59-01.log",
            "sessctl.2026-1-23.log",
            "sessctl.2026-11-2x.log",
            "sessctl.2026-11-23-.log",
            "sessctl..log",
            "sessctl.log.1",
            "other.2026-11-23.log",
            "sessctl.２０２６-11-23.log",
            "",
        ] {
            assert!(!is_log_file_name(name), "{name}");
        }
    }

    #[test]
    fn current_names_match_each_rotation_in_utc() {
        let now = at("2026-11-23T07:05:09.5+02:00");
        let name = |r| current_file_name(r, now);
        assert_eq!(name(LogRotation::Daily), "sessctl.2026-11-23.log");
        assert_eq!(name(LogRotation::Hourly), "sessctl.2026-11-23-05.log");
        assert_eq!(name(LogRotation::Minutely), "sessctl.2026-11-23-05-05.log");
        assert_eq!(name(LogRotation::Never), "sessctl.log");
    }

    #[test]
    fn the_next_rotation_is_the_start_of_the_next_utc_period() {
        let now = at("2026-11-23T23:59:59.9Z");
        let next = |r| next_rotation_at(r, now);
        assert_eq!(
            next(LogRotation::Minutely),
            Some(at("2026-11-24T00:00:00Z"))
        );
        assert_eq!(next(LogRotation::Hourly), Some(at("2026-11-24T00:00:00Z")));
        assert_eq!(next(LogRotation::Daily), Some(at("2026-11-24T00:00:00Z")));
        assert_eq!(next(LogRotation::Never), None);
        let on_the_boundary = at("2026-11-23T10:00:00Z");
        assert_eq!(
            next_rotation_at(LogRotation::Hourly, on_the_boundary),
            Some(at("2026-11-23T11:00:00Z"))
        );
    }

    #[test]
    fn files_are_listed_oldest_first_by_the_period_in_their_name() {
        let dir = temp_dir("order");
        touch(
            &dir,
            &[
                "sessctl.2026-11-23-10.log",
                "sessctl.log",
                "sessctl.2026-11-22.log",
                "sessctl.2026-11-23.log",
                "sessctl.2025-12-31-23-59.log",
                "notes.txt",
            ],
        );
        std::fs::create_dir(dir.join("sessctl.2027-01-01.log")).unwrap();
        assert_eq!(
            names(&list(&dir).unwrap()),
            [
                "sessctl.2025-12-31-23-59.log",
                "sessctl.2026-11-22.log",
                "sessctl.2026-11-23.log",
                "sessctl.2026-11-23-10.log",
                "sessctl.log",
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_next_file_is_the_oldest_newer_one_even_if_the_current_is_gone() {
        let dir = temp_dir("next");
        touch(
            &dir,
            &[
                "sessctl.2026-11-23-10-00.log",
                "sessctl.2026-11-23-10-02.log",
                "sessctl.2026-11-23-10-03.log",
            ],
        );
        let next = |name: &str| next_after(&dir, &dir.join(name)).unwrap();
        assert_eq!(
            next("sessctl.2026-11-23-10-00.log"),
            Some(dir.join("sessctl.2026-11-23-10-02.log"))
        );
        assert_eq!(
            next("sessctl.2026-11-23-10-01.log"),
            Some(dir.join("sessctl.2026-11-23-10-02.log"))
        );
        assert_eq!(next("sessctl.2026-11-23-10-03.log"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pruning_keeps_the_newest_and_the_current_file_and_nothing_else_is_touched() {
        let dir = temp_dir("prune");
        let others = ["sessctl-notes.log", "sessctl.notes.log", "README", "x.log"];
        touch(&dir, &others);
        touch(
            &dir,
            &[
                "sessctl.2026-11-01.log",
                "sessctl.2026-11-02.log",
                "sessctl.2026-11-03.log",
                "sessctl.2026-11-04.log",
            ],
        );
        // The current file does not exist yet: it still counts as one of the three.
        let deleted = prune(&dir, 3, "sessctl.2026-11-05.log").unwrap();
        assert_eq!(
            names(&deleted),
            ["sessctl.2026-11-01.log", "sessctl.2026-11-02.log"]
        );
        // A current file that sorts oldest (the clock went back) is still kept.
        let deleted = prune(&dir, 1, "sessctl.2026-11-03.log").unwrap();
        assert_eq!(names(&deleted), ["sessctl.2026-11-04.log"]);
        assert_eq!(names(&list(&dir).unwrap()), ["sessctl.2026-11-03.log"]);
        for name in others {
            assert!(dir.join(name).exists(), "{name} was deleted");
        }
        assert!(prune(&dir, 1, "sessctl.2026-11-03.log").unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pruning_a_missing_directory_is_an_error_not_a_panic() {
        let dir = temp_dir("missing").join("nope");
        assert_eq!(
            prune(&dir, 3, "sessctl.log").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
