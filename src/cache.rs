//! The merged quota cache (`$XDG_CACHE_HOME/sessctl/quota.json`): every slot's latest usage
//! windows in one file, written by the daemon atomically (0600) after every change and read
//! by `sessctl statusline` without waking anything. Never holds a token.
//!
//! Staleness has two levels, checked independently: the cache as a whole (its `updated_at`)
//! and each slot's own data (its `fetched_at`). A fresh cache over old slot data is stale.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::SlotState;

/// Claude's five-hour usage window.
pub const FIVE_HOUR: &str = "five_hour";
/// Claude's seven-day usage window.
pub const SEVEN_DAY: &str = "seven_day";

/// The windows displays show by default, with their short labels, in display order.
pub const LABELLED_WINDOWS: [(&str, &str); 2] = [(FIVE_HOUR, "5h"), (SEVEN_DAY, "7d")];

/// Claude's other windows, shown by `status` when the reply has them, with their labels.
pub const OTHER_LABELLED_WINDOWS: [(&str, &str); 3] = [
    ("seven_day_opus", "7d-opus"),
    ("seven_day_sonnet", "7d-sonnet"),
    ("seven_day_oauth_apps", "7d-apps"),
];

/// A window's short label for display: `5h`, `7d`, `7d-opus`, ..., else its name as the
/// cache has it.
pub fn window_label(name: &str) -> &str {
    LABELLED_WINDOWS
        .iter()
        .chain(&OTHER_LABELLED_WINDOWS)
        .find(|(window, _)| *window == name)
        .map_or(name, |(_, label)| label)
}

/// The whole cache file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaCache {
    /// When the daemon last wrote the file.
    pub updated_at: DateTime<Utc>,
    /// The daemon's `stale_after`, in seconds, so readers judge staleness the same way
    /// without reading the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_secs: Option<u64>,
    pub slots: BTreeMap<String, SlotQuota>,
}

/// One slot's quota as last fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotQuota {
    pub account: Option<String>,
    /// The slot's provider (`claude`, ...), so `statusline` can tell which slot Claude
    /// Code's own figures belong to. Absent in caches written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub state: SlotState,
    /// When this slot's windows were fetched; `None` before the first good fetch.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Window name (`five_hour`, `seven_day`, ...) to its figures.
    #[serde(default)]
    pub windows: BTreeMap<String, Window>,
    /// The last fetch's error, if it failed (the windows are then the last good data).
    pub error: Option<String>,
    /// Claude's pay-as-you-go credit spend (`extra_usage`), when the reply has it. Not a
    /// window: it never counts towards a quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_usage: Option<ExtraUsage>,
    /// For a slot whose credentials stay in Claude Code's store: its config dir as the slot
    /// records it, so `statusline` can tell which slot a Claude Code session (by its
    /// `CLAUDE_CONFIG_DIR`) runs on. Absent for other slots and in older caches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_code: Option<String>,
}

/// Claude's `extra_usage`: credits spent beyond the plan this month, as the usage endpoint
/// says them. Amounts are in the currency's minor units (cents), as sent; each field is
/// `None` when the reply lacks it or gives the wrong type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraUsage {
    pub is_enabled: Option<bool>,
    /// The monthly cap in minor units; `None`: no cap given.
    pub monthly_limit: Option<f64>,
    /// Spent this month, in minor units.
    pub used_credits: Option<f64>,
    /// Percent of the cap spent.
    pub utilization: Option<f64>,
    /// ISO 4217 code (`USD`).
    pub currency: Option<String>,
}

impl ExtraUsage {
    /// `extra 27.63/100.00 USD` for an enabled spend, `None` when it is off or says nothing
    /// spent or capped.
    pub fn summary(&self) -> Option<String> {
        if self.is_enabled != Some(true) {
            return None;
        }
        let money = |minor: f64| format!("{:.2}", minor / 100.0);
        let amount = match (self.used_credits, self.monthly_limit) {
            (Some(used), Some(limit)) => format!("{}/{}", money(used), money(limit)),
            (Some(used), None) => money(used),
            (None, Some(limit)) => format!("0.00/{}", money(limit)),
            (None, None) => return None,
        };
        Some(match &self.currency {
            Some(currency) => format!("extra {amount} {currency}"),
            None => format!("extra {amount}"),
        })
    }
}

