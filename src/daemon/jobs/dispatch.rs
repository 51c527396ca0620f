//! Starts the jobs the core ordered: each [`JobOrder`] becomes the job of the same name on
//! the [`JobContext`].

use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::protocol::{ErrorCode, ErrorReply, Response};

use crate::daemon::core::Reply;
use crate::daemon::core::login::flows::DeviceResult;
use crate::daemon::core::orders::JobOrder;

use super::JobContext;

impl JobContext {
    /// Starts the job `order` asks for.
    pub fn start(&self, order: JobOrder) {
        let ctx = self;
        match order {
            JobOrder::Load {
                name,
                generation,
                claude_code: Some(dir),
            } => ctx.load_claude_code(name, generation, dir),
            JobOrder::Load {
                name, generation, ..
            } => ctx.load(name, generation),
            JobOrder::Refresh {
                name,
                generation,
                provider,
                current,
                urgency,
                claude_code: Some(dir),
                ..
            } => ctx.refresh_claude_code((name, generation), provider, current, (urgency, dir)),
            JobOrder::Refresh {
                name,
                generation,
                provider,
                current,
                condition,
                urgency,
                claude_code: None,
            } => ctx.refresh((name, generation), provider, current, condition, urgency),
            JobOrder::Write {
                name,
                generation,
                tokens,
                claude_code: Some(dir),
                ..
            } => ctx.write_claude_code(name, generation, tokens, dir),
            JobOrder::Write {
                name,
                generation,
                tokens,
                condition,
                claude_code: None,
            } => ctx.write(name, generation, tokens, condition),
            JobOrder::JournalLogin {
                name,
                generation,
                tokens,
            } => ctx.journal_login(name, generation, tokens),
            JobOrder::Adopt(adoption) => ctx.adopt(*adoption),
            JobOrder::ClaudeCodeLogin(login) => ctx.claude_code_login(login),
            JobOrder::ProbeClaudeCode(probe) => ctx.probe_claude_code(probe),
            JobOrder::Move(order) => ctx.move_claude_code(*order),
            logins @ (JobOrder::Login { .. }
            | JobOrder::CodeLogin { .. }
            | JobOrder::DeviceLogin { .. }
            | JobOrder::AwaitDevice { .. }) => ctx.start_login(logins),
            JobOrder::Usage {
                name,
                generation,
                provider,
                access_token,
            } => ctx.usage(name, generation, provider, access_token),
            JobOrder::Restore {
                name,
                generation,
                item,
            } => ctx.restore(name, generation, item),
            JobOrder::Label { name, label } => ctx.store.label(&name, label),
            JobOrder::Revoke {
                slot,
                provider,
                token,
                why,
            } => ctx.revoke(slot, provider, token, why),
            JobOrder::Logout {
                name,
                generation,
                provider,
                tokens,
                claude_code,
                reply,
                cancelled,
            } => {
                let reply = counting_cancelled(reply, cancelled);
                ctx.logout(name, generation, provider, tokens, claude_code, reply);
            }
            JobOrder::RetryRevocation { id, slot, provider } => {
                ctx.retry_revocation(id, slot, provider);
            }
        }
    }
}

impl JobContext {
    /// Starts a login job (the orders [`JobContext::start`] hands on).
    fn start_login(&self, order: JobOrder) {
        match order {
            JobOrder::Login {
                name,
                ticket,
                provider,
                refresh_token,
                reply,
            } => self.login((name, ticket), provider, refresh_token, reply),
            JobOrder::CodeLogin { login, reply } => self.code_login(login, reply),
            JobOrder::DeviceLogin {
                login,
                begun,
                done,
                cancelled,
            } => self.device_login(login, begun, done, cancelled),
            JobOrder::AwaitDevice {
                result,
                slice,
                reply,
            } => {
                tokio::spawn(await_device(result, slice, reply));
            }
            other => tracing::error!(order = ?std::mem::discriminant(&other), "not a login order"),
        }
    }
}

/// Waits up to `slice` for a device login's outcome and answers with it (or with
/// `login_pending`).
async fn await_device(mut result: watch::Receiver<DeviceResult>, slice: Duration, reply: Reply) {
    let outcome = match tokio::time::timeout(slice, result.wait_for(Option::is_some)).await {
        Ok(Ok(done)) => done.clone().unwrap_or(Ok(Response::LoginPending)),
        Ok(Err(_)) => Err(ErrorReply::new(
            ErrorCode::LoginFailed,
            "the login ended without a result (cancelled, or the daemon is stopping)",
        )),
        Err(_) => Ok(Response::LoginPending),
    };
    let _ = reply.send(outcome);
}

/// A reply channel for the logout job whose answer goes on to `reply` saying that
/// `cancelled` pending logins were cancelled too.
fn counting_cancelled(reply: Reply, cancelled: usize) -> Reply {
    if cancelled == 0 {
        return reply;
    }
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let Ok(mut answer) = rx.await else {
            return;
        };
        if let Ok(Response::Logout(logout)) = &mut answer {
            logout.cancelled_logins = u32::try_from(cancelled).unwrap_or(u32::MAX);
        }
        let _ = reply.send(answer);
    });
    tx
}
