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
mod health;
mod inventory;
mod keychain;
mod ledger;
mod rules;
#[cfg(test)]
pub(crate) mod sim_rules;
#[cfg(test)]
mod stall_tests;
mod worker;

pub use backend::CredentialBackend;
pub use file::FileBackend;
pub use inventory::{Inventory, ItemLabel, ItemSummary};
pub use keychain::{KeychainBackend, read_or_create_item};
pub use worker::{CredentialStore, STORE_WAIT};

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
    /// The slot's provider (non-secret), so an item whose slot the state file lost can be
    /// adopted back. Missing in items written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The slot's account as shown in `status` (non-secret), for the same reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(flatten)]
    pub tokens: Tokens,
}

/// The identity of one stored item: which login and which write of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemId {
    pub generation: u64,
    pub version: u64,
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
        /// The identity of the item found (`None`: no item), so the caller can decide
        /// which copy is newer without reading it again.
        found_item: Option<ItemId>,
    },
    /// The stored item cannot be parsed.
    #[error("credential item for slot {slot} is unreadable: {message}")]
    Corrupt { slot: String, message: String },
}

/// Describes why an item's JSON did not parse without quoting any of it: serde's "invalid
/// type/value" messages echo the offending value, which may be a token.
fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let position = if err.line() > 0 {
        format!(" at line {} column {}", err.line(), err.column())
    } else {
        String::new()
    };
    match err.classify() {
        Category::Io => format!("read error{position}"),
        Category::Syntax => format!("invalid JSON{position}"),
        Category::Eof => format!("truncated JSON{position}"),
        Category::Data => {
            let message = err.to_string();
            let names_a_field = ["missing field", "unknown field", "duplicate field"]
                .iter()
                .any(|prefix| message.starts_with(prefix));
            if names_a_field {
                // These quote a field name from our own schema, never a value.
                message
            } else {
                format!("a field has the wrong type or value{position}")
            }
        }
    }
}

#[cfg(test)]
mod test_support {
    //! Helpers shared by the store's unit tests.

    use std::path::PathBuf;

    use super::{StoredCredentials, Tokens};
    use crate::secret::Secret;

    /// A unique directory under the system temp dir, removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> Self {
            TempDir(std::env::temp_dir().join(format!(
                "sessctl-{name}-{}-{:x}",
                std::process::id(),
                fastrand::u64(..)
            )))
        }

        pub fn path(&self, relative: &str) -> PathBuf {
            std::fs::create_dir_all(&self.0).unwrap();
            self.0.join(relative)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Tokens whose values end in `tag`.
    pub fn tokens(tag: &str) -> Tokens {
        Tokens {
            access_token: Secret::new(format!("access-{tag}")),
            refresh_token: Secret::new(format!("refresh-{tag}")),
            expires_at: Some("2030-01-01T00:00:00Z".parse().unwrap()),
            obtained_at: "2029-12-31T23:00:00Z".parse().unwrap(),
            scopes: vec!["user:inference".to_owned()],
        }
    }

    /// A stored item of this generation and version.
    pub fn item(generation: u64, version: u64, tag: &str) -> StoredCredentials {
        StoredCredentials {
            generation,
            version,
            provider: None,
            account: None,
            tokens: tokens(tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_never_quote_a_value() {
        let wrong_type = serde_json::from_str::<StoredCredentials>(
            r#"{"generation":"SECRET-VALUE","version":1}"#,
        )
        .unwrap_err();
        let described = describe_json_error(&wrong_type);
        assert!(!described.contains("SECRET"), "{described}");

        let missing = serde_json::from_str::<StoredCredentials>(r#"{"generation":1}"#).unwrap_err();
        assert!(describe_json_error(&missing).starts_with("missing field"));

        let syntax = serde_json::from_str::<StoredCredentials>("{\"a\": SECRET}").unwrap_err();
        let described = describe_json_error(&syntax);
        assert!(
            !described.contains("SECRET") && described.contains("line 1"),
            "{described}"
        );
    }
}
