//! Delivering alert events, off the manager: the manager hands each event to a bounded
//! queue ([`AlertQueue::push`] never waits) and one task takes them in order, one at a
//! time, logging each, showing it on the desktop (unless `notifications: none`) and then
//! running `alert_command`. A slow or hung notifier delays only later alerts, never the
//! daemon; if the queue overflows meanwhile, the newest events are dropped with a log line.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{AlertCommand, Config, Notifications};

use super::command;
use super::desktop;
use super::event::{AlertEvent, AlertKind};

/// Events waiting for delivery before new ones are dropped. Events come from state
/// transitions, a handful at a time; 64 waiting means the notifiers are stuck, and
/// growing without bound would only hide that.
const QUEUE: usize = 64;

/// The manager's end of the delivery queue.
pub struct AlertQueue {
    tx: mpsc::Sender<AlertEvent>,
}

impl AlertQueue {
    /// Queues `event` for delivery without waiting; logs and drops it when the queue is
    /// full or the delivery task is gone.
    pub fn push(&self, event: AlertEvent) {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => tracing::warn!(
                event = event.event.as_str(),
                "alert queue full ({QUEUE} waiting, a notifier is slow): dropping this alert: {}",
                event.log_text()
            ),
            Err(mpsc::error::TrySendError::Closed(event)) => tracing::warn!(
                event = event.event.as_str(),
                "alert delivery has stopped: {}",
                event.log_text()
            ),
        }
    }
}

/// What the delivery task needs from the config.
struct Channels {
    desktop: bool,
    command: Option<AlertCommand>,
    command_timeout: Duration,
}

/// Starts the delivery task. It ends once the queue is dropped and drained.
pub fn spawn(config: &Config) -> (AlertQueue, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let channels = Channels {
        desktop: config.notifications == Notifications::Desktop,
        command: config.alert_command.clone(),
        command_timeout: config.alerts.command_timeout,
    };
    (AlertQueue { tx }, tokio::spawn(deliver_all(rx, channels)))
}

async fn deliver_all(mut rx: mpsc::Receiver<AlertEvent>, channels: Channels) {
    while let Some(event) = rx.recv().await {
        deliver(&event, &channels).await;
    }
}

/// Logs, shows and hands `event` to `alert_command`, in that order.
async fn deliver(event: &AlertEvent, channels: &Channels) {
    let kind = event.event.as_str();
    match event.event {
        AlertKind::SlotRecovered => tracing::info!(alert = kind, "{}", event.log_text()),
        AlertKind::AllInactive | AlertKind::SlotInactive => {
            tracing::warn!(alert = kind, "{}", event.log_text());
        }
    }
    if channels.desktop
        && let Some(notice) = event.desktop()
    {
        desktop::show(&notice).await;
    }
    if let Some(alert_command) = &channels.command {
        command::run_and_log(alert_command, event, channels.command_timeout).await;
    }
}

#[cfg(test)]
impl AlertQueue {
    /// A queue whose events a test reads itself (the simulator, `crate::daemon::sim`).
    pub fn for_tests() -> (AlertQueue, mpsc::Receiver<AlertEvent>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (AlertQueue { tx }, rx)
    }
}
