//! Which alerts are due: the pure part of alerting, owned by the manager. [`Alerts`]
//! compares the slots with what it last saw and turns transitions into events:
//! `slot_inactive` (a slot became inactive), `slot_recovered` (an inactive slot became
//! usable again), `all_inactive` (the last slot went; once per transition, again only after
//! some slot came back and all fell again), plus a reminder `all_inactive` every
//! `alerts.remind_every` while it lasts. A daemon that starts with slots already inactive
//! announces them once: the user may not know. Delivery is `crate::daemon::alerts`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::state::SlotState;

use crate::daemon::alerts::{AlertEvent, AlertKind, AlertSlot};

use super::schedule::delta;
use super::slot::Slot;

impl AlertSlot {
    /// How `slot` stands now.
    pub fn of(slot: &Slot, config: &Config) -> Self {
        AlertSlot {
            name: slot.name.clone(),
            provider: slot.record.provider.clone(),
            account: slot.record.account.clone(),
            state: slot.record.state,
            reason: slot.record.reason.clone(),
            login_command: slot.login_command(config),
            desktop_login_command: slot.login_command_where(config, true),
        }
    }
}

/// What was last announced, and when the next reminder is due.
#[derive(Debug, Default)]
pub struct Alerts {
    /// The slots that were inactive at the last observation.
    inactive: BTreeSet<String>,
    /// Whether every slot was inactive (and there was one) at the last observation.
    all_inactive: bool,
    /// When the next reminder is due, while every slot is inactive and reminders are on.
    reminder_at: Option<DateTime<Utc>>,
}

impl Alerts {
    /// Compares `slots` with the last observation and returns the events for what changed,
    /// in this order: recoveries, new deactivations, then `all_inactive`. Looks at every
    /// slot (and every slot seen before); the manager uses [`Alerts::observe_changed`].
    #[cfg(test)]
    pub fn observe(
        &mut self,
        slots: &BTreeMap<String, Slot>,
        config: &Config,
        now: DateTime<Utc>,
    ) -> Vec<AlertEvent> {
        let mut names: BTreeSet<String> = slots.keys().cloned().collect();
        names.extend(self.inactive.iter().cloned());
        self.observe_changed(slots, &names, config, now)
    }

    /// [`Alerts::observe`] looking only at `changed`: the names of every slot added,
    /// changed or removed since the last observation (the others cannot have moved), so
    /// an event costs what it changed, not the number of slots.
    pub fn observe_changed(
        &mut self,
        slots: &BTreeMap<String, Slot>,
        changed: &BTreeSet<String>,
        config: &Config,
        now: DateTime<Utc>,
    ) -> Vec<AlertEvent> {
        let one = |kind, slot: &Slot| AlertEvent::new(kind, vec![AlertSlot::of(slot, config)], now);
        let (mut recovered, mut fell) = (Vec::new(), Vec::new());
        for name in changed {
            let slot = slots.get(name);
            let inactive = slot.is_some_and(|s| s.record.state == SlotState::Inactive);
            match (self.inactive.contains(name), inactive, slot) {
                (true, false, slot) => {
                    self.inactive.remove(name);
                    // A removed slot did not recover: it is gone (a logout says so).
                    recovered.extend(slot.map(|s| one(AlertKind::SlotRecovered, s)));
                }
                (false, true, Some(slot)) => {
                    self.inactive.insert(name.clone());
                    fell.push(one(AlertKind::SlotInactive, slot));
                }
                _ => {}
            }
        }
        let mut events = recovered;
        events.append(&mut fell);
        let all_inactive = !slots.is_empty() && self.inactive.len() == slots.len();
        if all_inactive && !self.all_inactive {
            events.push(all_inactive_event(slots, config, now));
            self.reminder_at = config.alerts.remind_every.map(|every| now + delta(every));
        } else if !all_inactive {
            self.reminder_at = None;
        }
        self.all_inactive = all_inactive;
        events
    }

    /// The slots counted as inactive (for checks against a full scan).
    #[cfg(test)]
    pub fn inactive(&self) -> &BTreeSet<String> {
        &self.inactive
    }

    /// When the next reminder is due, if one is pending: a deadline for the manager.
    pub fn reminder_at(&self) -> Option<DateTime<Utc>> {
        self.reminder_at
    }

