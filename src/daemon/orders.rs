//! The I/O the core asks for, as values. The manager never starts a task, sends a request
//! or touches the store: it queues a [`JobOrder`] in its [`JobOrders`], and the runner
//! (`super::runner`) takes them after each event and starts them on a [`JobContext`]
//! ([`JobOrder::start`]). A simulator takes them instead and answers them from models.
//!
//! Each order mirrors one job of `super::jobs`, `super::login_jobs` or
//! `super::revoke_jobs`, with the same arguments; what the job reports comes back to the
//! manager as a [`super::jobs::JobResult`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::config::Provider;
use crate::journal::Journal;
use crate::protocol::{ErrorCode, ErrorReply, Response};
use crate::secret::Secret;
use crate::store::{ItemLabel, Tokens, WriteCondition};

use super::drain::DrainGate;
use super::flows::DeviceResult;
use super::jobs::JobContext;
use super::limiter::Urgency;
use super::login_jobs::{CodeLogin, DeviceLogin};
use super::manager::Reply;

/// One piece of I/O to start.
pub enum JobOrder {
    /// Read a slot's item from the store.
    Load { name: String, generation: u64 },
    /// Redeem `current`'s refresh token once, store the result under `condition`.
    Refresh {
        name: String,
        generation: u64,
        provider: Provider,
        current: Tokens,
        condition: WriteCondition,
        urgency: Urgency,
    },
    /// Write tokens the store could not take earlier (or a login's first write).
    Write {
        name: String,
        generation: u64,
        tokens: Tokens,
        condition: WriteCondition,
    },
    /// Fetch a slot's usage with its access token.
    Usage {
        name: String,
        generation: u64,
        provider: Provider,
        access_token: Secret,
    },
    /// Set the provider/account label of a slot's item (no reply).
    Label { name: String, label: ItemLabel },
    /// A refresh-token login: redeem the token and learn the account.
    Login {
        name: String,
        ticket: u64,
        provider: Provider,
        refresh_token: Secret,
        reply: Reply,
    },
    /// Exchange a browser or pasted code, then finish the login.
    CodeLogin { login: CodeLogin, reply: Reply },
    /// A device login from its authorization request to the end of its polling.
    DeviceLogin {
        login: DeviceLogin,
        begun: Reply,
        done: watch::Sender<DeviceResult>,
        cancelled: oneshot::Receiver<ErrorReply>,
    },
    /// Answer a `login_wait` with the device login's outcome once it has one, or with
    /// `login_pending` after `slice`.
    AwaitDevice {
        result: watch::Receiver<DeviceResult>,
        slice: Duration,
        reply: Reply,
    },
    /// Revoke a refresh token nobody holds any more.
    Revoke {
        slot: String,
        provider: Provider,
        token: Secret,
        why: &'static str,
    },
    /// Revoke a slot's refresh token and delete its item; the reply counts `cancelled`
    /// pending logins the logout also cancelled.
    Logout {
        name: String,
        generation: u64,
        provider: Option<Provider>,
        tokens: Option<Tokens>,
        reply: Reply,
        cancelled: usize,
    },
    /// Try a kept revocation again.
    RetryRevocation {
        id: String,
        slot: String,
        provider: Option<Provider>,
    },
}

/// The orders queued during one event, plus what the core reads of the jobs' shared
/// state: the drain gate (is the daemon stopping, how many requests are out) and the
/// journal (which slots' newest tokens it holds).
pub struct JobOrders {
    queued: Vec<JobOrder>,
    pub drain: DrainGate,
    pub journal: Option<Arc<Journal>>,
}

impl JobOrders {
    pub fn new(drain: DrainGate, journal: Option<Arc<Journal>>) -> Self {
        JobOrders {
            queued: Vec::new(),
            drain,
            journal,
        }
    }

    /// Every order queued since the last call, oldest first.
    pub fn take(&mut self) -> Vec<JobOrder> {
        std::mem::take(&mut self.queued)
    }

    pub fn push(&mut self, order: JobOrder) {
        self.queued.push(order);
    }

    pub fn load(&mut self, name: String, generation: u64) {
        self.push(JobOrder::Load { name, generation });
    }

    pub fn refresh(
        &mut self,
        (name, generation): (String, u64),
        provider: Provider,
        current: Tokens,
        condition: WriteCondition,
        urgency: Urgency,
    ) {
        self.push(JobOrder::Refresh {
            name,
            generation,
            provider,
            current,
            condition,
            urgency,
        });
    }

    pub fn write(
        &mut self,
        name: String,
        generation: u64,
        tokens: Tokens,
        condition: WriteCondition,
    ) {
        self.push(JobOrder::Write {
            name,
            generation,
            tokens,
            condition,
        });
    }

    pub fn usage(
        &mut self,
        name: String,
        generation: u64,
        provider: Provider,
        access_token: Secret,
    ) {
        self.push(JobOrder::Usage {
            name,
            generation,
            provider,
            access_token,
        });
    }

    pub fn revoke(&mut self, slot: String, provider: Provider, token: Secret, why: &'static str) {
        self.push(JobOrder::Revoke {
            slot,
            provider,
            token,
            why,
        });
    }

    pub fn retry_revocation(&mut self, id: String, slot: String, provider: Option<Provider>) {
        self.push(JobOrder::RetryRevocation { id, slot, provider });
    }
}

impl JobOrder {
    /// Starts the job this order asks for.
    pub fn start(self, ctx: &JobContext) {
        match self {
            JobOrder::Load { name, generation } => ctx.load(name, generation),
            JobOrder::Refresh {
                name,
                generation,
                provider,
                current,
                condition,
                urgency,
            } => ctx.refresh((name, generation), provider, current, condition, urgency),
            JobOrder::Write {
                name,
                generation,
                tokens,
                condition,
            } => ctx.write(name, generation, tokens, condition),
            JobOrder::Usage {
                name,
                generation,
                provider,
                access_token,
            } => ctx.usage(name, generation, provider, access_token),
            JobOrder::Label { name, label } => ctx.store.label(&name, label),
            JobOrder::Login {
                name,
                ticket,
                provider,
                refresh_token,
                reply,
            } => ctx.login((name, ticket), provider, refresh_token, reply),
            JobOrder::CodeLogin { login, reply } => ctx.code_login(login, reply),
            JobOrder::DeviceLogin {
                login,
                begun,
                done,
                cancelled,
            } => ctx.device_login(login, begun, done, cancelled),
            JobOrder::AwaitDevice {
                result,
                slice,
                reply,
            } => {
                tokio::spawn(await_device(result, slice, reply));
            }
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
                reply,
                cancelled,
            } => {
                let reply = counting_cancelled(reply, cancelled);
                ctx.logout(name, generation, provider, tokens, reply);
            }
            JobOrder::RetryRevocation { id, slot, provider } => {
                ctx.retry_revocation(id, slot, provider);
            }
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
