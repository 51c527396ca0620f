//! A login is answered once its tokens are durable, as a refresh's are: appended to the
//! write-ahead journal (one fsync, `crate::journal`) and its slot in the state file. The
//! keychain write follows, retried like a refresh's; a `kill -9` after the answer loses
//! nothing, because the next start replays the journal into the store before any slot is
//! loaded (`crate::daemon::start::journal`).
//!
//! Without a journal (`credential_store: file`, or a keychain that did not hand out the
//! journal's key at start) or when the append fails, nothing durable holds the tokens until
//! the store write settles: the login is answered then, as before the journal.
//!
//! Once journaled, the tokens of the login they replace are retired (`super::super::retire`).
//! A store write that ends after the answer is not the login's to report: an unreachable
//! store degrades the slot (the tokens are journaled and retried); a store that holds a
//! newer login (another process's) wins, and this login's grant is revoked, loudly.

use crate::protocol::{ErrorCode, ErrorReply, Response};
use crate::slot_reason::SlotReason;
use crate::state::SlotState;

use super::LoginWrite;
use crate::daemon::core::Manager;
use crate::daemon::core::orders::JobOrder;
use crate::daemon::core::slot::{Job, PendingLogin};

impl Manager {
    /// Starts journaling slot `name`'s new login; the store write starts once that ended.
    pub(super) fn start_login_journal(&mut self, name: &str) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let Some(tokens) = slot.creds.tokens() else {
            return;
        };
        // The slot's single flight: nothing else runs for it until the store write ends.
        slot.job = Some(Job::Writing);
        self.jobs.push(JobOrder::JournalLogin {
            name: name.to_owned(),
            generation: slot.record.generation,
            tokens: tokens.clone(),
        });
    }

    /// The journal append of login `generation` of slot `name` ended: answers the login if
    /// its tokens are journaled, then starts their store write. A newer login or a logout
    /// may have replaced the slot meanwhile: then that one's own write is running.
    pub(in crate::daemon) fn on_login_journaled(
        &mut self,
        name: &str,
        generation: u64,
        journaled: bool,
    ) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        if slot.record.generation != generation {
            tracing::info!(
                slot = name,
                generation,
                "dropping a login's journal append of an older login"
            );
            return;
        }
        if journaled {
            slot.login_journaled = true;
            if let Some(PendingLogin { reply, answer }) = slot.pending_login.take() {
                tracing::info!(
                    slot = name,
                    "login durable in the journal; the keychain write follows"
                );
                // Answered once the state file holds the slot (saved since `install_login`).
                self.reply_when_durable(reply, Ok(Response::Login(answer)));
            }
            self.revoke_superseded(name);
        }
        self.start_login_write(name);
    }

    /// Starts the first write of a login's tokens.
    fn start_login_write(&mut self, name: &str) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let (Some(tokens), Some(condition)) = (slot.creds.tokens(), slot.creds.write_condition())
        else {
            slot.job = None;
            return;
        };
        slot.job = Some(Job::Writing);
        self.jobs.write(
            name.to_owned(),
            slot.record.generation,
            tokens.clone(),
            (condition, slot.record.claude_code.clone()),
        );
    }

    /// A store write of slot `name` ended with no login waiting on it: the login was
    /// answered once journaled (or cancelled by a logout), or this is a retry.
    fn after_answer(&mut self, name: &str, write: LoginWrite) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        if !slot.login_journaled {
            return;
        }
        match write {
            LoginWrite::Stored | LoginWrite::Pending => {}
            // As a refresh whose tokens the store did not take: journaled, held, retried.
            LoginWrite::Unavailable(error) => {
                if slot.record.state == SlotState::Active {
                    slot.transition(
                        SlotState::Degraded,
                        Some(SlotReason::CredentialStoreUnavailable),
                        Some(error),
                    );
                }
            }
            LoginWrite::Refused { error, dropped } => {
                tracing::error!(
                    slot = name,
                    "the login answered earlier was not stored: {error}; the slot uses the newer login the store holds{}",
                    if dropped.is_some() {
                        ", and this login's grant is revoked"
                    } else {
                        ""
                    }
                );
                slot.record.last_refresh_error = Some(format!(
                    "a login was replaced in the credential store by a newer one: {error}"
                ));
                if let Some(token) = dropped {
                    let provider = slot.record.provider.clone();
                    self.revoke_unheld(
                        name,
                        &provider,
                        token,
                        "a login a newer stored login overtook",
                    );
                }
            }
        }
    }
    /// Answers the login waiting for slot `name`'s tokens to be stored, if one is (a login
    /// answered once journaled hears nothing more: `journaled::after_answer`).
    pub(in crate::daemon) fn settle_pending_login(&mut self, name: &str, write: LoginWrite) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let Some(PendingLogin { reply, mut answer }) = slot.pending_login.take() else {
            self.after_answer(name, write);
            return;
        };
        if let LoginWrite::Refused {
            dropped: Some(token),
            ..
        } = &write
        {
            let provider = slot.record.provider.clone();
            let token = token.clone();
            self.revoke_unheld(
                name,
                &provider,
                token,
                "a login a newer stored login overtook",
            );
        }
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let result = match write {
            LoginWrite::Stored => Ok(answer),
            LoginWrite::Unavailable(error) => {
                slot.transition(
                    SlotState::Degraded,
                    Some(SlotReason::CredentialStoreUnavailable),
                    Some(error.clone()),
                );
                let held = format!(
                    "logged in, but the tokens could not be stored yet ({error}); the daemon holds them in memory and keeps retrying"
                );
                answer.warning = Some(match answer.warning.take() {
                    Some(earlier) => format!("{held}; {earlier}"),
                    None => held,
                });
                Ok(answer)
            }
            LoginWrite::Refused { error, dropped } => Err(ErrorReply::new(
                ErrorCode::Conflict,
                format!(
                    "the login of slot {name} was not stored: {error}{}",
                    if dropped.is_some() {
                        "; its grant is revoked"
                    } else {
                        ""
                    }
                ),
            )),
            LoginWrite::Pending => {
                slot.pending_login = Some(PendingLogin { reply, answer });
                return;
            }
        };
        self.persist();
        // The slot exists once the state file says so: a crash right after the reply must
        // not forget it.
        self.reply_when_durable(reply, result.map(Response::Login));
    }
}
