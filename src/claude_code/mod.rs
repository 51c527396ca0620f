//! Claude Code's own credential store, from sessctl's side: where it is for a config dir
//! (`location`), the document in it (`credentials`), reading and writing it atomically
//! without losing a field (`store`, `keychain_macos`), and Claude Code's lock protocol
//! around refreshes and writes (`locks`, over proper-lockfile directories in `lockdir`,
//! with the owner record of `owner`, and the early takeover from a dead holder in
//! `takeover`).
//!
//! A library only: it never refreshes a token itself and never decides *when* to; the
//! daemon does, holding a [`RefreshLockGuard`] across re-read → refresh → write and a
//! [`StoreWriteGuard`] around the write. Tokens stay in [`crate::secret::Secret`]s and
//! are never logged. See docs/claude-code.md.

pub mod credentials;
#[cfg(target_os = "macos")]
mod keychain_macos;
pub mod location;
mod lockdir;
pub mod locks;
pub mod owner;
pub mod store;
pub mod takeover;

pub use credentials::{FormatError, OAuthTokens, StoreContents, StoreDocument};
pub use location::ConfigDir;
pub use locks::{
    LockError, LockTiming, RefreshLock, RefreshLockGuard, StoreWriteGuard, StoreWriteLock,
};
pub use store::{CredentialStore, StoreError};
