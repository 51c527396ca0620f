//! The completion of a login, whichever flow produced it. The account picks the slot (its
//! own slot, whatever name was typed; `crate::daemon::core::login::placement`), the generation is allocated
//! now, so the login that finishes last is the newest and the store's compare-and-set
//! refuses anything older; the slot is updated in place and made active; the tokens are
//! journaled, then stored; and the login is answered once they are durable: in the
//! write-ahead journal, or without one in the store (`journaled`). A login not answered
//! yet when a newer login of the same account finished is told it was overtaken.
//!
//! No grant is left alive behind a login: the refresh tokens a login replaces are revoked
//! at the provider once the new tokens are durable (`crate::daemon::core::retire`).

pub mod cancel;
pub mod claude_code;
pub mod flow_input;
pub mod flows;
pub mod journaled;
pub mod placement;

use chrono::{DateTime, Utc};

use crate::account::AccountKey;
use crate::protocol::{ErrorCode, ErrorReply, LoginAction, LoginReply};
use crate::state::{SlotRecord, SlotState};
use crate::store::WriteCondition;

use self::placement::{Candidate, Placement};
use crate::daemon::core::orders::JobOrder;
use crate::daemon::core::reports::{LoginResult, LoginSuccess};
use crate::daemon::core::results::schedule_next;
use crate::daemon::core::retire::ReplacedJob;
use crate::daemon::core::slot::{Creds, Job, PendingLogin, Slot, Stored};
use crate::daemon::core::{Manager, Reply};

/// The warning of a login whose provider named no account.
const NO_ACCOUNT_WARNING: &str = "the provider named no account (no e-mail, no subject): sessctl cannot tell this login's account from others, so a login of it under another name would make a second slot";

/// How the first write of a login's tokens ended.
pub(in crate::daemon) enum LoginWrite {
    Stored,
    /// The store is unreachable: the tokens are held in memory and the write retried.
    Unavailable(String),
    /// The store refused the write (it holds something newer); `dropped` is the refresh
    /// token given up for it, to retire.
    Refused {
        error: String,
        dropped: Option<crate::secret::Secret>,
    },
    /// Not settled yet: the write is being retried (the login waits on).
    Pending,
}

/// Where a finished login goes and what it does there.
struct Placed {
    /// The slot the login goes to.
    target: String,
    /// The name the user typed.
    typed: String,
    action: LoginAction,
    provider: String,
    key: Option<AccountKey>,
}

impl Manager {
    /// A login flow finished: place it, install it, start storing its tokens.
    pub(in crate::daemon) fn on_logged_in(&mut self, login: LoginResult) {
        let LoginResult {
            name: typed,
            provider,
            ticket,
            reply,
            result,
        } = login;
        self.login_tickets.finish(ticket);
        let claude_code = self.claude_code_logins.take(ticket);
        let success = match result {
            Ok(success) => success,
            Err(error) => {
                tracing::warn!(slot = typed, "login failed: {}", error.message);
                let _ = reply.send(Err(error));
                return;
            }
        };
        let key = AccountKey::new(&provider, &success.identity);
        let placement = self.place(&typed, &provider, key.as_ref());
        let lands_in = match &placement {
            Ok(Placement::UpdateAccountSlot(slot)) => slot.as_str(),
            _ => typed.as_str(),
        };
        if self.login_tickets.cancelled(ticket, &[&typed, lands_in]) {
            tracing::warn!(slot = typed, "a login finished after a logout cancelled it");
            let token = success.tokens.refresh_token;
            self.revoke_unheld(&typed, &provider, token, "a login cancelled by logout");
            let _ = reply.send(Err(
                crate::daemon::core::login::cancel::cancelled_by_logout(&typed),
            ));
            return;
        }
        let (target, action) = match placement {
            Ok(Placement::Create) => (typed.clone(), LoginAction::Created),
            Ok(Placement::Update) => (typed.clone(), LoginAction::Updated),
            Ok(Placement::UpdateAccountSlot(slot)) => (slot, LoginAction::UpdatedAccountSlot),
            Err(refusal) => {
                tracing::warn!(slot = typed, "login refused: {refusal}");
                // Never stored, so nothing falls back on it: revoke at once.
                self.revoke_unheld(
                    &typed,
                    &provider,
                    success.tokens.refresh_token,
                    "a refused login",
                );
                let _ = reply.send(Err(ErrorReply::new(
                    ErrorCode::AccountMismatch,
                    format!("{refusal}. Nothing was changed; the new login's grant is revoked"),
                )));
                return;
            }
        };
        let placed = Placed {
            target,
            typed,
            action,
            provider,
            key,
        };
        if claude_code.is_some() || self.claude_code_dir_of(&placed.target).is_some() {
            self.login_to_claude_code(placed, success, claude_code, reply);
            return;
        }
        self.install_login(&placed, success, reply);
    }

