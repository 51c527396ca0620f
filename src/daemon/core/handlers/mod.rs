//! The manager's handlers, one file per request, named like the CLI verb that sends it
//! (`cli/<verb>.rs` → `<verb>.rs` here): each answers at once or parks the caller on the
//! slot's job (`super::waiters`), so the manager never waits for anyone. This file
//! dispatches a command to its handler.

mod adopt;
mod login;
mod logout;
mod ping;
mod refresh;
mod shutdown;
mod status;
mod token;
mod use_;

use crate::protocol::{ErrorCode, ErrorReply, Request};

use super::{Command, Flow, Manager};

impl Manager {
    /// Hands one command to its handler (the clocks are already taken).
    pub(in crate::daemon) fn handle_now(&mut self, command: Command) -> Flow {
        let Command { request, reply } = command;
        if let Some(refusal) = self.store_probe.refuses(&request) {
            let _ = reply.send(Err(refusal));
            return Flow::Continue;
        }
        match request {
            Request::Ping => ping::handle_ping(reply),
            Request::Status => self.handle_status(reply),
            Request::Token(slot) => self.handle_token(&slot.name, reply),
            Request::Refresh(target) => self.handle_refresh(target.name, reply),
            Request::Login(login) => self.handle_login(login, reply),
            Request::LoginBegin(begin) => self.handle_login_begin(&begin, reply),
            Request::LoginComplete(complete) => self.handle_login_complete(complete, reply),
            Request::LoginWait(flow) => self.handle_login_wait(&flow.flow_id, reply),
            Request::LoginCancel(flow) => self.handle_login_cancel(&flow.flow_id, reply),
            Request::Logout(slot) => self.handle_logout(slot.name, reply),
            Request::Shutdown => return shutdown::handle_shutdown(reply),
            Request::Adopt(adopt) => self.handle_adopt(adopt, reply),
            Request::Use(request) => self.handle_use(request, reply),
        }
        Flow::Continue
    }
}

/// The error for a slot name that names no slot.
fn unknown_slot(name: &str) -> ErrorReply {
    ErrorReply::new(ErrorCode::UnknownSlot, format!("no slot named {name:?}"))
}
