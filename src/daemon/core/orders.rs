//! The I/O the core asks for, as values. The manager never starts a task, sends a request
//! or touches the store: it queues a [`JobOrder`] in its [`JobOrders`], and the runner
//! (`crate::daemon::runner`) takes them after each event and starts them on a [`JobContext`]
//! ([`JobOrder::start`]). A simulator takes them instead and answers them from models.
//!
//! Each order mirrors one job of `crate::daemon::jobs`, `crate::daemon::jobs::login` or
//! `crate::daemon::jobs::revoke`, with the same arguments; what the job reports comes back to the
//! manager as a [`crate::daemon::core::reports::JobResult`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use tokio::sync::{oneshot, watch};

use crate::config::Provider;
use crate::journal::Journal;
use crate::protocol::ErrorReply;
use crate::secret::Secret;
use crate::store::{ItemLabel, StoredCredentials, Tokens, WriteCondition};

use super::Reply;
use super::drain::DrainGate;
use super::login::flows::DeviceResult;

/// A browser or pasted-code login whose code came back with the right state.
pub struct CodeLogin {
    pub name: String,
    pub provider: Provider,
    pub redirect_uri: Url,
    pub code: Secret,
    pub verifier: Secret,
    pub state: Secret,
    /// Compared with logouts of the name (`crate::daemon::core::login::cancel`).
    pub ticket: u64,
    /// The Claude Code config dir the login goes into, if any: a failure's advice names it.
    pub claude_code: Option<std::path::PathBuf>,
}

/// A device login about to ask for its user code.
pub struct DeviceLogin {
    pub name: String,
    pub provider: Provider,
    pub flow_id: String,
    /// Polling stops here (the CLI's timeout), or at the device code's own expiry.
    pub expires_at: chrono::DateTime<Utc>,
    /// Compared with logouts of the name (`crate::daemon::core::login::cancel`).
    pub ticket: u64,
    /// The Claude Code config dir the login goes into, if any: a failure's advice names it.
    pub claude_code: Option<std::path::PathBuf>,
}

/// Which waiting request goes first: an interactive login's, then any other a person waits
/// for, then the timer's (the token that expires first first; an unknown expiry counts as
/// already expired), and revocations last (nobody waits for them, and a token kept for a
/// retry loses nothing by waiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    /// A person is at a browser or a device page: a code exchange, a device login's
    /// requests. Authorization codes and device codes expire within minutes, so they never
    /// queue behind a burst of refreshes.
    Interactive,
    /// Someone is waiting for the result (`refresh`, `token`, a refresh-token login).
    Asked,
    /// Work the daemon does on its own, keyed by the access token's expiry.
    Scheduled(Option<DateTime<Utc>>),
    /// A revocation (first attempt or retry): after everything else.
    Revocation,
}

