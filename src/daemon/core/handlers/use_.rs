//! `use NAME --claude-code DIR`: checks the request and records the move
//! (`crate::daemon::core::moving`), whose job starts once the record is on disk. Refuses,
//! with the fix, what cannot be moved: an unknown or inactive slot, a slot kept in another
//! Claude Code store, a provider Claude Code does not use, tokens not stored yet, another
//! move under way. A slot already in DIR is answered at once (nothing to do).

use std::path::Path;

use crate::protocol::{ErrorCode, ErrorReply, Response, UseReply, UseRequest};
use crate::state::{PendingMove, SlotState};

use crate::daemon::core::moving::Move;
use crate::daemon::core::slot::{Creds, Slot, Stored};
use crate::daemon::core::{Manager, Reply};

use super::unknown_slot;

/// The built-in provider of Claude accounts.
const CLAUDE_PROVIDER: &str = "claude";

impl Manager {
    pub(in crate::daemon) fn handle_use(&mut self, request: UseRequest, reply: Reply) {
        let UseRequest { name, claude_code } = request;
        let Some(slot) = self.slots.get(&name) else {
            let _ = reply.send(Err(unknown_slot(&name)));
            return;
        };
        if slot.record.claude_code.as_deref() == Some(claude_code.as_path()) {
            let answer = UseReply {
                name,
                claude_code_dir: claude_code,
                previous: None,
                already: true,
            };
            let _ = reply.send(Ok(Response::Use(answer)));
            return;
        }
        if let Err(refusal) = self.movable(slot, &claude_code) {
            let _ = reply.send(Err(refusal));
            return;
        }
        let outgoing = (self.slots.values())
            .find(|s| s.record.claude_code.as_deref() == Some(claude_code.as_path()))
            .map(|s| s.name.clone());
        let from_generation = slot.record.generation;
        let plan = PendingMove {
            slot: name,
            dir: claude_code,
            outgoing,
            from_generation,
            generation: self.allocate_generation(),
            outgoing_generation: self.allocate_generation(),
        };
        tracing::info!(
            slot = plan.slot,
            previous = ?plan.outgoing,
            dir = %plan.dir.display(),
            "`use`: moving the slot's login into Claude Code's store"
        );
        self.persist();
        self.moving = Some(Move {
            plan,
            reply: Some(reply),
            after_state: self.state_number,
            started: false,
            resumed: false,
            attempt: 0,
            retry_at: self.now,
        });
    }

    /// Why `slot`'s login cannot move into the Claude Code store in `dir`, if it cannot.
    fn movable(&self, slot: &Slot, dir: &Path) -> Result<(), ErrorReply> {
        let name = &slot.name;
        let refuse = |code, message: String| Err(ErrorReply::new(code, message));
        if let Some(m) = &self.moving {
            return refuse(
                ErrorCode::Conflict,
                format!(
                    "another `use` is under way (slot {} into {}); try again when it is done",
                    m.plan.slot,
                    m.plan.dir.display()
                ),
            );
        }
        if let Some(own) = &slot.record.claude_code {
            return refuse(
                ErrorCode::Conflict,
                format!(
                    "slot {name} lives in Claude Code's store in {}; start Claude Code there with `sessctl run {name} -- claude`",
                    own.display()
                ),
            );
        }
        let provider = &slot.record.provider;
        let claude_like = provider == CLAUDE_PROVIDER
            || (self.slots.values())
                .any(|s| s.record.claude_code.is_some() && &s.record.provider == provider);
        if !claude_like {
            return refuse(
                ErrorCode::Conflict,
                format!(
                    "slot {name} is a {provider} account; Claude Code's store holds Claude accounts only"
                ),
            );
        }
        if slot.record.state == SlotState::Inactive {
            return refuse(
                ErrorCode::SlotInactive,
                format!(
                    "slot {name} needs a new login before it can be used: {}",
                    slot.login_command(&self.config)
                ),
            );
        }
        match &slot.creds {
            Creds::Present {
                stored: Stored::Yes { .. },
                ..
            } if slot.restoring.is_none() => Ok(()),
            Creds::Missing => refuse(
                ErrorCode::SlotInactive,
                format!(
                    "slot {name} has no stored credentials; log in first: {}",
                    slot.login_command(&self.config)
                ),
            ),
            _ => refuse(
                ErrorCode::StoreUnavailable,
                format!(
                    "slot {name}'s newest tokens are not in sessctl's store yet (is the keychain reachable?); nothing was moved to {}, try again",
                    dir.display()
                ),
            ),
        }
    }
}
