//! `sessctl shutdown`: answers, then the runner stops the daemon gracefully
//! (`super::super::stop`).

use crate::protocol::Response;

use super::super::{Flow, Manager, Reply};

impl Manager {
    pub(in crate::daemon) fn handle_shutdown(&mut self, reply: Reply) -> Flow {
        tracing::info!("shutdown requested");
        let _ = reply.send(Ok(Response::ShuttingDown));
        Flow::Stop
    }
}
