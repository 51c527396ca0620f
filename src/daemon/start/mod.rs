//! Start-up: what the daemon does before the core runs. The single-instance locks, the
//! reconciliation of the state file with the credential store, the replay of the previous
//! daemon's journal, and the probe that tells whether there is a keychain at all.

pub mod fingerprint_key;
pub mod journal;
pub mod lock;
pub mod reconcile;
pub mod store_probe;

pub use journal as journal_start;
