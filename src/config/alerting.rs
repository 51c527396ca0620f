//! The alerting keys of the config: `notifications` (desktop or none), `alert_command` (a
//! program run with each alert event on stdin) and the `alerts:` section (`remind_every`).
//! Each value is checked while deserializing, so a mistake is refused with its line.
//!
//! `alert_command` is run without a shell: a YAML list `[program, arg, ...]`, or one string
//! naming a lone program. The program is an absolute path or a bare name looked up in the
//! daemon's `PATH`; a relative path (`bin/x`, `./x`, `~/x`) is refused, because it would
//! depend on the daemon's working directory (and `~` is not expanded without a shell).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::locate::show;
use super::values::{DurationField, parse_config_duration};

/// While every slot stays inactive, the all-inactive alert is repeated this often: often
/// enough that a dead setup is not forgotten for a day, rare enough not to nag.
pub const DEFAULT_REMIND_EVERY: Duration = Duration::from_secs(4 * 3600);
/// How long one run of `alert_command` may take before it is killed: ample for a mail or
/// HTTP relay, short enough that a hung one does not hold back the next alert for long.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest accepted `remind_every`: anything shorter is a notification storm.
pub const MIN_REMIND_EVERY: Duration = Duration::from_secs(1);

/// Where alerts are shown besides the log (and `alert_command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
pub enum Notifications {
    /// Desktop notifications over D-Bus (Linux) or the platform's notification centre.
    #[default]
    #[serde(rename = "desktop")]
    Desktop,
    /// No desktop notifications at all (headless machines; use `alert_command`).
    #[serde(rename = "none")]
    Off,
}

/// The program `alert_command` names and its arguments (no shell involved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCommand {
    /// An absolute path, or a bare name looked up in `PATH`.
    pub program: String,
    pub args: Vec<String>,
}

/// The `alerts:` section, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertsConfig {
    /// Repeat the all-inactive alert this often while it lasts; `None`: never.
    pub remind_every: Option<Duration>,
    /// How long one run of `alert_command` may take before it is killed.
    pub command_timeout: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            remind_every: Some(DEFAULT_REMIND_EVERY),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }
}

/// The `alerts:` section as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    remind_every: Option<RemindEvery>,
    command_timeout: Option<DurationField<false>>,
}

impl RawAlerts {
    pub(super) fn build(self) -> AlertsConfig {
        let mut c = AlertsConfig::default();
        if let Some(RemindEvery(every)) = self.remind_every {
            c.remind_every = every;
        }
        if let Some(timeout) = self.command_timeout {
            c.command_timeout = timeout.0;
        }
        c
    }
}

/// `remind_every`: a duration of at least [`MIN_REMIND_EVERY`], or `0`, any zero duration
/// (`0s`) or `off` for no reminders.
struct RemindEvery(Option<Duration>);

impl<'de> Deserialize<'de> for RemindEvery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RemindEvery;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as 4h or 30m, or 0 for no reminders")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_remind_every(v).map(RemindEvery).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a `remind_every` value; `Ok(None)` means reminders are off.
fn parse_remind_every(text: &str) -> Result<Option<Duration>, String> {
    let s = text.trim();
    if s == "0" || s == "off" {
        return Ok(None);
    }
    match parse_config_duration(s)? {
        d if d.is_zero() => Ok(None),
        d if d < MIN_REMIND_EVERY => Err(format!(
            "{} is too short: at least 1s, or 0 to turn reminders off",
            show(s)
        )),
        d => Ok(Some(d)),
    }
}

/// `alert_command` as written: a list or one string, checked by [`check_command`].
pub(super) struct RawAlertCommand(pub(super) AlertCommand);

impl<'de> Deserialize<'de> for RawAlertCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAlertCommand;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list [program, argument, ...] or the path of a lone program")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.trim() != v || v.contains(char::is_whitespace) {
                    return Err(E::custom(format!(
                        "{} has spaces, and alert_command is run without a shell: write it \
                         as a list, e.g. [notify-send, \"--urgency=critical\"]",
                        show(v)
                    )));
                }
                check_command(vec![v.to_owned()])
                    .map(RawAlertCommand)
                    .map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                check_command(items)
                    .map(RawAlertCommand)
                    .map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Checks a program and its arguments: a non-empty list, a program that is an absolute path
