//! The fixes sessctl tells people to apply, written once so `status` and `doctor` give the
//! same advice for the same problem.

use std::path::Path;

/// How to start the daemon.
pub const START_DAEMON: &str = "start it: `sessctl daemon &`, or `sessctl service install` to run it as a user service started at every login (systemd or launchd)";

/// How to restart a daemon of another version.
pub const RESTART_DAEMON: &str = "restart the daemon: `sessctl shutdown`, then start it again";

/// Where to read why something keeps failing.
pub const SEE_LOGS: &str = "see why with `sessctl logs`";

/// How to make an unreachable or locked keychain usable again.
pub fn keychain_unreachable() -> &'static str {
    if cfg!(target_os = "macos") {
        "unlock the login keychain (Keychain Access, or `security unlock-keychain`); the daemon retries on its own"
    } else {
        "start or unlock a Secret Service on the session D-Bus: on a desktop, log in to it; without one (ssh, a server), start a bus and an unlocked keyring in the shell that starts the daemon: `export DBUS_SESSION_BUS_ADDRESS=$(dbus-daemon --session --fork --print-address)`, then `printf '%s' \"$KEYRING_PASSWORD\" | gnome-keyring-daemon --foreground --unlock --components=secrets &` (README, Headless machines); or set `credential_store: file` (tokens in a file only you can read, unencrypted); the daemon retries on its own"
    }
}

/// What to do when there is no keychain at all: get one, or opt in to the file store,
/// whose risk is said with it.
pub fn no_keychain() -> String {
    format!(
        "{}; or, on a machine without a keychain, set `credential_store: file` in the config (tokens then sit in a plaintext file readable by your user, mode 0600) and restart the daemon",
        keychain_unreachable()
    )
}

/// How to make the credentials file usable again.
pub fn credentials_file(path: &Path) -> String {
    format!(
        "make {} (and its directory) readable and writable by you only (0600, directory 0700), with free disk space; the daemon retries on its own",
        path.display()
    )
}

/// What to do when the daemon cannot save its state file.
pub fn state_file(path: &Path) -> String {
    format!(
        "check that {} and its directory are writable and the disk has space; if the file was edited or restored by hand, restart the daemon so it loads it ({RESTART_DAEMON})",
        path.display()
    )
}

/// What to do about revocations still pending: usually nothing, the daemon retries.
pub const PENDING_REVOCATIONS: &str = "nothing, the daemon retries until the provider answers (backing off up to an hour, and at every start); if it lasts, check the network and the provider's revoke_url, and `sessctl logs`";

/// Revocations still pending in one line: slot, provider, attempts and last error each.
pub fn describe_revocations(pending: &[crate::revocation::PendingRevocation]) -> String {
    let each: Vec<String> = pending
        .iter()
        .map(|p| {
            format!(
                "slot {} at {} ({} attempt(s), last error: {})",
                p.slot,
                p.provider,
                p.attempts,
                p.last_error.as_deref().unwrap_or("none")
            )
        })
        .collect();
    each.join("; ")
}
