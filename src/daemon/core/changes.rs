//! What follows an event, for the slots it changed (and only those): the deadline index
//! brought up to date, the published records replaced, the transition log and alerts
//! told. The names come from the slot table (`crate::daemon::core::table`), so the cost is
//! what the event changed, not the number of slots.

use std::sync::Arc;

use super::Manager;

impl Manager {
    /// Logs the slot state transitions since the last look and turns them into alert
    /// events, queued for delivery. Looks only at the slots changed since then.
    pub(super) fn observe_alerts(&mut self) {
        self.reindex();
        let changed = std::mem::take(&mut self.unobserved);
        let records = Arc::make_mut(&mut self.records);
        for name in &changed {
            match self.slots.get(name) {
                Some(slot) => {
                    records.insert(name.clone(), Arc::new(slot.record.clone()));
                }
                None => {
                    records.remove(name);
                }
            }
        }
        self.state_log.observe_changed(&self.slots, &changed);
        let events = self
            .alerts
            .observe_changed(&self.slots, &changed, &self.config, self.now);
        for event in events {
            self.alert_queue.push(event);
        }
    }

    /// Brings the deadline index and the set of inactive Claude Code slots up to date with
    /// the slots changed since the last call (and keeps their names for the transition log
    /// and alerts).
    pub(super) fn reindex(&mut self) {
        let changed = self.slots.take_touched();
        for name in &changed {
            let slot = self.slots.get(name);
            let deadlines = slot.map(|slot| self.slot_deadlines(slot));
            self.due.set(name, deadlines);
            self.claude_code_reload.track(name, slot);
        }
        self.unobserved.extend(changed);
    }
}
