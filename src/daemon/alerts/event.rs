//! What an alert says: the event (`all_inactive`, `slot_inactive`, `slot_recovered`) with
//! the slots it is about, as `alert_command` reads it (one line of JSON) and as a desktop
//! notification shows it (summary, body, urgency). Plain data and text, no I/O.
//!
//! An event never holds a token: a slot is described by its name, provider, account,
//! state, reason and the command that logs it in again.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::state::SlotState;

/// At most this many slots are listed in one desktop notification body: a notification
/// is no place for a long list (`sessctl status` has it all).
const MAX_SLOTS_IN_BODY: usize = 10;

/// Which alert this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Every slot is inactive (and there is at least one).
    AllInactive,
    /// One slot became inactive: it needs a new login.
    SlotInactive,
    /// A slot that was inactive is usable again (logged in anew).
    SlotRecovered,
}

impl AlertKind {
    /// The name used in the event JSON and in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::AllInactive => "all_inactive",
            AlertKind::SlotInactive => "slot_inactive",
            AlertKind::SlotRecovered => "slot_recovered",
        }
    }
}

/// One slot as an alert describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertSlot {
    pub name: String,
    pub provider: String,
    pub account: Option<String>,
    pub state: SlotState,
    pub reason: Option<String>,
    /// The command that logs this slot in again, with the flow that fits the machine as
    /// the daemon sees it (`--device` or `--manual` without a display): what a headless
    /// `alert_command` forwards.
    pub login_command: String,
    /// The command a desktop notification names: it shows on a desktop, so the browser
    /// flow fits there even when the daemon's own environment (a service's) has no display.
    #[serde(skip)]
    pub desktop_login_command: String,
}

impl AlertSlot {
    fn account_text(&self) -> &str {
        self.account.as_deref().unwrap_or("unknown account")
    }

    fn reason_text(&self) -> &str {
        self.reason.as_deref().unwrap_or("inactive")
    }
}

/// One alert, as `alert_command` receives it on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertEvent {
    pub event: AlertKind,
    pub slots: Vec<AlertSlot>,
    /// When the event was raised (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// True for a repeated `all_inactive` (see `alerts.remind_every`).
    pub reminder: bool,
}

fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// How urgent a desktop notification is (the freedesktop urgency levels we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Normal,
    Critical,
}

/// A desktop notification's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopNotice {
    pub summary: String,
    pub body: String,
    pub urgency: Urgency,
}

impl AlertEvent {
    /// A new event raised at `at`.
    pub fn new(event: AlertKind, slots: Vec<AlertSlot>, at: DateTime<Utc>) -> Self {
        AlertEvent {
            event,
            slots,
            at,
            reminder: false,
        }
    }

    /// The event as `alert_command` reads it: one line of JSON, newline-terminated.
    pub fn json_line(&self) -> String {
        // Serializing plain strings, enums and a time cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
        line.push('\n');
        line
    }

    /// The desktop notification for this event. A recovery shows none: the user has just
    /// logged the slot in and `sessctl login` said so; only the log and `alert_command`
    /// (which may have paged someone) hear about it.
    pub fn desktop(&self) -> Option<DesktopNotice> {
        match self.event {
            AlertKind::AllInactive => Some(DesktopNotice {
                summary: if self.reminder {
                    "sessctl: every account is still inactive".to_owned()
                } else {
                    "sessctl: every account is inactive".to_owned()
                },
                body: self.all_inactive_body(),
                urgency: Urgency::Critical,
            }),
            AlertKind::SlotInactive => {
                let slot = self.slots.first()?;
                Some(DesktopNotice {
                    summary: format!("sessctl: {} needs a new login", slot.name),
                    body: format!(
                        "Slot {} ({}) was deactivated: {}.\nRun: {}",
                        slot.name,
                        slot.account_text(),
                        slot.reason_text(),
                        slot.desktop_login_command
                    ),
                    urgency: Urgency::Normal,
                })
            }
            AlertKind::SlotRecovered => None,
        }
    }

    fn all_inactive_body(&self) -> String {
        let mut body = "No slot can get tokens any more. Log in again:".to_owned();
        for slot in self.slots.iter().take(MAX_SLOTS_IN_BODY) {
            body.push_str(&format!(
                "\n{} ({}, {}): {}",
                slot.name,
                slot.account_text(),
                slot.reason_text(),
                slot.desktop_login_command
            ));
        }
        if let Some(more) = self.slots.len().checked_sub(MAX_SLOTS_IN_BODY)
            && more > 0
        {
            body.push_str(&format!("\n... and {more} more (see sessctl status)"));
        }
        body
    }

