//! One slot as the manager holds it in memory: the persisted record, the credentials (or
//! why there are none), the job running for it, and the callers waiting on that job.
//! Plain data with small pure helpers; the manager decides what happens.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::protocol::{ErrorCode, ErrorReply, LoginReply, SlotStatus};
use crate::secret::Secret;
use crate::slot_reason::SlotReason;
use crate::state::{ItemVersion, SlotRecord, SlotState};
use crate::store::{StoredCredentials, Tokens, WriteCondition};

use crate::daemon::core::Reply;
use crate::daemon::core::usage::QuotaState;
use crate::daemon::core::waiters::Waiter;

/// How long before expiry sessctl refreshes a slot kept in Claude Code's store (at least):
/// three times Claude Code's own 5 minutes, so sessctl always goes first with room for a
/// slow provider and a retry. (Still at most half the token's lifetime,
/// `schedule::refresh_margin`.)
pub const CLAUDE_CODE_REFRESH_BEFORE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// [`Slot::refresh_before`] for a slot that is (`claude_code`) or is not in Claude Code's store.
pub fn refresh_before(configured: std::time::Duration, claude_code: bool) -> std::time::Duration {
    if claude_code {
        configured.max(CLAUDE_CODE_REFRESH_BEFORE)
    } else {
        configured
    }
}

/// Where a slot's credentials stand.
#[derive(Debug)]
pub enum Creds {
    /// Not read from the store yet (or the store was unreachable: retry at `retry_at`).
    NotLoaded {
        attempt: u32,
        retry_at: DateTime<Utc>,
    },
    /// The store holds no item for this slot.
    Missing,
    /// Tokens in hand: the newest we have, and whether the store has them too.
    Present { tokens: Tokens, stored: Stored },
}

/// Whether the store holds a slot's newest tokens.
#[derive(Debug)]
pub enum Stored {
    /// Yes: the store's item is this generation and version.
    Yes { generation: u64, version: u64 },
    /// No: the store could not take them; they live only in memory until a write with
    /// `condition` succeeds (retried at `retry_at`).
    No {
        condition: WriteCondition,
        attempt: u32,
        retry_at: DateTime<Utc>,
    },
}

impl Stored {
    /// The stored identity of an item just written or read.
    pub fn from_item(item: &StoredCredentials) -> Self {
        Stored::Yes {
            generation: item.generation,
            version: item.version,
        }
    }
}

impl Creds {
    /// The newest tokens we hold, stored or not.
    pub fn tokens(&self) -> Option<&Tokens> {
        match self {
            Creds::Present { tokens, .. } => Some(tokens),
            _ => None,
        }
    }

    /// The condition the next write of this slot's credentials must meet.
    pub fn write_condition(&self) -> Option<WriteCondition> {
        match self {
            Creds::Present {
                stored:
                    Stored::Yes {
                        generation,
                        version,
                    },
                ..
            } => Some(WriteCondition::Exact {
                generation: *generation,
                version: *version,
            }),
            Creds::Present {
                stored: Stored::No { condition, .. },
                ..
            } => Some(*condition),
            _ => None,
        }
    }
}

/// The job currently running for a slot (at most one: this is the single flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Loading,
    Refreshing,
    Writing,
    /// A `use` moving this slot's login between stores (`crate::daemon::core::moving`).
    Moving,
}

