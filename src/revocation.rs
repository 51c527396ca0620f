//! Revocations still owed: a refresh token that must die at its provider but could not be
//! revoked yet (network error, 5xx, 429). The token itself waits in the credential store,
//! under a reserved account (`.revoke-<id>`: slot names cannot contain a dot); only this
//! non-secret record goes to the state file. The daemon retries with capped, jittered,
//! doubling backoff until the provider confirms or refuses for good.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest wait between two attempts: an hour keeps a forgotten grant's life short without
/// hammering a provider that is down for a while.
pub const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(3600);

/// One revocation still owed. Never holds the token (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRevocation {
    /// Names the store item holding the token ([`PendingRevocation::store_key`]).
    pub id: String,
    /// The slot the token belonged to (for people: the slot may be gone or reused).
    pub slot: String,
    pub provider: String,
    /// Why the token is revoked: `logout`, `a replaced login`, ...
    pub why: String,
    pub since: DateTime<Utc>,
    /// Attempts made so far, the first included.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
}

impl PendingRevocation {
    /// The account of the store item that holds this revocation's token.
    pub fn store_key(&self) -> String {
        store_key(&self.id)
    }
}

/// The store account for revocation `id`.
pub fn store_key(id: &str) -> String {
    format!(".revoke-{id}")
}

/// A new revocation id: random, so ids never collide across restarts or lost state files.
pub fn new_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// The wait after `attempts` failed attempts: `initial` doubled per further attempt, at most
/// [`MAX_RETRY_INTERVAL`], then jittered down by up to a fifth (`jitter` in 0..1) so that many
/// revocations do not retry in lockstep.
pub fn backoff(initial: Duration, attempts: u32, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    let wait = initial
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_INTERVAL);
    wait.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_wait_up_to_an_hour_and_jitters_down_only() {
        let initial = Duration::from_secs(30);
        assert_eq!(backoff(initial, 1, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(initial, 2, 0.0), Duration::from_secs(60));
        assert_eq!(backoff(initial, 8, 0.0), MAX_RETRY_INTERVAL);
        assert_eq!(backoff(initial, u32::MAX, 0.0), MAX_RETRY_INTERVAL);
        assert_eq!(backoff(initial, 1, 1.0), Duration::from_secs(24));
    }

    #[test]
    fn the_store_key_cannot_be_a_slot_name() {
        let key = store_key(&new_id());
        assert!(key.starts_with(".revoke-"));
        assert!(crate::slot_name::validate(&key).is_err());
    }
}