    /// The Claude Code config dir of slot `name`, when it is a slot in Claude Code's store.
    fn claude_code_dir_of(&self, name: &str) -> Option<std::path::PathBuf> {
        (self.slots.get(name)?.record.claude_code.clone()).or_else(|| self.move_dir_of(name))
    }

    /// Where a login of `key` typed as `typed` goes.
    fn place(
        &self,
        typed: &str,
        provider: &str,
        key: Option<&AccountKey>,
    ) -> Result<Placement, placement::Refusal> {
        let candidates: Vec<Candidate<'_>> = self
            .slots
            .values()
            .map(|slot| Candidate {
                name: &slot.name,
                provider: &slot.record.provider,
                key: slot.record.account_key.as_ref(),
                label: slot.record.account.as_deref(),
            })
            .collect();
        placement::place(typed, provider, key, &candidates)
    }

    /// Puts the login's tokens into its slot (replacing whatever login it held) and starts
    /// journaling them; the login is answered when they are durable.
    fn install_login(&mut self, placed: &Placed, success: LoginSuccess, reply: Reply) {
        let generation = self.allocate_generation();
        let (now, unit) = (self.now, self.rng.f64());
        let old = self.slots.remove(&placed.target);
        let record = login_record(placed, &success, old.as_ref(), generation, now);
        let answer = login_answer(placed, old.as_ref(), &record);
        let mut slot = Slot::from_record(placed.target.clone(), record, now);
        slot.creds = Creds::Present {
            tokens: success.tokens,
            stored: Stored::No {
                condition: WriteCondition::NewLogin { generation },
                attempt: 0,
                retry_at: now,
            },
        };
        schedule_next(&mut slot, self.config.refresh_before_expiry, unit);
        if let Some(old) = old {
            self.take_over(&mut slot, old, answer.account.as_deref());
        }
        tracing::info!(
            slot = placed.target,
            typed = placed.typed,
            generation,
            account = ?answer.account,
            action = ?answer.action,
            reactivated = answer.reactivated,
            "logged in; storing the tokens"
        );
        slot.pending_login = Some(PendingLogin { reply, answer });
        self.jobs.push(JobOrder::Label {
            name: placed.target.clone(),
            label: crate::daemon::start::reconcile::label_of(&slot.record),
        });
        // A login of that name replaces an item found at start that matched no slot.
        self.unplaced.retain(|item| item.name != placed.target);
        self.slots.insert(placed.target.clone(), slot);
        self.persist();
        self.start_login_journal(&placed.target);
    }

