//! The owner record Claude Code 2.1.218 and later write beside their refresh lock,
//! `<dir>/.oauth_refresh.lock.owner`: `{pid, procStart, pidDomain, pidSpace,
//! lockBirthtimeMs, legacyLockBirthtimeMs}`. Claude Code reads it to take over a lock whose
//! holder is *proven* gone (same pid namespace, and the pid dead, a zombie, or started at a
//! different time), without waiting for the 60 s stale rule.
//!
//! sessctl writes the same record while it holds the lock, with values computed exactly as
//! Claude Code computes them (read from its 2.1.332 bundle), so Claude Code can tell a live
//! sessctl from a dead one. Every field that could be wrong errs on the safe side: a record
//! Claude Code cannot match (another pid domain, another birthtime) only stops it from taking
//! the lock early; `procStart`, the one field that could make a live holder look gone, is
//! written only on Linux, where it is field 22 of `/proc/self/stat` exactly as Claude Code
//! reads it, and left out elsewhere (it is optional in Claude Code's schema).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// The owner record's file name, beside the lock directory.
pub const OWNER_FILE: &str = ".oauth_refresh.lock.owner";

/// The record, field for field as Claude Code's schema has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRecord {
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_start: Option<String>,
    pub pid_domain: String,
    pub pid_space: String,
    pub lock_birthtime_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_lock_birthtime_ms: Option<f64>,
}

impl OwnerRecord {
    /// The record for this process holding a lock created at `lock_birth` (and the legacy
    /// lock created at `legacy_birth`, when held).
    pub fn for_this_process(lock_birth: SystemTime, legacy_birth: Option<SystemTime>) -> Self {
        OwnerRecord {
            pid: std::process::id(),
            proc_start: proc_start(),
            pid_domain: pid_domain(),
            pid_space: pid_space(),
            lock_birthtime_ms: epoch_ms(lock_birth),
            legacy_lock_birthtime_ms: legacy_birth.map(epoch_ms),
        }
    }
}

/// `<dir>/.oauth_refresh.lock.owner`.
pub fn owner_path(dir: &Path) -> PathBuf {
    dir.join(OWNER_FILE)
}

/// Writes `record` atomically (0600).
pub fn write(dir: &Path, record: &OwnerRecord) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    fsutil::write_atomic_private(&owner_path(dir), &bytes)
}

/// The record in `dir`, `None` when absent or unreadable.
pub fn read(dir: &Path) -> Option<OwnerRecord> {
    let bytes = std::fs::read(owner_path(dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes the record if it is still `ours` (as Claude Code does on release).
pub fn remove_if_ours(dir: &Path, ours: &OwnerRecord) {
    if read(dir).is_some_and(|found| {
        // Within a microsecond: serde_json's float parsing may differ from what it wrote in
        // the last bit (its `float_roundtrip` feature is off).
        found.pid == ours.pid && (found.lock_birthtime_ms - ours.lock_birthtime_ms).abs() < 1e-3
    }) {
        // Best effort: a leftover record matches no lock and is ignored by Claude Code.
        let _ = std::fs::remove_file(owner_path(dir));
    }
}

/// Milliseconds since the epoch as JavaScript's `Stats.birthtimeMs` gives them
/// (`sec * 1000 + nsec / 1e6`).
#[allow(clippy::cast_precision_loss)]
pub fn epoch_ms(time: SystemTime) -> f64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    since.as_secs() as f64 * 1000.0 + f64::from(since.subsec_nanos()) / 1e6
}

/// Field 22 (`starttime`) of `/proc/self/stat`, counted after the command name's `)`.
#[cfg(target_os = "linux")]
pub(crate) fn proc_start() -> Option<String> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    start_time_field(&stat)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn proc_start() -> Option<String> {
    None
}

/// What Claude Code's `ND()` extracts from a `/proc/<pid>/stat` line.
pub fn start_time_field(stat: &str) -> Option<String> {
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    after_name
        .split(' ')
        .nth(19)
        .filter(|field| !field.is_empty())
        .map(str::to_owned)
}

/// `linux:<machine-id>:<pid namespace link>` on Linux, `linux:<lowercase hostname>` on
/// Windows, `linux` elsewhere (sic: Claude Code returns that for macOS too).
pub(crate) fn pid_domain() -> String {
    if cfg!(target_os = "linux") {
        let machine_id = std::fs::read_to_string("/etc/machine-id")
            .map(|id| id.trim().to_owned())
            .unwrap_or_default();
        format!("linux:{machine_id}:{}", pid_namespace())
    } else if cfg!(windows) {
        format!("linux:{}", hostname().to_lowercase())
    } else {
        "linux".to_owned()
    }
}

/// `<hostname>#<pid namespace link>`, or the hostname alone without a namespace link.
pub(crate) fn pid_space() -> String {
    let namespace = pid_namespace();
    if namespace.is_empty() {
        hostname()
    } else {
        format!("{}#{namespace}", hostname())
    }
}

/// The target of `/proc/self/ns/pid` (`pid:[4026531836]`), empty when there is none.
fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|target| target.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The host name, as Node's `os.hostname()` gives it.
#[cfg(unix)]
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its whole length, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The host name, as Node's `os.hostname()` gives it (the NetBIOS name, near enough).
#[cfg(not(unix))]
fn hostname() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_when_the_name_has_spaces_and_parens() {
        let mut fields = vec!["S".to_owned()];
        fields.extend((4..=52).map(|n| n.to_string()));
        let line = format!("1234 (a (b) c) {}", fields.join(" "));
        assert_eq!(start_time_field(&line).as_deref(), Some("22"));
        assert_eq!(start_time_field("garbage"), None);
        assert_eq!(start_time_field("1 (x)"), None);
    }

    #[test]
    fn the_record_uses_claude_codes_field_names() {
        let record = OwnerRecord {
            pid: 7,
            proc_start: Some("99".into()),
            pid_domain: "linux:m:pid:[1]".into(),
            pid_space: "h#pid:[1]".into(),
            lock_birthtime_ms: 1_700_000_000_123.5,
            legacy_lock_birthtime_ms: None,
        };
        let json: serde_json::Value = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"pid": 7, "procStart": "99", "pidDomain": "linux:m:pid:[1]",
                "pidSpace": "h#pid:[1]", "lockBirthtimeMs": 1_700_000_000_123.5})
        );
    }

    #[test]
    fn epoch_ms_keeps_the_fraction_like_javascript() {
        let time = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
        assert!((epoch_ms(time) - 1_700_000_000_123.456_8).abs() < 1e-3);
    }
}
