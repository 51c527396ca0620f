//! The log of slot state changes: every change of a slot's state or reason (active →
//! degraded → inactive, and back) is one line, at `warn`, or `error` when the slot becomes
//! inactive (it needs a new login: the line a person grepping the log must find). Slots that
//! start out not active are named once at start-up. Pure observation: it never changes a
//! slot, and its lines hold the reason and the last error, never a token.

use std::collections::BTreeMap;

use crate::slot_reason::SlotReason;
use crate::state::SlotState;

use crate::daemon::core::slot::Slot;

/// What was last seen of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    state: SlotState,
    reason: Option<SlotReason>,
}

impl Seen {
    fn of(slot: &Slot) -> Self {
        Seen {
            state: slot.record.state,
            reason: slot.record.reason.clone(),
        }
    }
}

/// Remembers each slot's state as last logged.
#[derive(Debug, Default)]
pub struct StateLog {
    seen: BTreeMap<String, Seen>,
}

impl StateLog {
    /// Starts from the slots as loaded; each one not active is logged once.
    pub fn start(slots: &BTreeMap<String, Slot>) -> Self {
        for slot in slots.values() {
            if slot.record.state != SlotState::Active {
                tracing::warn!(
                    slot = slot.name,
                    state = slot.record.state.as_str(),
                    reason = slot.record.reason.as_ref().map_or("", SlotReason::as_str),
                    "slot is not active since an earlier run"
                );
            }
        }
        StateLog {
            seen: slots
                .iter()
                .map(|(name, slot)| (name.clone(), Seen::of(slot)))
                .collect(),
        }
    }

    /// Logs every slot whose state or reason changed since the last call, looking at every
    /// slot (the manager uses [`StateLog::observe_changed`]).
    #[cfg(test)]
    pub fn observe(&mut self, slots: &BTreeMap<String, Slot>) {
        let mut names: std::collections::BTreeSet<String> = slots.keys().cloned().collect();
        names.extend(self.seen.keys().cloned());
        self.observe_changed(slots, &names);
    }

    /// Logs every slot of `changed` (the names of the slots added, changed or removed since
    /// the last call) whose state or reason changed. A new slot is logged only when it does
    /// not start active (a login logs itself); a removed slot is forgotten (a logout logs
    /// itself).
    pub fn observe_changed(
        &mut self,
        slots: &BTreeMap<String, Slot>,
        changed: &std::collections::BTreeSet<String>,
    ) {
        for name in changed {
            let Some(slot) = slots.get(name) else {
                self.seen.remove(name);
                continue;
            };
            let now = Seen::of(slot);
            let before = self.seen.get(name);
            if before == Some(&now) {
                continue;
            }
            if before.is_some() || now.state != SlotState::Active {
                log_change(slot, before.map(|b| b.state));
            }
            self.seen.insert(name.clone(), now);
        }
    }
}

fn log_change(slot: &Slot, before: Option<SlotState>) {
    let from = before.map_or("new", SlotState::as_str);
    let to = slot.record.state.as_str();
    let reason = slot.record.reason.as_ref().map_or("", SlotReason::as_str);
    let error = slot.record.last_refresh_error.as_deref().unwrap_or("");
    if slot.record.state == SlotState::Inactive {
        tracing::error!(
            slot = slot.name,
            from,
            to,
            reason,
            error,
            "slot state changed: it needs a new login (sessctl login {})",
            slot.name
        );
    } else {
        tracing::warn!(
            slot = slot.name,
            from,
            to,
            reason,
            error,
            "slot state changed"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use chrono::Utc;

    use super::*;
    use crate::state::SlotRecord;

    fn slot(name: &str, state: SlotState, reason: Option<SlotReason>) -> Slot {
        let record = SlotRecord {
            provider: "test".into(),
            account: None,
            account_key: None,
            state,
            reason: reason.clone(),
            generation: 1,
            created_at: Utc::now(),
            last_refresh_at: None,
            last_refresh_error: reason.map(|r| format!("because {r}")),
            refreshes: 0,
            newest_written: None,
            claude_code: None,
        };
        Slot::from_record(name.to_owned(), record, Utc::now())
    }

    fn slots(list: Vec<Slot>) -> BTreeMap<String, Slot> {
        list.into_iter().map(|s| (s.name.clone(), s)).collect()
    }

    /// Runs `f` with a subscriber that writes into a buffer; returns the lines.
    fn logged(f: impl FnOnce()) -> Vec<String> {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(move || SharedBuffer(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_change_is_logged_once_and_deactivation_at_error() {
        let lines = logged(|| {
            let mut log = StateLog::start(&slots(vec![
                slot("a", SlotState::Active, None),
                slot("old", SlotState::Inactive, Some(SlotReason::SessionExpired)),
            ]));
            let degraded = slots(vec![slot(
                "a",
                SlotState::Degraded,
                Some(SlotReason::RefreshFailed),
            )]);
            log.observe(&degraded);
            log.observe(&degraded);
            log.observe(&slots(vec![slot(
                "a",
                SlotState::Inactive,
                Some(SlotReason::SessionExpired),
            )]));
            log.observe(&slots(vec![slot("a", SlotState::Active, None)]));
            log.observe(&slots(vec![
                slot("a", SlotState::Active, None),
                slot("b", SlotState::Active, None),
            ]));
        });
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with(" WARN") && lines[0].contains("slot=\"old\""));
        assert!(lines[1].starts_with(" WARN"), "{}", lines[1]);
        assert!(lines[1].contains("from=\"active\" to=\"degraded\" reason=\"refresh_failed\""));
        assert!(lines[2].starts_with("ERROR"), "{}", lines[2]);
        assert!(lines[2].contains("to=\"inactive\" reason=\"session_expired\""));
        assert!(lines[2].contains("error=\"because session_expired\""));
        assert!(lines[3].starts_with(" WARN") && lines[3].contains("to=\"active\""));
    }

    #[test]
    fn a_new_slot_that_is_not_active_is_logged() {
        let lines = logged(|| {
            let mut log = StateLog::default();
            log.observe(&slots(vec![slot(
                "c",
                SlotState::Degraded,
                Some(SlotReason::CredentialStoreUnavailable),
            )]));
            // A new active slot is not logged here, but its later changes are.
            log.observe(&slots(vec![slot("d", SlotState::Active, None)]));
            log.observe(&slots(vec![slot(
                "d",
                SlotState::Inactive,
                Some(SlotReason::Other("x".into())),
            )]));
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[1].contains("from=\"active\" to=\"inactive\""),
            "{}",
            lines[1]
        );
        assert!(
            lines[0].contains("from=\"new\" to=\"degraded\""),
            "{}",
            lines[0]
        );
    }
}
