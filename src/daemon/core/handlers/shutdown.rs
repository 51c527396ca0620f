//! `sessctl shutdown`: answers, then the runner stops the daemon gracefully
//! (`super::super::stop`).

use crate::protocol::Response;

use super::super::{Flow, Reply};

/// Answers, and tells the runner to stop.
pub(super) fn handle_shutdown(reply: Reply) -> Flow {
    tracing::info!("shutdown requested");
    let _ = reply.send(Ok(Response::ShuttingDown));
    Flow::Stop
}
