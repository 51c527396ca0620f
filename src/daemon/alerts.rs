//! Desktop alerts: one when a slot is deactivated (the user must log in again) and one when
//! every slot is inactive. Each fires on the transition, not on every state save, so a
//! dead account does not spam the desktop. Sending runs in its own task; a machine without
//! a notification server only gets a log line.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::state::SlotState;

use super::slot::Slot;

/// How long one notification may take before it is abandoned.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Remembers what was already announced.
#[derive(Default)]
pub struct Alerts {
    inactive: BTreeSet<String>,
    all_inactive: bool,
}

impl Alerts {
    /// Compares the slots with what was last seen and alerts on new deactivations and on
    /// the moment the last active slot goes.
    pub fn observe(&mut self, slots: &BTreeMap<String, Slot>) {
        let inactive: BTreeSet<String> = slots
            .values()
            .filter(|s| s.record.state == SlotState::Inactive)
            .map(|s| s.name.clone())
            .collect();
        for name in inactive.difference(&self.inactive) {
            let slot = &slots[name];
            let reason = slot.record.reason.as_deref().unwrap_or("inactive");
            send(
                format!("sessctl: {name} needs a new login"),
                format!(
                    "Slot {name} ({}) was deactivated: {reason}. Run: sessctl login {name} --provider {} --refresh-token-stdin",
                    slot.record.account.as_deref().unwrap_or("unknown account"),
                    slot.record.provider
                ),
            );
        }
        let all_inactive = !slots.is_empty() && inactive.len() == slots.len();
        if all_inactive && !self.all_inactive {
            send(
                "sessctl: every account is inactive".to_owned(),
                format!(
                    "No slot can get tokens any more ({}). Log in again.",
                    inactive.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        self.inactive = inactive;
        self.all_inactive = all_inactive;
    }
}

/// Logs the alert and shows it on the desktop, without blocking the caller.
fn send(summary: String, body: String) {
    tracing::warn!(alert = summary, "{body}");
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        let mut notification = notify_rust::Notification::new();
        notification
            .appname("sessctl")
            .summary(&summary)
            .body(&body);
        match tokio::time::timeout(NOTIFY_TIMEOUT, notification.show_async()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::info!("desktop notification not shown: {e}"),
            Err(_) => tracing::info!("desktop notification timed out"),
        }
    });
}