/// or a bare name, no NUL byte anywhere (it cannot be passed to a program).
fn check_command(mut items: Vec<String>) -> Result<AlertCommand, String> {
    if items.iter().any(|i| i.contains('\0')) {
        return Err("must not contain a NUL character".to_owned());
    }
    if items.is_empty() {
        return Err("must name a program: [program, argument, ...]".to_owned());
    }
    let program = items.remove(0);
    if program.trim().is_empty() {
        return Err("the program must not be empty".to_owned());
    }
    if program.contains('/') && !Path::new(&program).is_absolute() {
        return Err(format!(
            "{} is a relative path, which would depend on the daemon's working directory \
             (and ~ is not expanded): give an absolute path, or a bare name to look up in PATH",
            show(&program)
        ));
    }
    if program.starts_with('~') {
        return Err(format!(
            "{}: ~ is not expanded (there is no shell); give an absolute path",
            show(&program)
        ));
    }
    Ok(AlertCommand {
        program,
        args: items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{parse, refused};

    #[test]
    fn alerting_defaults_are_desktop_no_command_and_a_4h_reminder() {
        let c = parse("stale_after: 5m\n").unwrap();
        assert_eq!(c.notifications, Notifications::Desktop);
        assert_eq!(c.alert_command, None);
        assert_eq!(c.alerts.remind_every, Some(Duration::from_secs(4 * 3600)));
        assert_eq!(c.alerts.command_timeout, Duration::from_secs(10));
        assert_eq!(parse("alerts:\n").unwrap().alerts, AlertsConfig::default());
        assert_eq!(
            parse("alerts: {}\n").unwrap().alerts,
            AlertsConfig::default()
        );
    }

    #[test]
    fn every_alerting_key_is_read() {
        let c = parse(
            "notifications: none\nalert_command: [/usr/local/bin/page, --to, ops]\n\
             alerts:\n  remind_every: 1h30m\n  command_timeout: 2s\n",
        )
        .unwrap();
        assert_eq!(c.notifications, Notifications::Off);
        let command = c.alert_command.unwrap();
        assert_eq!(command.program, "/usr/local/bin/page");
        assert_eq!(command.args, ["--to", "ops"]);
        assert_eq!(c.alerts.remind_every, Some(Duration::from_secs(5400)));
        assert_eq!(c.alerts.command_timeout, Duration::from_secs(2));
        let c = parse("notifications: desktop\nalert_command: ntfy-sessctl\n").unwrap();
        assert_eq!(c.notifications, Notifications::Desktop);
        let command = c.alert_command.unwrap();
        assert_eq!(
            (command.program.as_str(), command.args.len()),
            ("ntfy-sessctl", 0)
        );
    }

    #[test]
    fn zero_or_off_turns_reminders_off() {
        for value in ["0", "'0'", "0s", "0m", "0h0m", "off", "'off'"] {
            let c = parse(&format!("alerts:\n  remind_every: {value}\n")).unwrap();
            assert_eq!(c.alerts.remind_every, None, "{value}");
        }
        for (value, secs) in [("2s", 2), ("1s", 1), ("4h", 14_400), ("1d", 86_400)] {
            let c = parse(&format!("alerts:\n  remind_every: {value}\n")).unwrap();
            assert_eq!(
                c.alerts.remind_every,
                Some(Duration::from_secs(secs)),
                "{value}"
            );
        }
    }

    #[test]
    #[allow(
        clippy::too_many_lines,
        reason = "a table of cases, one per refused value"
    )]
    fn bad_alerting_values_are_refused_at_their_key_and_line() {
        let cases = [
            (
                "notifications: dbus\n",
                1,
                "notifications",
                "unknown variant",
            ),
            ("notifications: [desktop]\n", 1, "notifications", ""),
            (
                "# x\nalerts:\n  remind_every: 4\n",
                3,
                "alerts.remind_every",
                "no unit",
            ),
            (
                "alerts:\n  remind_every: 500ms\n",
                2,
                "alerts.remind_every",
                "too short",
            ),
            (
                "alerts:\n  remind_every: -1h\n",
                2,
                "alerts.remind_every",
                "not a duration",
            ),
            (
                "alerts:\n  remind_every: 4 hours\n",
                2,
                "alerts.remind_every",
                "",
            ),
            (
                "alerts:\n  remind_every: [4h]\n",
                2,
                "alerts.remind_every",
                "invalid type",
            ),
            (
                "alerts:\n  command_timeout: 0s\n",
                2,
                "alerts.command_timeout",
                "greater than zero",
            ),
            (
                "alerts:\n  command_timeout: 10\n",
                2,
                "alerts.command_timeout",
                "no unit",
            ),
            (
                "alerts:\n  remind: 4h\n",
                2,
                "alerts.remind",
                "unknown field",
            ),
            ("alerts: 4h\n", 1, "alerts", "invalid type"),
            (
                "alert_command: []\n",
                1,
                "alert_command",
                "must name a program",
            ),
            ("alert_command: ['']\n", 1, "alert_command", "empty"),
            ("alert_command: ''\n", 1, "alert_command", "empty"),
            (
                "alert_command: notify-send -u critical\n",
                1,
                "alert_command",
                "as a list",
            ),
            (
                "alert_command: [bin/alert]\n",
                1,
                "alert_command",
                "relative path",
            ),
            (
                "alert_command: ./alert\n",
                1,
                "alert_command",
                "relative path",
            ),
            (
                "alert_command: [~/bin/alert, x]\n",
                1,
                "alert_command",
                "absolute path",
            ),
            (
                "alert_command: '~alert'\n",
                1,
                "alert_command",
                "not expanded",
            ),
            ("alert_command: [\"a\\0b\"]\n", 1, "alert_command", "NUL"),
            (
                "alert_command: {program: x}\n",
                1,
                "alert_command",
                "invalid type",
            ),
            (
                "stale_after: 5m\nalert_command: 7\n",
                2,
                "alert_command",
                "invalid type",
            ),
        ];
        for (text, line, key, words) in cases {
            let (l, k, m) = refused(text);
            assert_eq!((l, k.as_str()), (line, key), "{text:?}: {m}");
            assert!(m.contains(words), "{text:?}: {m}");
            assert!(!m.contains("Raw"), "{m}");
        }
    }
}
