//! `adopt NAME --claude-code DIR`: a slot whose credentials stay in Claude Code's store for
//! DIR. The request is checked here, the store is read by a job
//! (`crate::daemon::jobs::claude_code`), and the slot is made when it reports back,
//! answered once the state file has it. Nothing is written to sessctl's own store.

use crate::account::AccountKey;
use crate::protocol::{AdoptRequest, ErrorCode, ErrorReply, LoginAction, LoginReply, Response};
use crate::slot_name;
use crate::state::{ItemVersion, SlotRecord, SlotState};

use crate::daemon::core::orders::JobOrder;
use crate::daemon::core::reports::Adoption;
use crate::daemon::core::results::schedule_next;
use crate::daemon::core::slot::{Creds, Slot, Stored};
use crate::daemon::core::{Manager, Reply};

impl Manager {
    pub(in crate::daemon) fn handle_adopt(&mut self, adopt: AdoptRequest, reply: Reply) {
        if let Err(message) = slot_name::validate(&adopt.name) {
            let _ = reply.send(Err(ErrorReply::new(ErrorCode::InvalidName, message)));
            return;
        }
        let Some(provider) = self.config.providers.get(&adopt.provider).cloned() else {
            let _ = reply.send(Err(ErrorReply::new(
                ErrorCode::UnknownProvider,
                format!(
                    "no provider named {:?} in the configuration",
                    adopt.provider
                ),
            )));
            return;
        };
        if let Err(refusal) = self.adoptable(&adopt.name, &adopt.claude_code, None) {
            let _ = reply.send(Err(refusal));
            return;
        }
        self.jobs.push(JobOrder::Adopt(Box::new(Adoption {
            name: adopt.name,
            provider: Some(provider),
            dir: adopt.claude_code,
            reply,
            found: None,
        })));
    }

    /// Why slot `name` cannot be made for the store of `dir` (holding `key`'s account):
    /// the name is taken, the dir already has a slot, or the account has one.
    fn adoptable(
        &self,
        name: &str,
        dir: &std::path::Path,
        key: Option<&AccountKey>,
    ) -> Result<(), ErrorReply> {
        let conflict = |message: String| Err(ErrorReply::new(ErrorCode::Conflict, message));
        if self.slots.contains_key(name) {
            return conflict(format!(
                "slot {name} already exists; choose another name (or `sessctl logout {name}` first)"
            ));
        }
        for slot in self.slots.values() {
            if slot.record.claude_code.as_deref() == Some(dir) {
                return conflict(format!(
                    "the Claude Code store in {} is already slot {}",
                    dir.display(),
                    slot.name
                ));
            }
            if let (Some(key), Some(theirs)) = (key, slot.record.account_key.as_ref())
                && key.matches(theirs) != crate::account::Match::None
            {
                let account = slot.record.account.as_deref().unwrap_or("this account");
                return conflict(format!(
                    "{account} already has slot {}: one login per account; log that slot out first to adopt this store",
                    slot.name
                ));
            }
        }
        Ok(())
    }

    /// The adopt job read the store: make the slot (checked again: the slots may have
    /// changed meanwhile), or say why not.
    pub(in crate::daemon) fn on_adopted(&mut self, adoption: Adoption) {
        let Adoption {
            name,
            provider,
            dir,
            reply,
            found,
        } = adoption;
        let (tokens, identity) = match found {
            Some(Ok(found)) => found,
            Some(Err(error)) => {
                let _ = reply.send(Err(error));
                return;
            }
            None => return,
        };
        let provider = provider.map(|p| p.name).unwrap_or_default();
        let key = AccountKey::new(&provider, &identity);
        if let Err(refusal) = self.adoptable(&name, &dir, key.as_ref()) {
            let _ = reply.send(Err(refusal));
            return;
        }
        let generation = self.allocate_generation();
        let (now, unit) = (self.now, self.rng.f64());
        let account = identity.email.clone().or(identity.subject.clone());
        let record = SlotRecord {
            provider,
            account: account.clone(),
            account_key: key,
            state: SlotState::Active,
            reason: None,
            generation,
            created_at: now,
            last_refresh_at: None,
            last_refresh_error: None,
            refreshes: 0,
            newest_written: Some(ItemVersion {
                generation,
                version: 1,
            }),
            claude_code: Some(dir),
        };
        let mut slot = Slot::from_record(name.clone(), record, now);
        slot.creds = Creds::Present {
            tokens,
            stored: Stored::Yes {
                generation,
                version: 1,
            },
        };
        schedule_next(&mut slot, self.config.refresh_before_expiry, unit);
        tracing::info!(slot = name, account = ?account, "adopted a Claude Code store");
        self.slots.insert(name.clone(), slot);
        self.persist();
        let answer = LoginReply {
            name,
            account,
            created: true,
            warning: None,
            action: Some(LoginAction::Created),
            requested_name: None,
            reactivated: false,
            claude_code_dir: None,
        };
        self.reply_when_durable(reply, Ok(Response::Login(answer)));
    }
}
