//! The log settings of the config: `log_rotation` (when the daemon starts a new log file)
//! and `log_retention` (how many log files are kept). Both are checked while deserializing,
//! so a bad value is refused with its line.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Log files kept by default: two weeks of daily files, enough to look back over a
/// holiday and find when a slot went bad.
pub const DEFAULT_LOG_RETENTION: usize = 14;

/// When the daemon starts a new log file. File names carry the period's start in UTC:
/// `sessctl.YYYY-MM-DD.log` (daily), `sessctl.YYYY-MM-DD-HH.log` (hourly),
/// `sessctl.YYYY-MM-DD-HH-MM.log` (minutely), `sessctl.log` (never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogRotation {
    /// A new file every day at midnight UTC (the default).
    #[default]
    Daily,
    /// A new file every hour.
    Hourly,
    /// A new file every minute: for trying out rotation and retention quickly.
    Minutely,
    /// One file, `sessctl.log`, that grows without bound.
    Never,
}

/// The values of `log_rotation`, as written in the file.
const ROTATIONS: &str = "daily, hourly, minutely or never";

impl<'de> Deserialize<'de> for LogRotation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LogRotation;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{ROTATIONS}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "daily" => Ok(LogRotation::Daily),
                    "hourly" => Ok(LogRotation::Hourly),
                    "minutely" => Ok(LogRotation::Minutely),
                    "never" => Ok(LogRotation::Never),
                    other => Err(E::custom(format!(
                        "{} is not a rotation; write {ROTATIONS}",
                        super::locate::show(other)
                    ))),
                }
            }
        }
        d.deserialize_str(V)
    }
}

/// `log_retention`: a whole number of files, at least 1 (the file being written counts).
pub(super) struct LogRetention(pub(super) usize);

impl<'de> Deserialize<'de> for LogRetention {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LogRetention;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number of log files, at least 1 (e.g. 14)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match usize::try_from(v) {
                    Ok(0) => Err(E::custom(
                        "must be at least 1 (the file being written counts as one)",
                    )),
                    Ok(n) => Ok(LogRetention(n)),
                    Err(_) => Err(E::custom(format!("{v} is too large"))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is negative; give a number of files, at least 1 (e.g. 14)"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}