    /// `slot` replaces `old` (same name): callers waiting on the old login move over, a
    /// logout queued against it and a login still being stored are told they were
    /// overtaken, and the old login's refresh token is retired.
    fn take_over(&mut self, slot: &mut Slot, mut old: Slot, account: Option<&str>) {
        let name = slot.name.clone();
        // Callers waiting on the old login get the new one's token.
        slot.waiters.append(&mut old.waiters);
        for logout in old.logouts.drain(..) {
            let _ = logout.reply.send(Err(ErrorReply::new(
                ErrorCode::Conflict,
                format!("slot {name} was logged in again before the logout ran"),
            )));
        }
        if let Some(overtaken) = old.pending_login.take() {
            let account = account.unwrap_or("this account");
            tracing::warn!(
                slot = name,
                "a login was overtaken by a newer login of the same account before it was stored"
            );
            let _ = overtaken.reply.send(Err(ErrorReply::new(
                ErrorCode::Conflict,
                format!(
                    "a newer login of {account} finished right after this one and replaced it in slot {name}; this login's tokens were discarded and are being revoked"
                ),
            )));
        }
        // Same account: its quota is still its quota.
        slot.quota = std::mem::take(&mut old.quota);
        slot.superseded.append(&mut old.superseded);
        let old_refresh_token = old.creds.tokens().map(|t| t.refresh_token.clone());
        match old.job {
            // The job's result (maybe a rotated token) decides what to revoke.
            Some(Job::Refreshing | Job::Loading) => {
                self.replaced_jobs.insert(
                    (name, old.record.generation),
                    ReplacedJob {
                        provider: old.record.provider,
                        refresh_token: old_refresh_token,
                    },
                );
            }
            Some(Job::Writing | Job::Moving) | None => slot.superseded.extend(old_refresh_token),
        }
    }
}

/// The record of slot `placed.target` after the login: active, this generation, the
/// account's key (with what it lacks taken from the slot's old key).
fn login_record(
    placed: &Placed,
    success: &LoginSuccess,
    old: Option<&Slot>,
    generation: u64,
    now: DateTime<Utc>,
) -> SlotRecord {
    let old = old.map(|o| &o.record);
    let account_key = match (&placed.key, old.and_then(|r| r.account_key.as_ref())) {
        (Some(key), Some(older)) => Some(key.clone().merged_with(older)),
        (key, _) => key.clone(),
    };
    // The e-mail as the provider spells it; else what the slot showed; else the subject.
    let account = (success.identity.email.clone())
        .or_else(|| old.and_then(|r| r.account.clone()))
        .or_else(|| success.identity.subject.clone());
    SlotRecord {
        provider: placed.provider.clone(),
        account,
        account_key,
        state: SlotState::Active,
        reason: None,
        generation,
        created_at: old.map_or(now, |r| r.created_at),
        last_refresh_at: Some(now),
        last_refresh_error: None,
        refreshes: 0,
        // Kept from the login this one replaces: its item is this slot's fallback until
        // the new tokens are stored (`super::super::results::never_held`).
        newest_written: old.and_then(|r| r.newest_written),
        claude_code: None,
    }
}

