//! A login that goes into Claude Code's store for a config dir (`sessctl login NAME
//! --claude-code DIR`, or a plain `sessctl login NAME` of a slot already kept there): the
//! slot is then Claude Code-backed at DIR, and its refresh token never enters sessctl's own
//! store or journal.
//!
//! The rules, decided here and checked again when the flow completes:
//! - a slot kept in sessctl's own store cannot be logged in into a dir (one account would
//!   sit in two stores), nor can a Claude Code slot be moved to another dir;
//! - a dir that is another slot's store is refused, naming that slot.
//!
//! What the dir already holds is judged by the job, under Claude Code's locks
//! (`crate::daemon::jobs::claude_code_login`): nothing, a blanked login or the slot's own
//! (dead) login is replaced; another live login of the same account (or, in the slot's own
//! dir, of an account the provider does not name) is replaced and its refresh token revoked
//! once the new state is on disk; a login of another account, or one in a foreign dir that
//! cannot be told apart without spending its refresh token, is refused, never destroyed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::account::AccountKey;
use crate::config::Provider;
use crate::protocol::{ErrorCode, ErrorReply, LoginAction, Response};
use crate::secret::Secret;
use crate::state::{ItemVersion, SlotState};

use super::{Placed, login_answer, login_record};
use crate::daemon::core::orders::JobOrder;
use crate::daemon::core::reports::LoginSuccess;
use crate::daemon::core::results::schedule_next;
use crate::daemon::core::slot::{Creds, Slot, Stored};
use crate::daemon::core::{Manager, Reply};

/// The config dirs of logins in progress that go into Claude Code's store, by login ticket.
#[derive(Default)]
pub(in crate::daemon) struct ClaudeCodeLogins {
    dirs: BTreeMap<u64, PathBuf>,
}

impl ClaudeCodeLogins {
    /// Login `ticket` goes into the store of `dir`.
    pub fn insert(&mut self, ticket: u64, dir: PathBuf) {
        self.dirs.insert(ticket, dir);
    }

    /// The dir of login `ticket`, kept.
    pub fn dir(&self, ticket: u64) -> Option<&PathBuf> {
        self.dirs.get(&ticket)
    }

    /// The dir of login `ticket`, forgotten: the login finished.
    pub fn take(&mut self, ticket: u64) -> Option<PathBuf> {
        self.dirs.remove(&ticket)
    }

    /// Forgets the dirs of logins that are no longer pending (expired flows).
    pub fn keep_only(&mut self, live: impl Fn(u64) -> bool) {
        self.dirs.retain(|ticket, _| live(*ticket));
    }
}

/// A finished login on its way into Claude Code's store: ordered by the core, reported
/// back by the job with `outcome` set.
pub struct ClaudeCodeLogin {
    pub target: String,
    pub typed: String,
    pub action: LoginAction,
    pub provider: Provider,
    pub key: Option<AccountKey>,
    pub success: LoginSuccess,
    pub dir: PathBuf,
    /// The refresh token the target slot holds for `dir` (its own login, maybe dead).
    pub expected: Option<Secret>,
    /// The target slot is inactive: `expected` is dead, and is not revoked.
    pub expected_dead: bool,
    /// `dir` is the target slot's own store: whatever login it holds is that slot's (its
    /// refreshes adopt any rotation there), replaced unless the provider names another
    /// account for it.
    pub own_dir: bool,
    pub reply: Reply,
    /// Set by the job: the refresh token of a live login it replaced (revoked once the
    /// state is durable), or why the store was left alone.
    pub outcome: Option<Result<Option<Secret>, String>>,
}

