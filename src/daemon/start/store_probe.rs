//! Is there a keychain at all? A machine without a session D-Bus (or without a Secret
//! Service on it) has nowhere to keep a login's tokens, and the user should learn that when
//! the daemon starts, in `status`, and from `sessctl login` before a browser opens, not
//! after a login whose tokens then exist only in memory.
//!
//! The probe is a read, through the store worker (so it is serialized with every other
//! keychain call and shares its reconnects), of an item that can never exist: [`PROBE_ITEM`]
//! starts with a dot, outside the slot-name alphabet. It spends no token and writes nothing.
//! A read does not need an unlocked keyring, so a *locked* keychain passes here; the slot
//! loads and writes report that one (`credential_store_error` from the manager).
//!
//! The first probe runs before the daemon serves anyone; while it fails, it is repeated
//! every [`RETRY`] and at once when a login is refused, and the first success after a
//! failure is logged. Once the keychain has answered, this module is done: later failures
//! are the store worker's to report. It never probes the file store (nothing to discover:
//! it is created at the first write).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::cli::fixes;
use crate::protocol::{ErrorCode, ErrorReply, Request};
use crate::store::{CredentialStore, StoreKind};

/// The item read by the probe: never a slot (slot names are `[a-z0-9_-]`).
pub const PROBE_ITEM: &str = ".sessctl-daemon-probe";
/// How long one probe may take: a keyring that does not answer a read in this long cannot
/// be counted on to store a login either.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Between probes while there is no keychain: cheap (one D-Bus connection attempt), and
/// short enough that `status` notices a keyring started later within half a minute.
const RETRY: Duration = Duration::from_secs(30);

/// What the daemon knows about the keychain's presence; cheap to clone.
#[derive(Clone)]
pub struct StoreProbe {
    /// `Some(why)` while the last probe failed.
    error: watch::Receiver<Option<String>>,
    /// Asks the probe loop to try again now.
    again: Arc<Notify>,
}

impl StoreProbe {
    /// A probe that never reports anything (the file store).
    fn silent() -> Self {
        StoreProbe {
            error: watch::channel(None).1,
            again: Arc::new(Notify::new()),
        }
    }

    /// Why the keychain is unusable, while the last probe failed.
    pub fn error(&self) -> Option<String> {
        self.error.borrow().clone()
    }

    /// The refusal of a login request while there is no keychain (and asks for a new probe,
    /// so the next attempt sees a keychain started since). `None` for every other request.
    pub fn refuses(&self, request: &Request) -> Option<ErrorReply> {
        if !matches!(request, Request::Login(_) | Request::LoginBegin(_)) {
            return None;
        }
        let error = self.error()?;
        self.again.notify_one();
        Some(ErrorReply::new(
            ErrorCode::StoreUnavailable,
            format!(
                "{error}: a login's tokens could not be stored, so no login was started; {}",
                fixes::no_keychain()
            ),
        ))
    }
}

#[cfg(test)]
impl StoreProbe {
    /// A probe that never refuses anything (the simulator, `crate::daemon::sim`).
    pub fn silent_for_tests() -> Self {
        Self::silent()
    }
}

/// Probes the store once (for the keychain), logs a warning naming the fix when it fails,
/// and keeps probing in the background until it succeeds or `shutdown` turns true.
pub async fn start(store: &CredentialStore, mut shutdown: watch::Receiver<bool>) -> StoreProbe {
    if store.kind() != StoreKind::Keychain {
        return StoreProbe::silent();
    }
    let first = probe(store).await;
    let Err(error) = first else {
        return StoreProbe::silent();
    };
    tracing::warn!(
        "{error}: logins cannot be stored until this is fixed; {}",
        fixes::no_keychain()
    );
    let (tx, rx) = watch::channel(Some(error));
    let again = Arc::new(Notify::new());
    let wake = again.clone();
    let store = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(RETRY) => {}
                () = wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            if probe(&store).await.is_ok() {
                tracing::info!("the keychain answers now: logins can be stored");
                let _ = tx.send(None);
                return;
            }
        }
    });
    StoreProbe { error: rx, again }
}

/// One read of [`PROBE_ITEM`]; `Err(why)` when the keychain cannot be reached.
async fn probe(store: &CredentialStore) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, store.load(PROBE_ITEM)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "the keychain did not answer within {}s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_item_can_never_be_a_slot() {
        assert!(crate::slot_name::validate(PROBE_ITEM).is_err());
    }

    #[test]
    fn only_logins_are_refused_and_the_refusal_names_both_fixes() {
        let (_tx, error) = watch::channel(Some("no keychain reachable".to_owned()));
        let probe = StoreProbe {
            error,
            again: Arc::new(Notify::new()),
        };
        assert!(probe.refuses(&Request::Status).is_none());
        let refusal = probe
            .refuses(&Request::Login(crate::protocol::LoginRequest {
                name: "work".into(),
                provider: "p".into(),
                refresh_token: crate::secret::Secret::new("x"),
            }))
            .expect("a login is refused");
        assert_eq!(refusal.code, ErrorCode::StoreUnavailable);
        assert!(
            refusal.message.contains("credential_store: file"),
            "{refusal:?}"
        );
        assert!(refusal.message.contains("0600"), "{refusal:?}");
        assert!(StoreProbe::silent().refuses(&Request::Status).is_none());
    }
}