/// What a waiter learns when the slot's job ends.
#[derive(Debug, Clone)]
pub struct SlotOutcome {
    pub name: String,
    pub state: SlotState,
    pub result: Result<(), ErrorReply>,
    /// The access token now held, for `token` callers.
    pub access_token: Option<Secret>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A slot in the manager.
pub struct Slot {
    pub name: String,
    pub record: SlotRecord,
    pub creds: Creds,
    pub job: Option<Job>,
    pub waiters: Vec<Waiter>,
    /// `logout` callers queued behind a running job.
    pub logouts: Vec<QueuedLogout>,
    pub next_refresh_at: Option<DateTime<Utc>>,
    /// Consecutive transient refresh failures (drives the backoff).
    pub failures: u32,
    /// Something other than a caller wants a refresh now (a 401 from the usage endpoint).
    pub refresh_wanted: bool,
    /// Quota data and fetch bookkeeping.
    pub quota: QuotaState,
    /// The login that put the current tokens here, waiting for them to be durable (in the
    /// journal, or in the store) before it is answered.
    pub pending_login: Option<PendingLogin>,
    /// Refresh tokens of logins the current one replaced: revoked at the provider once the
    /// current tokens are durable, journaled or stored (not before: until then they are the
    /// fallback).
    pub superseded: Vec<Secret>,
    /// When the slot's last token request got its answer, whatever it was: no request
    /// other than an explicit `refresh` goes sooner than [`crate::daemon::core::pacing`] allows after it.
    pub last_reply_at: Option<DateTime<Utc>>,
    /// Journaled tokens of an older login than the state file's, which the store could not
    /// take at start: used if the first load falls back to that login's older item.
    pub journaled: Option<crate::journal::Entry>,
    /// The held tokens came from the journal while the store was unreachable: whether the
    /// store took them already is unknown. This is the item they make; it is restored with
    /// the store's journal rule (taken only over an older item) before anything else, and
    /// no refresh presents them under a guessed condition meanwhile.
    pub restoring: Option<StoredCredentials>,
    /// The current login's tokens are in the write-ahead journal (fsynced): durable, though
    /// the store may not have them yet (`crate::daemon::core::login::journaled`).
    pub login_journaled: bool,
}

/// A `logout` caller queued behind a slot's running job.
pub struct QueuedLogout {
    pub reply: Reply,
    /// Pending logins of the name this logout cancelled (its reply says how many).
    pub cancelled: usize,
}

/// A login whose tokens are being made durable; answered when the journal (or, without
/// one, the store) has them.
pub struct PendingLogin {
    pub reply: Reply,
    /// The reply to send once durable.
    pub answer: LoginReply,
}

impl Slot {
    /// A slot read from the state file, credentials still to load.
    pub fn from_record(name: String, record: SlotRecord, now: DateTime<Utc>) -> Self {
        Slot {
            name,
            record,
            creds: Creds::NotLoaded {
                attempt: 0,
                retry_at: now,
            },
            job: None,
            waiters: Vec::new(),
            logouts: Vec::new(),
            next_refresh_at: None,
            failures: 0,
            refresh_wanted: false,
            quota: QuotaState::default(),
            pending_login: None,
            superseded: Vec::new(),
            last_reply_at: None,
            journaled: None,
            restoring: None,
            login_journaled: false,
        }
    }

    /// How long before expiry this slot's token is refreshed: `configured`, or for a slot
    /// in Claude Code's store at least [`CLAUDE_CODE_REFRESH_BEFORE`], so that a running
    /// Claude Code (which refreshes 5 minutes before expiry) always finds a fresh token.
    pub fn refresh_before(&self, configured: std::time::Duration) -> std::time::Duration {
        refresh_before(configured, self.record.claude_code.is_some())
    }

    /// The outcome to hand to waiters, given how the job ended.
    pub fn outcome(&self, result: Result<(), ErrorReply>) -> SlotOutcome {
        let tokens = self.creds.tokens();
        SlotOutcome {
            name: self.name.clone(),
            state: self.record.state,
            result,
            access_token: tokens.map(|t| t.access_token.clone()),
            expires_at: tokens.and_then(|t| t.expires_at),
        }
    }

    /// Answers every waiter with the same outcome, judged at `now`.
    pub fn resolve_waiters(&mut self, result: Result<(), ErrorReply>, now: DateTime<Utc>) {
        let outcome = self.outcome(result);
        for waiter in self.waiters.drain(..) {
            waiter.answer(&outcome, now);
        }
    }