impl Manager {
    /// Login `ticket` (just begun) goes into the store of `dir`, when set. The dirs of
    /// logins that ended without finishing (expired, cancelled) are forgotten here.
    pub(in crate::daemon) fn note_claude_code_login(&mut self, ticket: u64, dir: Option<PathBuf>) {
        let pending: Vec<u64> = self.flows.flows.values().map(|f| f.ticket).collect();
        let tickets = &self.login_tickets;
        self.claude_code_logins
            .keep_only(|t| pending.contains(&t) || tickets.in_flight(t));
        if let Some(dir) = dir {
            self.claude_code_logins.insert(ticket, dir);
        }
    }

    /// Why slot `target` cannot be logged in into the Claude Code store of `dir`.
    pub(in crate::daemon) fn claude_code_conflict(
        &self,
        target: &str,
        dir: &Path,
    ) -> Option<String> {
        if let Some(slot) = self.slots.get(target) {
            let account = slot.record.account.as_deref().unwrap_or("its account");
            match &slot.record.claude_code {
                None => {
                    return Some(format!(
                        "slot {target} keeps {account} in sessctl's own credential store; a login of it into {} would put one account in two stores. Log in without --claude-code, or `sessctl logout {target}` first",
                        dir.display()
                    ));
                }
                Some(own) if own != dir => {
                    return Some(format!(
                        "slot {target} ({account}) is Claude Code's login in {}; log it in there (sessctl login {target} --provider {}), or `sessctl logout {target}` first",
                        own.display(),
                        slot.record.provider
                    ));
                }
                Some(_) => {}
            }
        }
        let other = (self.slots.values())
            .find(|slot| slot.name != target && slot.record.claude_code.as_deref() == Some(dir))?;
        Some(format!(
            "the Claude Code store in {} is already slot {} ({}); log that slot in again (sessctl login {} --provider {}), or `sessctl logout {}` first",
            dir.display(),
            other.name,
            other.record.account.as_deref().unwrap_or("account unknown"),
            other.name,
            other.record.provider,
            other.name
        ))
    }

    /// The config dir a `login_begin` of slot `name` goes to: the one asked for, else the
    /// slot's own when it is a Claude Code slot; or why it cannot.
    pub(in crate::daemon) fn claude_code_target(
        &self,
        name: &str,
        asked: Option<&Path>,
    ) -> Result<Option<PathBuf>, ErrorReply> {
        let dir = match asked {
            Some(dir) if !dir.is_absolute() => {
                return Err(ErrorReply::new(
                    ErrorCode::BadRequest,
                    format!(
                        "the Claude Code config dir {} is not absolute",
                        dir.display()
                    ),
                ));
            }
            Some(dir) => dir.to_path_buf(),
            None => match self
                .slots
                .get(name)
                .and_then(|s| s.record.claude_code.clone())
            {
                Some(dir) => dir,
                None => return Ok(None),
            },
        };
        match self.claude_code_conflict(name, &dir) {
            Some(conflict) => Err(ErrorReply::new(ErrorCode::Conflict, conflict)),
            None => Ok(Some(dir)),
        }
    }

