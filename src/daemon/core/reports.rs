//! What jobs report back to the core: the vocabulary of the core's inputs from I/O. A job
//! (`crate::daemon::jobs`) or a simulator produces these; the manager applies them
//! (`super::results`, `super::login`, `super::revocations`).

use chrono::Utc;

use crate::account::Identity;
use crate::config::Provider;
use crate::oauth;
use crate::protocol::{ErrorCode, ErrorReply, LogoutReply};
use crate::quota::UsageOutcome;
use crate::store::{StoreError, StoredCredentials, Tokens};

use super::Reply;

/// What a job reports back to the manager.
pub enum JobResult {
    Loaded {
        name: String,
        generation: u64,
        result: Result<Option<StoredCredentials>, StoreError>,
    },
    Refreshed {
        name: String,
        generation: u64,
        outcome: RefreshOutcome,
        /// Set when the reply rotated the refresh token (kept in `outcome`) but its access
        /// token was unusable: what was wrong ([`crate::oauth::TokenGrant::defect`]).
        unusable: Option<String>,
    },
    Written {
        name: String,
        generation: u64,
        result: Result<StoredCredentials, StoreError>,
    },
    LoggedIn(Box<LoginResult>),
    /// A login's tokens were appended to the journal and fsynced (`journaled`), or not (no
    /// journal this run, or the append failed): `crate::daemon::core::login::journaled`.
    LoginJournaled {
        name: String,
        generation: u64,
        journaled: bool,
    },
    Usage {
        name: String,
        generation: u64,
        outcome: UsageOutcome,
    },
    /// The state file was saved up to this snapshot number, or could not be saved.
    StateSaved(Result<u64, String>),
    /// The quota cache was written (with this `updated_at`) or could not be.
    CacheSaved(Result<chrono::DateTime<Utc>, String>),
    /// A revocation attempt ended (`crate::daemon::jobs::revoke`).
    Revocation(Box<RevocationReport>),
    /// `adopt` read the Claude Code store it names (`Adoption::found`).
    Adopted(Box<Adoption>),
    /// A login was written into a Claude Code store, or refused (`ClaudeCodeLogin::outcome`).
    ClaudeCodeLogin(Box<super::login::claude_code::ClaudeCodeLogin>),
    /// An inactive Claude Code slot's store was probed (`Probe::found`).
    ClaudeCodeProbed(Box<super::claude_code_reload::Probe>),
    /// A `use` move's job ended (`crate::daemon::core::moving`).
    Moved(Box<super::moving::MoveReport>),
}

/// An `adopt` of a Claude Code store: ordered by the core (`found` empty), reported back
/// by the job with what the store holds and whose login it is.
pub struct Adoption {
    pub name: String,
    pub provider: Option<Provider>,
    /// The Claude Code config dir (absolute, as `CLAUDE_CONFIG_DIR` names it).
    pub dir: std::path::PathBuf,
    pub reply: Reply,
    /// The store's tokens and the account (as far as the provider said), or why the store
    /// cannot be adopted.
    pub found: Option<Result<(Tokens, Identity), ErrorReply>>,
}

/// How a refresh job ended.
pub enum RefreshOutcome {
    /// New tokens, written to the store.
    Stored(StoredCredentials),
    /// New tokens the store could not take: the only copy is in this value.
    Unsaved { tokens: Tokens, error: StoreError },
    /// New tokens refused by the store's compare-and-set: something newer is stored. The
    /// tokens are kept so that a refresh of a replaced login can still be revoked.
    Conflict { error: StoreError, tokens: Tokens },
    Transient {
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    Permanent {
        reason: oauth::PermanentReason,
        error: String,
    },
}

/// What a login job learned. Every login flow ends here; the manager picks the slot.
pub struct LoginResult {
    /// The slot name the user typed.
    pub name: String,
    pub provider: String,
    /// The login's ticket (`crate::daemon::core::login::cancel`): a logout after it cancels it.
    pub ticket: u64,
    pub reply: Reply,
    pub result: Result<LoginSuccess, ErrorReply>,
}

/// A redeemed login, not stored yet: the tokens and who they belong to.
pub struct LoginSuccess {
    pub tokens: Tokens,
    pub identity: Identity,
}

/// How a first attempt ended.
pub enum FirstOutcome {
    Revoked,
    /// The provider has no `revoke_url`.
    NoEndpoint,
    /// The provider refused for good (a 4xx other than 429).
    Refused(String),
    /// Failed for now; the token is in the store under revocation `id`.
    Kept {
        id: String,
        error: String,
    },
    /// Failed for now, and the store could not take the token either.
    Lost {
        error: String,
        store_error: String,
    },
}

/// How a retry ended.
pub enum RetryOutcome {
    Revoked,
    Refused(String),
    Failed(String),
    /// The store item holding the token is gone.
    Gone,
}

/// What a revocation job reports to the manager.
pub enum RevocationReport {
    First {
        slot: String,
        provider: String,
        why: &'static str,
        outcome: FirstOutcome,
        /// A logout's reply, answered by the manager (after recording a kept token).
        logout: Option<(Reply, LogoutReply)>,
    },
    Retried {
        id: String,
        outcome: RetryOutcome,
    },
    /// A logout with no token to revoke (no credentials loaded, or no provider) ended: its
    /// reply, answered by the manager once the state file no longer lists the slot.
    LoggedOut {
        reply: Reply,
        answer: LogoutReply,
    },
}

/// The reply to work refused because the daemon is stopping.
pub fn stopping() -> ErrorReply {
    ErrorReply::new(
        ErrorCode::ShuttingDown,
        "the daemon is shutting down; try again once it has restarted",
    )
}