    /// The error a refresh of this slot meets before any request is made, if any.
    pub fn refusal(&self, config: &Config) -> Option<ErrorReply> {
        if self.record.state == SlotState::Inactive {
            let reason = self
                .record
                .reason
                .as_ref()
                .map_or("inactive", SlotReason::as_str);
            return Some(ErrorReply::new(
                ErrorCode::SlotInactive,
                format!(
                    "slot {} needs a new login ({reason}); run: {}",
                    self.name,
                    self.with_claude_code_hint(self.login_command(config))
                ),
            ));
        }
        None
    }

    /// `command`, and for a Claude Code slot the other way back: Claude Code's own login
    /// into its dir (unless `command` is that already).
    fn with_claude_code_hint(&self, command: String) -> String {
        match &self.record.claude_code {
            Some(dir) if command.starts_with("sessctl ") => format!(
                "{command} (the login goes into {}), or log in with Claude Code itself: {}",
                dir.display(),
                crate::relogin::claude_code_own(dir)
            ),
            _ => command,
        }
    }

    /// The command that logs this slot in again, with the flow that fits this machine
    /// ([`crate::relogin::command_here`]). A provider gone from the config still gets a
    /// command; `login` will then say what is wrong with it.
    pub fn login_command(&self, config: &Config) -> String {
        let browser = crate::relogin::browser_available(|v| std::env::var_os(v));
        self.login_command_where(config, browser)
    }

    /// [`Slot::login_command`] for a machine that can (`browser`) or cannot open a browser.
    pub fn login_command_where(&self, config: &Config, browser: bool) -> String {
        match (
            config.providers.get(&self.record.provider),
            &self.record.claude_code,
        ) {
            (Some(provider), Some(dir)) => {
                crate::relogin::claude_code_command(&self.name, provider, dir, browser)
            }
            (Some(provider), None) => crate::relogin::command(&self.name, provider, browser),
            (None, _) => format!(
                "sessctl login {} --provider {}",
                self.name, self.record.provider
            ),
        }
    }

    /// This slot as `status` shows it.
    pub fn status(&self) -> SlotStatus {
        SlotStatus {
            name: self.name.clone(),
            provider: self.record.provider.clone(),
            account: self.record.account.clone(),
            state: self.record.state,
            reason: self.record.reason.clone(),
            access_token_expires_at: self.creds.tokens().and_then(|t| t.expires_at),
            last_refresh_at: self.record.last_refresh_at,
            last_refresh_error: self.record.last_refresh_error.clone(),
            next_refresh_at: self.next_refresh_at,
            refreshes: self.record.refreshes,
            quota: None,
            claude_code_store: self.record.claude_code.as_ref().map(|dir| {
                crate::claude_code::CredentialStore::new(crate::claude_code::ConfigDir::of_slot(
                    dir,
                ))
                .describe()
            }),
            claude_code_dir: self.record.claude_code.clone(),
        }
    }

    /// Starts from tokens the journal holds but the store could not take at start: they are
    /// newer than the store's item, whose refresh token was already spent. They are written
    /// to the store (under the condition the journaled write had) before anything else is
    /// done with them, and refreshed from as usual meanwhile. An entry of an older login than
    /// the state file's (a re-login whose write was lost) waits for the first load: if the
    /// slot falls back to that login's item, the entry is newer than it
    /// ([`Slot::newer_journaled`]).
    pub fn hold_journaled(&mut self, entry: crate::journal::Entry, now: DateTime<Utc>) {
        if entry.generation < self.record.generation {
            self.journaled = Some(entry);
            return;
        }
        if entry.generation > self.record.generation {
            tracing::warn!(
                slot = self.name,
                journaled = entry.generation,
                recorded = self.record.generation,
                "the journal holds a newer login than the state file records; using the journal's"
            );
            self.record.generation = entry.generation;
        }
        let condition = match entry.replaces_version {
            Some(version) => WriteCondition::Exact {
                generation: entry.generation,
                version,
            },
            None => WriteCondition::NewLogin {
                generation: entry.generation,
            },
        };
        tracing::warn!(
            slot = self.name,
            "starting from the journaled tokens the store could not take; storing them first"
        );
        self.restoring = Some(entry.item());
        self.creds = Creds::Present {
            tokens: entry.tokens,
            stored: Stored::No {
                condition,
                attempt: 0,
                retry_at: now,
            },
        };
    }

