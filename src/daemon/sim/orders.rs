//! From the core's job orders to the simulator's jobs (`super::exec`): each order the
//! simulator runs becomes a [`Job`] at its first effect, holding the drain guard the real
//! job would hold.

use crate::daemon::core::drain::DrainGate;
use crate::daemon::core::orders::JobOrder;
use crate::daemon::core::reports::stopping;

use super::exec::{Job, Running};

/// The job of `order`, or `None` for orders with no result (a label) and for the
/// interactive logins, which the simulator does not drive (their replies just drop).
#[allow(
    clippy::too_many_lines,
    reason = "one arm per order, each only moving fields across: the table reads best whole"
)]
pub fn job_of(order: JobOrder, drain: &DrainGate) -> Option<Running> {
    let (job, guard) = match order {
        // Claude Code-backed slots are not simulated: the store model is sessctl's own.
        JobOrder::Load {
            name, generation, ..
        } => (Job::Load { name, generation }, None),
        JobOrder::Refresh {
            name,
            generation,
            current,
            condition,
            ..
        } => {
            let job = Job::Refresh {
                name,
                generation,
                current,
                condition,
            };
            (job, None)
        }
        JobOrder::Write {
            name,
            generation,
            tokens,
            condition,
            ..
        } => {
            let job = Job::Write {
                name,
                generation,
                tokens,
                condition,
            };
            (job, None)
        }
        JobOrder::JournalLogin {
            name,
            generation,
            tokens,
        } => {
            let job = Job::JournalLogin {
                name,
                generation,
                tokens,
            };
            (job, None)
        }
        JobOrder::Restore {
            name,
            generation,
            item,
        } => (
            Job::Restore {
                name,
                generation,
                item,
            },
            None,
        ),
        JobOrder::Login {
            name,
            ticket,
            provider,
            refresh_token,
            reply,
        } => {
            if drain.is_closed() {
                let _ = reply.send(Err(stopping()));
                return None;
            }
            let job = Job::Login {
                name,
                ticket,
                provider: provider.name.clone(),
                scopes: provider.scopes.clone(),
                refresh_token,
                reply,
            };
            (job, None)
        }
        JobOrder::Logout {
            name,
            generation,
            tokens,
            reply,
            cancelled,
            provider,
            claude_code: _,
        } => {
            // Without a provider there is nothing to revoke with (`revoke_jobs::logout`).
            let token = provider.and(tokens.map(|t| t.refresh_token));
            let job = Job::Logout {
                name,
                generation,
                token,
                reply,
                cancelled,
            };
            (job, Some(drain.track()))
        }
        JobOrder::Revoke {
            slot,
            provider,
            token,
            why,
        } => {
            let provider = provider.name.clone();
            let job = Job::Revoke {
                slot,
                provider,
                token,
                why,
            };
            (job, Some(drain.track()))
        }
        JobOrder::Usage { .. }
        | JobOrder::Adopt(_)
        | JobOrder::ClaudeCodeLogin(_)
        | JobOrder::ProbeClaudeCode(_)
        | JobOrder::Move(_)
        | JobOrder::RetryRevocation { .. }
        | JobOrder::Label { .. }
        | JobOrder::CodeLogin { .. }
        | JobOrder::DeviceLogin { .. }
        | JobOrder::AwaitDevice { .. } => return None,
    };
    Some(Running { job, guard })
}
