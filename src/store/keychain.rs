//! The OS keychain backend (keyring v4: macOS Keychain, Windows Credential Manager, Linux
//! Secret Service). One item per slot: service `sessctl`, account = slot name, the
//! password is the item's JSON.
//!
//! On Linux the Secret Service connection is rebuilt after a failure: keyring's store keeps
//! one D-Bus session for the life of the process, so a gnome-keyring that restarted (or a
//! bus that was not there when the daemon started) would otherwise fail every later call.
//! Reconnects back off ([`Reconnects`]): the first comes at once, further ones at growing
//! intervals while the keychain keeps failing, so a locked or crash-looping keyring (each
//! reconnect may D-Bus-activate a new one) is not hammered and the log not flooded.
//!
//! keyring's errors may carry the item's raw bytes (`BadEncoding`, `BadDataFormat`) or
//! platform text we do not control, so they never reach our messages: each is mapped to
//! its kind plus a description written here.

use std::time::{Duration, Instant};

use super::{CredentialBackend, StoreError, StoreKind, StoredCredentials, describe_json_error};

/// Keychain service name of every sessctl item.
pub const KEYCHAIN_SERVICE: &str = "sessctl";

/// What to say when keyring has no store at all (on Linux: no session bus, or nothing
/// owning `org.freedesktop.secrets` on it).
const NO_KEYCHAIN: &str = "no keychain reachable (on Linux: is a Secret Service such as gnome-keyring running on the session D-Bus?)";

/// First wait between reconnects while the keychain keeps failing; doubles each time.
const RECONNECT_BASE: Duration = Duration::from_secs(1);

/// Longest wait between reconnects: a keyring that comes back is found within a minute,
/// and a keyring that never does costs one reconnect (and one debug line) a minute.
const RECONNECT_CAP: Duration = Duration::from_secs(60);

/// Items in the OS keychain.
#[derive(Default)]
pub struct KeychainBackend {
    reconnects: Reconnects,
}

/// When to (re)build the keychain connection: pure bookkeeping over an injected clock.
/// The first call connects; a working connection is kept.
#[derive(Debug)]
struct Reconnects {
    /// Reconnects made since the last successful call.
    made: u32,
    /// A reconnect is wanted from this moment on (`None`: the last call succeeded).
    due_at: Option<Instant>,
}

impl Default for Reconnects {
    fn default() -> Self {
        Reconnects {
            made: 0,
            due_at: Some(Instant::now()),
        }
    }
}

impl Reconnects {
    /// True when a reconnect should be made before the next call.
    fn due(&self, now: Instant) -> bool {
        self.due_at.is_some_and(|at| now >= at)
    }

    /// A call failed as unavailable: the first failure after a success wants a reconnect at
    /// once; later ones leave the backed-off moment alone.
    fn failed(&mut self, now: Instant) {
        self.due_at.get_or_insert(now);
    }

    /// A reconnect was made at `now`: the next one waits twice as long as the last.
    fn reconnected(&mut self, now: Instant) {
        let wait = RECONNECT_BASE
            .saturating_mul(1 << self.made.min(16))
            .min(RECONNECT_CAP);
        self.made = self.made.saturating_add(1);
        self.due_at = Some(now + wait);
    }

    /// A call succeeded: the connection works.
    fn succeeded(&mut self) {
        self.made = 0;
        self.due_at = None;
    }
}

impl KeychainBackend {
    /// Runs `call` on the slot's entry, with [`KeychainBackend::with_retry`].
    fn with_entry<T>(
        &mut self,
        slot: &str,
        op: Op,
        call: impl Fn(&keyring_core::Entry) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_retry(|| entry(slot, op).and_then(|e| call(&e)))
    }