    /// The credentials to hold after loading `item`, when the journal holds newer tokens
    /// the store never took: of the same login (a refresh), or of a later login's first
    /// write. Those are held, to be written under the condition the journaled write had,
    /// so the item the store ends with has the journal entry's identity and the entry is
    /// settled by it. `None`: the loaded item is the newest.
    pub fn newer_journaled(
        &mut self,
        item: &StoredCredentials,
        now: DateTime<Utc>,
    ) -> Option<Creds> {
        let entry = self.journaled.take()?;
        let journaled = (entry.generation, entry.item().version);
        if journaled <= (item.generation, item.version) {
            return None;
        }
        let condition = match entry.replaces_version {
            Some(version) if entry.generation == item.generation => WriteCondition::Exact {
                generation: item.generation,
                version,
            },
            None => WriteCondition::NewLogin {
                generation: entry.generation,
            },
            // A refresh of a login the store never took at all: no write could give the
            // store that item; the loaded item stands.
            Some(_) => return None,
        };
        tracing::warn!(
            slot = self.name,
            "the store's item is older than journaled tokens it never took; storing those"
        );
        self.record.generation = entry.generation;
        self.restoring = Some(entry.item());
        Some(Creds::Present {
            tokens: entry.tokens,
            stored: Stored::No {
                condition,
                attempt: 0,
                retry_at: now,
            },
        })
    }

    /// The one way a slot's state changes: the state, why (`None` when active) and the
    /// error that says so (`None` clears it). The change is saved and logged at the end of
    /// the event (`Manager::flush`), the alerts it causes raised there too.
    pub fn transition(
        &mut self,
        state: SlotState,
        reason: Option<SlotReason>,
        error: Option<String>,
    ) {
        self.record.state = state;
        self.record.reason = reason;
        self.record.last_refresh_error = error;
    }

    /// Marks the slot inactive: no token request is made for it until a new login.
    pub fn deactivate(&mut self, reason: SlotReason, error: String) {
        self.transition(SlotState::Inactive, Some(reason), Some(error));
        self.next_refresh_at = None;
    }

    /// The store handed back an item older than one already written: its refresh token was
    /// already spent (presenting it would revoke the grant under strict rotation), so the
    /// slot holds no credentials and is inactive until the newer item is put back or the slot
    /// is logged in again.
    pub fn refuse_stale(&mut self, found: ItemVersion) {
        let newest = self.record.newest_written.unwrap_or(found);
        let error = format!(
            "the credential store holds an older copy of this slot's item (generation {} version {}; sessctl already wrote generation {} version {}), restored from a backup?; its refresh token was already used, so it is not presented",
            found.generation, found.version, newest.generation, newest.version
        );
        tracing::error!(slot = self.name, "{error}");
        self.creds = Creds::Missing;
        self.deactivate(SlotReason::StaleCredentials, error);
    }

    /// A slot refused for a stale item that now reads a current one is active again.
    pub fn clear_stale(&mut self) {
        if self.record.reason == Some(SlotReason::StaleCredentials) {
            self.transition(SlotState::Active, None, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{CLAUDE_CODE_REFRESH_BEFORE, refresh_before};

    #[test]
    fn a_claude_code_slot_is_refreshed_at_least_15_minutes_before_expiry() {
        let five = Duration::from_secs(300);
        assert_eq!(refresh_before(five, true), CLAUDE_CODE_REFRESH_BEFORE);
        assert_eq!(refresh_before(five, false), five);
        let hour = Duration::from_secs(3600);
        assert_eq!(refresh_before(hour, true), hour);
    }
}