/// One usage window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Percent of the window used, 0-100.
    pub utilization: f64,
    pub resets_at: Option<DateTime<Utc>>,
}

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot read quota cache {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("quota cache {path} is unreadable: {message}")]
    Corrupt {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("cannot write quota cache {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl QuotaCache {
    /// Reads and parses the cache file.
    pub fn read(path: &Path) -> Result<QuotaCache, CacheError> {
        let bytes = std::fs::read(path).map_err(|source| CacheError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| CacheError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Writes the cache atomically with mode 0600 (creating its 0700 directory), as compact
    /// JSON: at 1,000 slots pretty-printing cost a third more bytes for no reader. [`Self::read`]
    /// takes any layout, so a pretty file from an older sessctl still loads.
    pub fn write(&self, path: &Path) -> Result<(), CacheError> {
        let write_error = |source| CacheError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            crate::fsutil::create_private_dir(dir).map_err(write_error)?;
        }
        let mut bytes =
            serde_json::to_vec(self).map_err(|e| write_error(std::io::Error::other(e)))?;
        bytes.push(b'\n');
        crate::fsutil::write_atomic_private(path, &bytes).map_err(write_error)
    }

    /// The cache level: stale when the daemon has not written it for `stale_after`.
    pub fn is_stale(&self, now: DateTime<Utc>, stale_after: Duration) -> bool {
        older_than(Some(self.updated_at), now, stale_after)
    }
}

impl SlotQuota {
    /// The slot level: stale when its own data is older than `stale_after`, or missing
    /// while the slot is active. Independent of the cache's `updated_at`.
    pub fn is_stale(&self, now: DateTime<Utc>, stale_after: Duration) -> bool {
        match self.fetched_at {
            None => self.state != SlotState::Inactive,
            at => older_than(at, now, stale_after),
        }
    }
}

/// True when `at` is missing or more than `limit` before `now`.
pub fn older_than(at: Option<DateTime<Utc>>, now: DateTime<Utc>, limit: Duration) -> bool {
    match at {
        None => true,
        Some(at) => (now - at).to_std().is_ok_and(|age| age > limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const FIFTEEN_MIN: Duration = Duration::from_secs(900);

    fn slot(fetched_at: Option<&str>, state: SlotState) -> SlotQuota {
        SlotQuota {
            account: Some("a@b.c".into()),
            provider: None,
            state,
            fetched_at: fetched_at.map(at),
            windows: BTreeMap::new(),
            error: None,
            extra_usage: None,
            claude_code: None,
        }
    }

    #[test]
    fn a_fresh_cache_over_old_slot_data_is_flagged_at_the_slot_level() {
        let now = at("2026-11-23T12:00:00Z");
        let cache = QuotaCache {
            updated_at: at("2026-11-23T11:59:00Z"),
            stale_after_secs: None,
            slots: BTreeMap::from([(
                "work".to_owned(),
                slot(Some("2026-11-23T01:00:00Z"), SlotState::Active),
            )]),
        };
        assert!(!cache.is_stale(now, FIFTEEN_MIN));
        assert!(cache.slots["work"].is_stale(now, FIFTEEN_MIN));
    }

    #[test]
    fn writes_are_compact_and_pretty_caches_from_older_versions_still_load() {
        let dir = crate::test_dirs::fresh("cache-compact");
        let path = dir.join("quota.json");
        let mut window = BTreeMap::new();
        window.insert(
            FIVE_HOUR.to_owned(),
            Window {
                utilization: 16.0,
                resets_at: Some(at("2026-11-23T14:00:00Z")),
            },
        );
        let cache = QuotaCache {
            updated_at: at("2026-11-23T11:59:00Z"),
            stale_after_secs: Some(900),
            slots: BTreeMap::from([(
                "work".to_owned(),
                SlotQuota {
                    windows: window,
                    ..slot(Some("2026-11-23T11:58:00Z"), SlotState::Active)
                },
            )]),
        };
        cache.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "one line of compact JSON: {text}");
        assert_eq!(QuotaCache::read(&path).unwrap(), cache);
        std::fs::write(&path, serde_json::to_vec_pretty(&cache).unwrap()).unwrap();
        assert_eq!(QuotaCache::read(&path).unwrap(), cache);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn windows_have_one_short_label_each() {
        assert_eq!(window_label("five_hour"), "5h");
        assert_eq!(window_label("seven_day"), "7d");
        assert_eq!(window_label("seven_day_opus"), "7d-opus");
        assert_eq!(window_label("seven_day_sonnet"), "7d-sonnet");
        assert_eq!(window_label("seven_day_oauth_apps"), "7d-apps");
        assert_eq!(window_label("cinder_cove"), "cinder_cove");
    }

    #[test]
    fn missing_data_is_stale_only_for_slots_that_should_have_it() {
        let now = at("2026-11-23T12:00:00Z");
        assert!(slot(None, SlotState::Active).is_stale(now, FIFTEEN_MIN));
        assert!(slot(None, SlotState::Degraded).is_stale(now, FIFTEEN_MIN));
        assert!(!slot(None, SlotState::Inactive).is_stale(now, FIFTEEN_MIN));
        assert!(!slot(Some("2026-11-23T11:50:00Z"), SlotState::Active).is_stale(now, FIFTEEN_MIN));
    }
}