    /// Runs `call`. When the keychain is unavailable and a reconnect is due, reconnects and
    /// tries once more (every call here is idempotent).
    fn with_retry<T>(&mut self, call: impl Fn() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let attempt = |reconnects: &mut Reconnects| {
            if reconnects.due(Instant::now()) {
                reconnect();
                reconnects.reconnected(Instant::now());
            }
            let result = call();
            match &result {
                Err(StoreError::Unavailable(_)) => reconnects.failed(Instant::now()),
                _ => reconnects.succeeded(),
            }
            result
        };
        match attempt(&mut self.reconnects) {
            Err(StoreError::Unavailable(_)) if self.reconnects.due(Instant::now()) => {
                attempt(&mut self.reconnects)
            }
            done => done,
        }
    }
}

impl CredentialBackend for KeychainBackend {
    fn kind(&self) -> StoreKind {
        StoreKind::Keychain
    }

    fn load(&mut self, slot: &str) -> Result<Option<StoredCredentials>, StoreError> {
        self.with_entry(slot, Op::Read, |entry| match entry.get_password() {
            Ok(password) => decode_item(slot, &password).map(Some),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(map_error(slot, Op::Read, err)),
        })
    }

    fn save(&mut self, slot: &str, item: &StoredCredentials) -> Result<(), StoreError> {
        let password = serde_json::to_string(item).map_err(|err| {
            StoreError::Unavailable(format!(
                "cannot serialize the item for slot {slot}: {}",
                describe_json_error(&err)
            ))
        })?;
        self.with_entry(slot, Op::Write, |entry| {
            entry
                .set_password(&password)
                .map_err(|err| map_error(slot, Op::Write, err))
        })
    }

    fn delete(&mut self, slot: &str) -> Result<(), StoreError> {
        self.with_entry(slot, Op::Delete, |entry| match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(map_error(slot, Op::Delete, err)),
        })
    }

    fn list(&mut self) -> Result<Vec<String>, StoreError> {
        self.with_retry(search_accounts)
    }

    fn load_text(&mut self, account: &str) -> Result<Option<String>, StoreError> {
        self.with_entry(account, Op::Read, |entry| match entry.get_password() {
            Ok(text) => Ok(Some(text)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(map_error(account, Op::Read, err)),
        })
    }

    fn save_text(&mut self, account: &str, text: &str) -> Result<(), StoreError> {
        self.with_entry(account, Op::Write, |entry| {
            entry
                .set_password(text)
                .map_err(|err| map_error(account, Op::Write, err))
        })
    }
}

/// The accounts of every item under service `sessctl` (a search by attributes; on Linux
/// the Secret Service's `service` attribute, which keyring sets on every item).
fn search_accounts() -> Result<Vec<String>, StoreError> {
    if keyring_core::get_default_store().is_none() && keyring::Entry::store_status().is_err() {
        reconnect();
    }
    let spec = std::collections::HashMap::from([("service", KEYCHAIN_SERVICE)]);
    let found = keyring_core::Entry::search(&spec).map_err(|err| map_error("*", Op::List, err))?;
    Ok(found
        .iter()
        .filter_map(keyring_core::Entry::get_specifiers)
        .filter(|(service, _)| service == KEYCHAIN_SERVICE)
        .map(|(_, account)| account)
        .collect())
}

/// The text of the item `account` (service `sessctl`), created with `create()` when there
/// is none. For sessctl's own reserved items (accounts starting with a dot), not slots.
pub fn read_or_create_item(
    account: &str,
    create: impl FnOnce() -> String,
) -> Result<String, StoreError> {
    let entry = entry(account, Op::Read)?;
    match entry.get_password() {
        Ok(text) => Ok(text),
        Err(keyring::Error::NoEntry) => {
            let text = create();
            entry
                .set_password(&text)
                .map_err(|err| map_error(account, Op::Write, err))?;
            Ok(text)
        }
        Err(err) => Err(map_error(account, Op::Read, err)),
    }
}