    /// One line for the daemon's log.
    pub fn log_text(&self) -> String {
        let slots = self
            .slots
            .iter()
            .map(|s| {
                format!(
                    "{} ({}, {}; log in with: {})",
                    s.name,
                    s.account_text(),
                    s.reason.as_deref().unwrap_or("active"),
                    s.login_command
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let what = match (self.event, self.reminder) {
            (AlertKind::AllInactive, false) => "every slot is inactive",
            (AlertKind::AllInactive, true) => "reminder: every slot is still inactive",
            (AlertKind::SlotInactive, _) => "slot needs a new login",
            (AlertKind::SlotRecovered, _) => "slot is usable again",
        };
        format!("{what}: {slots}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str, state: SlotState, reason: Option<&str>) -> AlertSlot {
        AlertSlot {
            name: name.to_owned(),
            provider: "claude".to_owned(),
            account: Some(format!("{name}@example.com")),
            state,
            reason: reason.map(str::to_owned),
            login_command: format!("sessctl login {name} --provider claude --manual"),
            desktop_login_command: format!("sessctl login {name} --provider claude"),
        }
    }

    fn at() -> DateTime<Utc> {
        "2026-11-23T20:59:00.123Z".parse().unwrap()
    }

    #[test]
    fn the_event_json_has_the_documented_shape() {
        let event = AlertEvent::new(
            AlertKind::AllInactive,
            vec![slot("work", SlotState::Inactive, Some("session_expired"))],
            at(),
        );
        let line = event.json_line();
        assert!(
            line.ends_with('\n') && !line.trim_end().contains('\n'),
            "{line}"
        );
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "event": "all_inactive",
                "slots": [{
                    "name": "work",
                    "provider": "claude",
                    "account": "work@example.com",
                    "state": "inactive",
                    "reason": "session_expired",
                    "login_command": "sessctl login work --provider claude --manual",
                }],
                "at": "2026-11-23T20:59:00Z",
                "reminder": false,
            })
        );
        let mut recovered = event.clone();
        recovered.event = AlertKind::SlotRecovered;
        recovered.slots[0].state = SlotState::Active;
        recovered.slots[0].reason = None;
        let json: serde_json::Value = serde_json::from_str(&recovered.json_line()).unwrap();
        assert_eq!(json["event"], "slot_recovered");
        assert_eq!(json["slots"][0]["reason"], serde_json::Value::Null);
        assert_eq!(json["slots"][0]["state"], "active");
    }

    #[test]
    fn all_inactive_is_critical_and_names_every_slot_and_its_command() {
        let event = AlertEvent::new(
            AlertKind::AllInactive,
            vec![
                slot("home", SlotState::Inactive, Some("session_expired")),
                slot("work", SlotState::Inactive, Some("credentials_missing")),
            ],
            at(),
        );
        let notice = event.desktop().unwrap();
        assert_eq!(notice.urgency, Urgency::Critical);
        assert_eq!(notice.summary, "sessctl: every account is inactive");
        for needle in [
            "home (home@example.com, session_expired): sessctl login home --provider claude",
            "work (work@example.com, credentials_missing): sessctl login work --provider claude",
        ] {
            assert!(notice.body.contains(needle), "{}", notice.body);
        }
        // The desktop names the browser flow: a notification shows on a desktop, whatever
        // the daemon's own environment says (its `login_command` here has --manual).
        assert!(!notice.body.contains("--manual"), "{}", notice.body);
        let reminder = AlertEvent {
            reminder: true,
            ..event
        };
        assert!(
            reminder
                .desktop()
                .unwrap()
                .summary
                .contains("still inactive")
        );
    }

    #[test]
    fn a_long_list_of_slots_is_cut_short_in_the_body() {
        let slots = (0..25)
            .map(|i| slot(&format!("s{i}"), SlotState::Inactive, None))
            .collect();
        let body = AlertEvent::new(AlertKind::AllInactive, slots, at())
            .desktop()
            .unwrap()
            .body;
        assert_eq!(body.lines().count(), 1 + MAX_SLOTS_IN_BODY + 1, "{body}");
        assert!(body.ends_with("and 15 more (see sessctl status)"), "{body}");
    }

    #[test]
    fn slot_inactive_is_normal_and_names_slot_account_reason_and_command() {
        let event = AlertEvent::new(
            AlertKind::SlotInactive,
            vec![slot("work", SlotState::Inactive, Some("session_expired"))],
            at(),
        );
        let notice = event.desktop().unwrap();
        assert_eq!(notice.urgency, Urgency::Normal);
        assert_eq!(notice.summary, "sessctl: work needs a new login");
        assert_eq!(
            notice.body,
            "Slot work (work@example.com) was deactivated: session_expired.\n\
             Run: sessctl login work --provider claude"
        );
        assert!(event.log_text().contains("sessctl login work"));
    }

    #[test]
    fn a_recovery_shows_nothing_on_the_desktop() {
        let event = AlertEvent::new(
            AlertKind::SlotRecovered,
            vec![slot("work", SlotState::Active, None)],
            at(),
        );
        assert_eq!(event.desktop(), None);
        assert!(event.log_text().starts_with("slot is usable again: work"));
    }
}