    /// A finished login whose slot is (or becomes) Claude Code-backed: checked again, then
    /// handed to the job that writes it into the store under Claude Code's locks.
    pub(super) fn login_to_claude_code(
        &mut self,
        placed: Placed,
        success: LoginSuccess,
        dir: Option<PathBuf>,
        reply: Reply,
    ) {
        let refused = match &dir {
            Some(dir) => self.claude_code_conflict(&placed.target, dir),
            // A refresh token from stdin: some other program holds that lineage.
            None => self.slots.get(&placed.target).and_then(|slot| {
                let dir = slot.record.claude_code.as_ref()?;
                Some(format!(
                    "slot {} is Claude Code's login in {}: log in there with Claude Code (CLAUDE_CONFIG_DIR={} claude, then /login), or `sessctl logout {}` first",
                    placed.target,
                    dir.display(),
                    dir.display(),
                    placed.target
                ))
            }),
        };
        let (Some(dir), None) = (dir, refused.clone()) else {
            let message = refused.unwrap_or_default();
            self.refuse_login(&placed, success, &message, reply);
            return;
        };
        let Some(provider) = self.config.providers.get(&placed.provider).cloned() else {
            self.refuse_login(
                &placed,
                success,
                "its provider left the configuration",
                reply,
            );
            return;
        };
        let slot = self.slots.get(&placed.target);
        let expected = slot
            .and_then(|s| s.creds.tokens())
            .map(|t| t.refresh_token.clone());
        let expected_dead = slot.is_some_and(|s| s.record.state == SlotState::Inactive);
        let own_dir = slot.is_some_and(|s| s.record.claude_code.as_deref() == Some(&*dir));
        tracing::info!(slot = placed.target, dir = %dir.display(), "writing a login into Claude Code's store");
        self.jobs
            .push(JobOrder::ClaudeCodeLogin(Box::new(ClaudeCodeLogin {
                target: placed.target,
                typed: placed.typed,
                action: placed.action,
                provider,
                key: placed.key,
                success,
                dir,
                expected,
                expected_dead,
                own_dir,
                reply,
                outcome: None,
            })));
    }

    /// Refuses a finished login: its new grant is revoked at once (nothing holds it).
    fn refuse_login(
        &mut self,
        placed: &Placed,
        success: LoginSuccess,
        message: &str,
        reply: Reply,
    ) {
        tracing::warn!(slot = placed.typed, "login refused: {message}");
        let token = success.tokens.refresh_token;
        self.revoke_unheld(&placed.typed, &placed.provider, token, "a refused login");
        let _ = reply.send(Err(ErrorReply::new(
            ErrorCode::Conflict,
            format!("{message}. Nothing was changed; the new login's grant is revoked"),
        )));
    }

    /// The job wrote the login into Claude Code's store (or left the store alone): the
    /// slot now holds it, Claude Code-backed; answered once the state file says so.
    pub(in crate::daemon) fn on_claude_code_login(&mut self, login: ClaudeCodeLogin) {
        let ClaudeCodeLogin {
            target,
            typed,
            action,
            provider,
            key,
            success,
            dir,
            reply,
            outcome,
            ..
        } = login;
        let placed = Placed {
            target,
            typed,
            action,
            provider: provider.name,
            key,
        };
        let replaced = match outcome {
            Some(Ok(replaced)) => replaced,
            Some(Err(message)) => {
                self.refuse_login(&placed, success, &message, reply);
                return;
            }
            None => return,
        };
        let generation = self.allocate_generation();
        let (now, unit) = (self.now, self.rng.f64());
        let old = self.slots.remove(&placed.target);
        let mut record = login_record(&placed, &success, old.as_ref(), generation, now);
        record.claude_code = Some(dir);
        record.newest_written = Some(ItemVersion {
            generation,
            version: 1,
        });
        let answer = login_answer(&placed, old.as_ref(), &record);
        let mut slot = Slot::from_record(placed.target.clone(), record, now);
        slot.creds = Creds::Present {
            tokens: success.tokens,
            stored: Stored::Yes {
                generation,
                version: 1,
            },
        };
        schedule_next(&mut slot, self.config.refresh_before_expiry, unit);
        if let Some(mut old) = old {
            // What the store held is `replaced` (the job read it under the lock); the
            // token the old slot last saw may be an older, already rotated one.
            old.creds = Creds::Missing;
            self.take_over(&mut slot, old, answer.account.as_deref());
        }
        tracing::info!(
            slot = placed.target,
            generation,
            account = ?answer.account,
            reactivated = answer.reactivated,
            "logged in into Claude Code's store"
        );
        self.slots.insert(placed.target.clone(), slot);
        self.persist();
        self.revoke_superseded(&placed.target);
        if let Some(token) = replaced {
            self.revoke_unheld(&placed.target, &placed.provider, token, "a replaced login");
        }
        self.reply_when_durable(reply, Ok(Response::Login(answer)));
    }
}