/// What the login will answer once its tokens are stored.
fn login_answer(placed: &Placed, old: Option<&Slot>, record: &SlotRecord) -> LoginReply {
    // A login overtaken before it was stored never happened as far as the user is
    // concerned: what it would have done (create, reactivate) is this login's doing.
    let overtaken = old
        .and_then(|o| o.pending_login.as_ref())
        .map(|p| &p.answer);
    let created = old.is_none() || overtaken.is_some_and(|a| a.created);
    let action = match placed.action {
        LoginAction::Updated if created => LoginAction::Created,
        action => action,
    };
    let reactivated = old.is_some_and(|o| o.record.state == SlotState::Inactive)
        || overtaken.is_some_and(|a| a.reactivated);
    LoginReply {
        name: placed.target.clone(),
        account: record.account.clone(),
        created,
        warning: record
            .account_key
            .is_none()
            .then(|| NO_ACCOUNT_WARNING.to_owned()),
        action: Some(action),
        requested_name: (placed.typed != placed.target).then(|| placed.typed.clone()),
        reactivated,
        claude_code_dir: record.claude_code.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Identity;
    use crate::secret::Secret;
    use crate::store::Tokens;

    fn placed(target: &str, typed: &str, action: LoginAction, key: Option<AccountKey>) -> Placed {
        Placed {
            target: target.into(),
            typed: typed.into(),
            action,
            provider: "p".into(),
            key,
        }
    }

    fn success(email: Option<&str>, subject: Option<&str>) -> LoginSuccess {
        LoginSuccess {
            tokens: Tokens {
                access_token: Secret::new("a"),
                refresh_token: Secret::new("r"),
                expires_at: None,
                obtained_at: Utc::now(),
                scopes: Vec::new(),
            },
            identity: Identity {
                email: email.map(str::to_owned),
                subject: subject.map(str::to_owned),
            },
        }
    }

    fn key(email: Option<&str>, subject: Option<&str>) -> Option<AccountKey> {
        AccountKey::new("p", &success(email, subject).identity)
    }

    fn old_slot(state: SlotState) -> Slot {
        let now = Utc::now();
        let record = login_record(
            &placed(
                "work",
                "work",
                LoginAction::Created,
                key(Some("A@x"), Some("u1")),
            ),
            &success(Some("A@x"), Some("u1")),
            None,
            1,
            now,
        );
        let mut slot = Slot::from_record("work".into(), record, now);
        slot.record.state = state;
        slot
    }

    #[test]
    fn a_login_naming_only_the_subject_keeps_the_slots_email() {
        let old = old_slot(SlotState::Active);
        let login = placed(
            "work",
            "x",
            LoginAction::UpdatedAccountSlot,
            key(None, Some("u1")),
        );
        let record = login_record(
            &login,
            &success(None, Some("u1")),
            Some(&old),
            2,
            Utc::now(),
        );
        assert_eq!(record.account.as_deref(), Some("A@x"));
        let key = record.account_key.unwrap();
        assert_eq!(
            (key.email.as_deref(), key.subject.as_deref()),
            (Some("a@x"), Some("u1"))
        );
        assert_eq!(record.created_at, old.record.created_at);
        assert_eq!(record.generation, 2);
    }

    #[test]
    fn a_login_into_an_inactive_slot_says_it_reactivated_it() {
        let old = old_slot(SlotState::Inactive);
        let login = placed(
            "work",
            "personal",
            LoginAction::UpdatedAccountSlot,
            key(Some("a@x"), None),
        );
        let record = login_record(
            &login,
            &success(Some("a@x"), None),
            Some(&old),
            2,
            Utc::now(),
        );
        assert_eq!(record.state, SlotState::Active);
        assert_eq!(record.reason, None);
        let answer = login_answer(&login, Some(&old), &record);
        assert!(answer.reactivated && !answer.created);
        assert_eq!(answer.requested_name.as_deref(), Some("personal"));
        assert_eq!(answer.action, Some(LoginAction::UpdatedAccountSlot));
    }

    #[test]
    fn overtaking_a_login_that_was_creating_the_slot_is_a_creation() {
        let mut old = old_slot(SlotState::Active);
        let (reply, _rx) = tokio::sync::oneshot::channel();
        let login = placed("work", "work", LoginAction::Updated, key(Some("a@x"), None));
        let record = login_record(
            &login,
            &success(Some("a@x"), None),
            Some(&old),
            2,
            Utc::now(),
        );
        old.pending_login = Some(PendingLogin {
            reply,
            answer: login_answer(&login, None, &record),
        });
        let answer = login_answer(&login, Some(&old), &record);
        assert!(answer.created);
        assert_eq!(answer.action, Some(LoginAction::Created));
    }

    #[test]
    fn a_login_the_provider_named_no_account_for_warns() {
        let login = placed("work", "work", LoginAction::Created, None);
        let record = login_record(&login, &success(None, None), None, 1, Utc::now());
        assert_eq!(record.account, None);
        let answer = login_answer(&login, None, &record);
        assert!(answer.warning.unwrap().contains("named no account"));
    }
}