    /// The reminder that is due at `now`, if any; the next one is then due a full
    /// `remind_every` later (a reminder missed during a suspend is sent once, not in a
    /// burst). `slots` are as of the last [`Alerts::observe`].
    pub fn due_reminder(
        &mut self,
        slots: &BTreeMap<String, Slot>,
        config: &Config,
        now: DateTime<Utc>,
    ) -> Option<AlertEvent> {
        let every = config.alerts.remind_every?;
        if !self.all_inactive || self.reminder_at.is_none_or(|at| at > now) {
            return None;
        }
        self.reminder_at = Some(now + delta(every));
        let mut event = all_inactive_event(slots, config, now);
        event.reminder = true;
        Some(event)
    }
}

fn all_inactive_event(
    slots: &BTreeMap<String, Slot>,
    config: &Config,
    now: DateTime<Utc>,
) -> AlertEvent {
    let described = slots.values().map(|s| AlertSlot::of(s, config)).collect();
    AlertEvent::new(AlertKind::AllInactive, described, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SlotRecord;
    use std::time::Duration;

    fn at(s: &str) -> DateTime<Utc> {
        format!("2026-11-23T{s}Z").parse().unwrap()
    }

    fn slots(states: &[(&str, SlotState)]) -> BTreeMap<String, Slot> {
        states
            .iter()
            .map(|(name, state)| {
                let record = SlotRecord {
                    provider: "claude".to_owned(),
                    account: Some(format!("{name}@example.com")),
                    state: *state,
                    reason: (*state == SlotState::Inactive)
                        .then_some(crate::slot_reason::SlotReason::SessionExpired),
                    generation: 1,
                    created_at: at("00:00:00"),
                    last_refresh_at: None,
                    last_refresh_error: None,
                    refreshes: 0,
                    newest_written: None,
                    claude_code: None,
                    account_key: None,
                };
                let slot = Slot::from_record((*name).to_owned(), record, at("00:00:00"));
                ((*name).to_owned(), slot)
            })
            .collect()
    }

    /// The (kind, slot names) of each event.
    fn kinds(events: &[AlertEvent]) -> Vec<(AlertKind, Vec<&str>)> {
        events
            .iter()
            .map(|e| (e.event, e.slots.iter().map(|s| s.name.as_str()).collect()))
            .collect()
    }

    use AlertKind::{AllInactive, SlotInactive, SlotRecovered};
    use SlotState::{Active, Degraded, Inactive};

    #[test]
    fn all_inactive_fires_once_per_transition_and_again_after_a_recovery() {
        let (mut alerts, config, now) = (Alerts::default(), Config::default(), at("10:00:00"));
        assert!(
            alerts
                .observe(&slots(&[("a", Active), ("b", Active)]), &config, now)
                .is_empty()
        );
        let events = alerts.observe(&slots(&[("a", Inactive), ("b", Active)]), &config, now);
        assert_eq!(kinds(&events), [(SlotInactive, vec!["a"])]);
        let events = alerts.observe(&slots(&[("a", Inactive), ("b", Inactive)]), &config, now);
        assert_eq!(
            kinds(&events),
            [(SlotInactive, vec!["b"]), (AllInactive, vec!["a", "b"])]
        );
        for _ in 0..5 {
            let same = slots(&[("a", Inactive), ("b", Inactive)]);
            assert!(alerts.observe(&same, &config, now).is_empty(), "no repeat");
        }
        let events = alerts.observe(&slots(&[("a", Active), ("b", Inactive)]), &config, now);
        assert_eq!(kinds(&events), [(SlotRecovered, vec!["a"])]);
        assert_eq!(events[0].slots[0].state, Active);
        let events = alerts.observe(&slots(&[("a", Inactive), ("b", Inactive)]), &config, now);
        assert_eq!(
            kinds(&events),
            [(SlotInactive, vec!["a"]), (AllInactive, vec!["a", "b"])]
        );
    }

    #[test]
    fn degraded_is_not_inactive_and_leaving_inactive_for_degraded_is_a_recovery() {
        let (mut alerts, config, now) = (Alerts::default(), Config::default(), at("10:00:00"));
        assert!(
            alerts
                .observe(&slots(&[("a", Degraded)]), &config, now)
                .is_empty()
        );
        alerts.observe(&slots(&[("a", Inactive)]), &config, now);
        let events = alerts.observe(&slots(&[("a", Degraded)]), &config, now);
        assert_eq!(kinds(&events), [(SlotRecovered, vec!["a"])]);
    }

    #[test]
    fn a_start_with_every_slot_inactive_announces_it_once() {
        let (mut alerts, config, now) = (Alerts::default(), Config::default(), at("10:00:00"));
        let dead = slots(&[("a", Inactive), ("b", Inactive)]);
        let events = alerts.observe(&dead, &config, now);
        assert_eq!(
            kinds(&events),
            [
                (SlotInactive, vec!["a"]),
                (SlotInactive, vec!["b"]),
                (AllInactive, vec!["a", "b"])
            ]
        );
        assert!(alerts.observe(&dead, &config, now).is_empty());
    }

    #[test]
    fn no_slots_is_not_all_inactive_and_a_logged_out_slot_is_not_a_recovery() {
        let (mut alerts, config, now) = (Alerts::default(), Config::default(), at("10:00:00"));
        assert!(alerts.observe(&BTreeMap::new(), &config, now).is_empty());
        alerts.observe(&slots(&[("a", Inactive), ("b", Active)]), &config, now);
        // b logged out: a alone is left, inactive.
        let events = alerts.observe(&slots(&[("a", Inactive)]), &config, now);
        assert_eq!(kinds(&events), [(AllInactive, vec!["a"])]);
        // a logged out too: nothing to announce, and the state re-arms.
        assert!(alerts.observe(&BTreeMap::new(), &config, now).is_empty());
        let events = alerts.observe(&slots(&[("c", Inactive)]), &config, now);
        assert_eq!(
            kinds(&events),
            [(SlotInactive, vec!["c"]), (AllInactive, vec!["c"])]
        );
    }

    #[test]
    fn reminders_repeat_while_every_slot_stays_inactive() {
        let mut config = Config::default();
        config.alerts.remind_every = Some(Duration::from_secs(3600));
        let mut alerts = Alerts::default();
        let dead = slots(&[("a", Inactive)]);
        assert_eq!(alerts.reminder_at(), None);
        alerts.observe(&dead, &config, at("10:00:00"));
        assert_eq!(alerts.reminder_at(), Some(at("11:00:00")));
        assert_eq!(alerts.due_reminder(&dead, &config, at("10:59:59")), None);
        let reminder = alerts.due_reminder(&dead, &config, at("11:00:00")).unwrap();
        assert_eq!((reminder.event, reminder.reminder), (AllInactive, true));
        assert_eq!(reminder.at, at("11:00:00"));
        assert_eq!(alerts.reminder_at(), Some(at("12:00:00")));
        // Late (a suspend): one reminder, the next a full interval later.
        assert!(
            alerts
                .due_reminder(&dead, &config, at("15:30:00"))
                .is_some()
        );
        assert_eq!(alerts.due_reminder(&dead, &config, at("15:30:01")), None);
        assert_eq!(alerts.reminder_at(), Some(at("16:30:00")));
        // A recovery ends the reminders.
        alerts.observe(&slots(&[("a", Active)]), &config, at("16:00:00"));
        assert_eq!(alerts.reminder_at(), None);
        assert_eq!(alerts.due_reminder(&dead, &config, at("17:00:00")), None);
    }

    #[test]
    fn reminders_can_be_turned_off() {
        let mut config = Config::default();
        config.alerts.remind_every = None;
        let mut alerts = Alerts::default();
        let dead = slots(&[("a", Inactive)]);
        alerts.observe(&dead, &config, at("10:00:00"));
        assert_eq!(alerts.reminder_at(), None);
        assert_eq!(alerts.due_reminder(&dead, &config, at("23:00:00")), None);
    }

    #[test]
    fn events_name_the_login_command_and_never_hold_a_token() {
        let config = Config::default();
        let mut alerts = Alerts::default();
        let events = alerts.observe(&slots(&[("work", Inactive)]), &config, at("10:00:00"));
        let json = events[0].json_line();
        assert!(
            json.contains("\"login_command\":\"sessctl login work --provider claude"),
            "{json}"
        );
        for field in ["token", "secret"] {
            assert!(!json.contains(&format!("\"{field}")), "{json}");
        }
    }
}
