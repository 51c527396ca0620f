//! The alert invariant: alerts at most once per transition. Per process (a new daemon
//! announces slots already inactive once more, by design): a slot is announced inactive
//! again only after its recovery was announced or it left the state (a logout), and
//! `all_inactive` (not a reminder) again only after some slot was usable again.

use std::collections::BTreeSet;

use crate::state::{SlotState, StateFile};

use super::invariants::Checker;
use crate::daemon::alerts::{AlertEvent, AlertKind};

/// What the current process announced.
#[derive(Default)]
pub struct AlertWatch {
    inactive: BTreeSet<String>,
    all_inactive: bool,
}

impl AlertWatch {
    /// An alert was raised.
    pub fn observe(&mut self, event: &AlertEvent, checker: &mut Checker) {
        match event.event {
            AlertKind::SlotInactive => {
                for slot in &event.slots {
                    if !self.inactive.insert(slot.name.clone()) {
                        checker.alert(&format!(
                            "slot_inactive for {} was raised twice for one transition",
                            slot.name
                        ));
                    }
                }
            }
            AlertKind::SlotRecovered => {
                for slot in &event.slots {
                    if !self.inactive.remove(&slot.name) {
                        checker.alert(&format!(
                            "slot_recovered for {} was raised without slot_inactive",
                            slot.name
                        ));
                    }
                }
            }
            AlertKind::AllInactive if !event.reminder => {
                if self.all_inactive {
                    checker.alert("all_inactive was raised twice for one transition");
                }
                self.all_inactive = true;
            }
            AlertKind::AllInactive => {}
        }
    }

    /// The state the alerts were raised for: slots gone from it may be announced anew.
    pub fn state(&mut self, state: &StateFile) {
        self.inactive.retain(|name| state.slots.contains_key(name));
        let all =
            !state.slots.is_empty() && state.slots.values().all(|r| r.state == SlotState::Inactive);
        if !all {
            self.all_inactive = false;
        }
    }
}
