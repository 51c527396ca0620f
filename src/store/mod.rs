//! The credential store: one item per slot holding `{access_token, refresh_token,
//! expires_at, scopes}`, in the OS keychain or (opt-in) one 0600 file.
//!
//! Every read and write goes through one dedicated worker thread ([`CredentialStore`]), so
//! a compare-and-set (read, compare, write) is atomic with respect to this process, and
//! keychain calls (blocking D-Bus or Security.framework) never run on the async runtime.
//! Items carry a `generation` (bumped by each login) and a `version` (bumped by each
//! write): a refresh may only replace exactly the item it read; a login may only replace
//! an item of an older generation. A stale write is refused and the newer item kept.

mod backend;
mod file;
mod keychain;
mod worker;

pub use backend::CredentialBackend;
pub use file::FileBackend;
pub use keychain::KeychainBackend;
pub use worker::CredentialStore;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The secret part of a slot: what the token endpoint gave us.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// When the access token expires; `None` when the provider did not say.
    pub expires_at: Option<DateTime<Utc>>,
    /// When these tokens were obtained (start of the access token's lifetime).
    pub obtained_at: DateTime<Utc>,
    pub scopes: Vec<String>,
}

/// One stored item: the tokens and the identity of this write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCredentials {
    /// The login this item belongs to (bumped by every login of the slot).
    pub generation: u64,
    /// Bumped by every write within one generation.
    pub version: u64,
    #[serde(flatten)]
    pub tokens: Tokens,
}

/// What a write requires of the item currently stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCondition {
    /// A refresh result: the stored item must be exactly this generation and version.
    /// The written item gets `version + 1`.
    Exact { generation: u64, version: u64 },
    /// A new login: the stored item must be absent or of an older generation. The written
    /// item gets this generation and version 1.
    NewLogin { generation: u64 },
}

/// Which kind of store is in use (reported by `status`).
pub use crate::config::CredentialStoreKind as StoreKind;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The keychain cannot be reached or is locked, or the file cannot be written. The
    /// caller keeps its tokens in memory and retries.
    #[error("credential store unavailable: {0}")]
    Unavailable(String),
    /// The stored item is not the one the write expected: something newer is there.
    #[error("credential store conflict for slot {slot}: expected {expected}, found {found}")]
    Conflict {
        slot: String,
        expected: String,
        found: String,
    },
    /// The stored item cannot be parsed.
    #[error("credential item for slot {slot} is unreadable: {message}")]
    Corrupt { slot: String, message: String },
}
