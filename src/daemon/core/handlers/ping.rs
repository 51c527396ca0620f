//! `sessctl ping`: the daemon's version, protocol and pid.

use crate::protocol::{PROTOCOL_VERSION, Pong, Response};

use super::super::{Manager, Reply};

impl Manager {
    pub(in crate::daemon) fn handle_ping(&mut self, reply: Reply) {
        let _ = reply.send(Ok(Response::Pong(Pong {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: PROTOCOL_VERSION,
            pid: std::process::id(),
        })));
    }
}