/// One piece of I/O to start.
pub enum JobOrder {
    /// Read a slot's item from the store (from Claude Code's store for `claude_code`'s
    /// config dir, when set).
    Load {
        name: String,
        generation: u64,
        claude_code: Option<PathBuf>,
    },
    /// Redeem `current`'s refresh token once, store the result under `condition`.
    Refresh {
        name: String,
        generation: u64,
        provider: Provider,
        current: Tokens,
        condition: WriteCondition,
        urgency: Urgency,
        /// The slot lives in Claude Code's store for this config dir: the refresh runs
        /// under Claude Code's locks, and sends nothing when that store was rotated since.
        claude_code: Option<PathBuf>,
    },
    /// Append a login's tokens to the write-ahead journal (one fsync) before their first
    /// store write; reported as [`super::reports::JobResult::LoginJournaled`].
    JournalLogin {
        name: String,
        generation: u64,
        tokens: Tokens,
    },
    /// Write tokens the store could not take earlier (or a login's first write).
    Write {
        name: String,
        generation: u64,
        tokens: Tokens,
        condition: WriteCondition,
        /// Write into Claude Code's store for this config dir instead.
        claude_code: Option<PathBuf>,
    },
    /// Fetch a slot's usage with its access token.
    Usage {
        name: String,
        generation: u64,
        provider: Provider,
        access_token: Secret,
    },
    /// Put journaled tokens in the store, unless it holds that item or newer (the journal's
    /// replay rule); reported as a write.
    Restore {
        name: String,
        generation: u64,
        item: StoredCredentials,
    },
    /// Set the provider/account label of a slot's item (no reply).
    Label { name: String, label: ItemLabel },
    /// A refresh-token login: redeem the token and learn the account.
    Login {
        name: String,
        ticket: u64,
        provider: Provider,
        refresh_token: Secret,
        reply: Reply,
    },
    /// Exchange a browser or pasted code, then finish the login.
    CodeLogin { login: CodeLogin, reply: Reply },
    /// A device login from its authorization request to the end of its polling.
    DeviceLogin {
        login: DeviceLogin,
        begun: Reply,
        done: watch::Sender<DeviceResult>,
        cancelled: oneshot::Receiver<ErrorReply>,
    },
    /// Answer a `login_wait` with the device login's outcome once it has one, or with
    /// `login_pending` after `slice`.
    AwaitDevice {
        result: watch::Receiver<DeviceResult>,
        slice: Duration,
        reply: Reply,
    },
    /// Revoke a refresh token nobody holds any more.
    Revoke {
        slot: String,
        provider: Provider,
        token: Secret,
        why: &'static str,
    },
    /// Revoke a slot's refresh token and delete its item; the reply counts `cancelled`
    /// pending logins the logout also cancelled.
    Logout {
        name: String,
        generation: u64,
        provider: Option<Provider>,
        tokens: Option<Tokens>,
        /// The Claude Code config dir whose store holds the slot's login (left alone).
        claude_code: Option<std::path::PathBuf>,
        reply: Reply,
        cancelled: usize,
    },
    /// Read the Claude Code store an `adopt` names.
    Adopt(Box<super::reports::Adoption>),
    /// Write a finished login into a Claude Code store, under its locks.
    ClaudeCodeLogin(Box<super::login::claude_code::ClaudeCodeLogin>),
    /// Look for a new login in an inactive Claude Code slot's store.
    ProbeClaudeCode(Box<super::claude_code_reload::Probe>),
    /// Move a login into a Claude Code store and the one there out (`sessctl use`).
    Move(Box<super::moving::MoveOrder>),
    /// Try a kept revocation again.
    RetryRevocation {
        id: String,
        slot: String,
        provider: Option<Provider>,
    },
}

/// The orders queued during one event, plus what the core reads of the jobs' shared
/// state: the drain gate (is the daemon stopping, how many requests are out) and the
/// journal (which slots' newest tokens it holds).
pub struct JobOrders {
    queued: Vec<JobOrder>,
    pub drain: DrainGate,
    pub journal: Option<Arc<Journal>>,
}

impl JobOrders {
    pub fn new(drain: DrainGate, journal: Option<Arc<Journal>>) -> Self {
        JobOrders {
            queued: Vec::new(),
            drain,
            journal,
        }
    }

    /// Every order queued since the last call, oldest first.
    pub fn take(&mut self) -> Vec<JobOrder> {
        std::mem::take(&mut self.queued)
    }

    pub fn push(&mut self, order: JobOrder) {
        self.queued.push(order);
    }

    pub fn load(&mut self, name: String, generation: u64, claude_code: Option<PathBuf>) {
        self.push(JobOrder::Load {
            name,
            generation,
            claude_code,
        });
    }

    pub fn refresh(
        &mut self,
        (name, generation): (String, u64),
        provider: Provider,
        current: Tokens,
        condition: WriteCondition,
        (urgency, claude_code): (Urgency, Option<PathBuf>),
    ) {
        self.push(JobOrder::Refresh {
            name,
            generation,
            provider,
            current,
            condition,
            urgency,
            claude_code,
        });
    }

    pub fn write(
        &mut self,
        name: String,
        generation: u64,
        tokens: Tokens,
        (condition, claude_code): (WriteCondition, Option<PathBuf>),
    ) {
        self.push(JobOrder::Write {
            name,
            generation,
            tokens,
            condition,
            claude_code,
        });
    }

    pub fn usage(
        &mut self,
        name: String,
        generation: u64,
        provider: Provider,
        access_token: Secret,
    ) {
        self.push(JobOrder::Usage {
            name,
            generation,
            provider,
            access_token,
        });
    }

    pub fn retry_revocation(&mut self, id: String, slot: String, provider: Option<Provider>) {
        self.push(JobOrder::RetryRevocation { id, slot, provider });
    }
}