/// Connects: keyring's platform default store on first use; on Linux, when that fails or a
/// connection stopped working, replaces the default store with a fresh Secret Service
/// connection. Elsewhere the platform keychain needs no reconnecting.
fn reconnect() {
    if keyring_core::get_default_store().is_none() && keyring::Entry::store_status().is_ok() {
        return;
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    if let Ok(store) = zbus_secret_service_keyring_store::Store::new() {
        keyring_core::set_default_store(store);
        // Debug only: the worker logs the store's health once per change.
        tracing::debug!("reconnected to the Secret Service");
    } else {
        // The error's text is platform text we do not control: say only that it failed.
        tracing::debug!("Secret Service still unreachable");
    }
}

/// The keychain operation that failed, for messages.
#[derive(Debug, Clone, Copy)]
enum Op {
    Read,
    Write,
    Delete,
    List,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Delete => "delete",
            Op::List => "list",
        }
    }
}

/// The slot's entry in the default store ([`reconnect`] sets it), from keyring-core
/// directly, so a replaced store takes effect.
fn entry(slot: &str, op: Op) -> Result<keyring_core::Entry, StoreError> {
    keyring_core::Entry::new(KEYCHAIN_SERVICE, slot).map_err(|err| map_error(slot, op, err))
}

/// Parses an item's password without ever quoting it.
fn decode_item(slot: &str, password: &str) -> Result<StoredCredentials, StoreError> {
    serde_json::from_str(password).map_err(|err| StoreError::Corrupt {
        slot: slot.to_owned(),
        message: format!(
            "keychain item is not sessctl JSON: {}",
            describe_json_error(&err)
        ),
    })
}

