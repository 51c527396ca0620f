//! Doctor's notification check: does something own `org.freedesktop.Notifications` on the
//! session bus to show sessctl's desktop alerts? A machine without a desktop is a warning,
//! not a failure: alerts still reach the log.

#[cfg(all(unix, not(target_os = "macos")))]
use std::{sync::mpsc, time::Duration};

use super::Check;

/// How long the notification server gets to describe itself.
#[cfg(all(unix, not(target_os = "macos")))]
const TIMEOUT: Duration = Duration::from_secs(5);

const CHECK: &str = "notifications";

/// The check; `desktop` is false when the config turns desktop alerts off.
pub fn check(desktop: bool) -> Check {
    if !desktop {
        return Check::pass(CHECK, "desktop alerts are disabled (notifications: none)");
    }
    server_check()
}

/// macOS and Windows: the platform's notification centre is always there; nothing to ask.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn server_check() -> Check {
    Check::pass(
        CHECK,
        "desktop alerts go to the system's notification centre",
    )
}

/// Linux and the BSDs: asks the session bus who shows notifications.
#[cfg(all(unix, not(target_os = "macos")))]
fn server_check() -> Check {
    let (tx, rx) = mpsc::channel();
    // notify-rust blocks on D-Bus; a thread of its own keeps a silent bus from hanging doctor.
    std::thread::spawn(move || {
        let _ = tx.send(notify_rust::get_server_information().map_err(|e| e.to_string()));
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok(server)) => Check::pass(
            CHECK,
            format!(
                "desktop alerts go to {} {} ({})",
                server.name, server.version, server.vendor
            ),
        ),
        Ok(Err(error)) => no_server(&error),
        Err(_) => no_server(&format!("no answer within {}s", TIMEOUT.as_secs())),
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
fn no_server(why: &str) -> Check {
    Check::warn(
        CHECK,
        format!("no notification server on the session D-Bus (no desktop here?): {why}"),
        "alerts reach only the log here; run a notification daemon (e.g. dunst or mako) to see them on a desktop, or set notifications: none",
    )
}
