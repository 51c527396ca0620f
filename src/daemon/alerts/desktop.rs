//! Showing one alert as a desktop notification (notify-rust: D-Bus on Linux and the BSDs),
//! with a time limit. A machine without a notification server only gets a log line; this
//! never fails its caller.

use std::time::Duration;

use super::event::DesktopNotice;
#[cfg(all(unix, not(target_os = "macos")))]
use super::event::Urgency;

/// How long one notification may take before it is abandoned: a healthy notification
/// server answers in milliseconds; a wedged one must not hold back `alert_command`.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Shows `notice`, logging (never returning) a failure or a timeout.
pub async fn show(notice: &DesktopNotice) {
    let mut notification = notify_rust::Notification::new();
    notification
        .appname("sessctl")
        .summary(&notice.summary)
        .body(&notice.body);
    #[cfg(all(unix, not(target_os = "macos")))]
    notification.urgency(match notice.urgency {
        Urgency::Normal => notify_rust::Urgency::Normal,
        Urgency::Critical => notify_rust::Urgency::Critical,
    });
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = notice.urgency;
    match tokio::time::timeout(NOTIFY_TIMEOUT, send(notification)).await {
        Ok(Ok(())) => tracing::debug!("desktop notification shown"),
        Ok(Err(e)) => tracing::info!("desktop notification not shown: {e}"),
        Err(_) => tracing::info!(
            "desktop notification not shown: no answer within {}s",
            NOTIFY_TIMEOUT.as_secs()
        ),
    }
}

/// Hands the notification to the session bus's notification server.
#[cfg(all(unix, not(target_os = "macos")))]
async fn send(notification: notify_rust::Notification) -> Result<(), String> {
    notification
        .show_async()
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Hands the notification to the platform (a blocking call: off the async threads).
#[cfg(not(all(unix, not(target_os = "macos"))))]
async fn send(notification: notify_rust::Notification) -> Result<(), String> {
    tokio::task::spawn_blocking(move || notification.show().map(drop).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}