/// Maps a keyring error to ours, keeping only its kind: the payloads are dropped unread.
fn map_error(slot: &str, op: Op, err: keyring::Error) -> StoreError {
    use keyring::Error as K;
    let verb = op.verb();
    let corrupt = |message: &str| StoreError::Corrupt {
        slot: slot.to_owned(),
        message: message.to_owned(),
    };
    let unavailable = |what: &str| {
        StoreError::Unavailable(format!(
            "{what} (while trying to {verb} the item for slot {slot})"
        ))
    };
    match err {
        K::NoDefaultStore => StoreError::Unavailable(NO_KEYCHAIN.to_owned()),
        K::NoStorageAccess(_) => unavailable("keychain is locked or access was denied"),
        K::PlatformFailure(_) => unavailable("the keychain service failed"),
        K::NoEntry => unavailable("the keychain has no such item"),
        K::BadEncoding(_) => corrupt("keychain item is not valid UTF-8"),
        K::BadDataFormat(..) => corrupt("keychain item data is malformed"),
        K::Ambiguous(items) => corrupt(&format!(
            "{} keychain items match service {KEYCHAIN_SERVICE} and this slot; remove all but one",
            items.len()
        )),
        K::BadStoreFormat(_) => unavailable("the keychain's own data is malformed"),
        K::TooLong(attribute, limit) => unavailable(&format!(
            "the keychain refused the item: {attribute} is longer than {limit}"
        )),
        K::Invalid(attribute, _) => {
            unavailable(&format!("the keychain refused the value of {attribute}"))
        }
        K::NotSupportedByStore(_) => unavailable("the keychain does not support this operation"),
        _ => unavailable("unexpected keychain error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::item;

    fn platform(text: &str) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(std::io::Error::other(text.to_owned()))
    }

    fn message(err: &StoreError) -> String {
        err.to_string()
    }

    #[test]
    fn reconnects_come_at_once_then_back_off_to_a_minute_and_reset_on_success() {
        let mut r = Reconnects::default();
        let start = Instant::now();
        assert!(r.due(start), "the first call connects");
        r.succeeded();
        assert!(!r.due(start), "a working connection is kept");
        r.failed(start);
        assert!(r.due(start), "the first failure reconnects at once");
        let mut now = start;
        let mut waits = Vec::new();
        for _ in 0..10 {
            r.reconnected(now);
            r.failed(now);
            let next = r.due_at.unwrap();
            assert!(!r.due(now), "a failure right after a reconnect waits");
            waits.push((next - now).as_secs());
            now = next;
            assert!(r.due(now));
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        r.succeeded();
        assert!(!r.due(now));
        r.failed(now);
        assert!(
            r.due(now),
            "after a success, the next failure reconnects at once again"
        );
    }

    #[test]
    fn a_keychain_failing_for_an_hour_is_reconnected_about_once_a_minute() {
        // A call every 20 ms for an hour, each failing: as the locked, re-activated keyring
        // of the incident (about 20,000 reconnects in 17 minutes).
        let start = Instant::now();
        let mut r = Reconnects::default();
        r.succeeded();
        let mut made = 0;
        for tick in 0..(3600 * 50) {
            let now = start + Duration::from_millis(tick * 20);
            if r.due(now) {
                r.reconnected(now);
                made += 1;
            }
            r.failed(now);
        }
        assert!((60..=70).contains(&made), "{made} reconnects");
    }

    #[test]
    fn no_store_explains_what_to_start() {
        let err = map_error("work", Op::Read, keyring::Error::NoDefaultStore);
        assert!(matches!(&err, StoreError::Unavailable(m) if m == NO_KEYCHAIN));
    }

    #[test]
    fn locked_and_failing_keychains_are_unavailable_without_platform_text() {
        let locked = map_error(
            "work",
            Op::Write,
            keyring::Error::NoStorageAccess(platform("SECRET-locked")),
        );
        assert!(matches!(&locked, StoreError::Unavailable(_)));
        assert!(message(&locked).contains("locked or access was denied"));
        assert!(message(&locked).contains("slot work"));
        assert!(!message(&locked).contains("SECRET"));

        let failed = map_error(
            "work",
            Op::Delete,
            keyring::Error::PlatformFailure(platform("SECRET-failure")),
        );
        assert!(matches!(&failed, StoreError::Unavailable(_)));
        assert!(!message(&failed).contains("SECRET"));
    }

    #[test]
    fn bad_item_bytes_are_corrupt_and_never_quoted() {
        let encoding = map_error(
            "work",
            Op::Read,
            keyring::Error::BadEncoding(b"SECRET\xff".to_vec()),
        );
        assert!(matches!(&encoding, StoreError::Corrupt { slot, .. } if slot == "work"));
        assert!(!message(&encoding).contains("SECRET"));

        let format = map_error(
            "work",
            Op::Read,
            keyring::Error::BadDataFormat(b"SECRET".to_vec(), platform("SECRET")),
        );
        assert!(matches!(&format, StoreError::Corrupt { .. }));
        assert!(!message(&format).contains("SECRET"));
    }

    #[test]
    fn other_kinds_never_echo_their_payload() {
        for err in [
            keyring::Error::BadStoreFormat("SECRET".to_owned()),
            keyring::Error::Invalid("target".to_owned(), "SECRET".to_owned()),
            keyring::Error::NotSupportedByStore("SECRET".to_owned()),
            keyring::Error::Ambiguous(Vec::new()),
        ] {
            let mapped = map_error("work", Op::Read, err);
            assert!(!message(&mapped).contains("SECRET"), "{mapped}");
        }
    }

    #[test]
    fn an_item_round_trips_through_its_password_json() {
        let stored = item(3, 2, "x");
        let password = serde_json::to_string(&stored).unwrap();
        assert_eq!(decode_item("work", &password).unwrap(), stored);
    }

    #[test]
    fn an_unparseable_password_is_corrupt_and_not_quoted() {
        let err = decode_item("work", "SECRET-not-json").unwrap_err();
        assert!(matches!(&err, StoreError::Corrupt { .. }));
        assert!(!message(&err).contains("SECRET"));

        let wrong = decode_item("work", r#"{"generation":"SECRET"}"#).unwrap_err();
        assert!(!message(&wrong).contains("SECRET"));
    }
}
