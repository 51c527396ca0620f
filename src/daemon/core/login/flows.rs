//! Pending interactive logins (their handlers: `super::super::handlers::login`). A browser or pasted-code login keeps its
//! PKCE verifier and CSRF state here until the CLI brings the code back; a device login
//! keeps the channel its polling job reports on. Every pending login is forgotten on
//! completion, failure, cancellation or expiry, and there are at most
//! [`MAX_PENDING_FLOWS`] at once.
//!
//! No HTTP here: code exchanges and device requests run as jobs
//! ([`crate::daemon::jobs::login`]), which end in the same completion path as a refresh-token login.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use tokio::sync::{oneshot, watch};

use crate::config::Provider;
use crate::protocol::{ErrorReply, LOGIN_WAIT_SLICE_SECS, Response};
use crate::secret::Secret;

use crate::daemon::core::schedule::delta;

/// Logins pending at once: far more than a person starts, few enough that a runaway client
/// cannot grow the daemon's memory.
pub const MAX_PENDING_FLOWS: usize = 16;

/// Longest `--timeout` honoured: a device code lives minutes, a browser tab as long.
pub const MAX_FLOW_LIFETIME: Duration = Duration::from_secs(3600);

/// How long a finished device login's outcome is kept for the CLI's next `login_wait`.
const RESULT_GRACE: Duration = Duration::from_secs(2 * LOGIN_WAIT_SLICE_SECS);

/// A device login's outcome, once its job has one.
pub(in crate::daemon) type DeviceResult = Option<Result<Response, ErrorReply>>;

/// One pending login.
pub(in crate::daemon) struct PendingFlow {
    pub(in crate::daemon) name: String,
    pub(in crate::daemon) provider: Provider,
    pub(in crate::daemon) expires_at: DateTime<Utc>,
    /// Compared with logouts of the name (`crate::daemon::core::login::cancel`).
    pub(in crate::daemon) ticket: u64,
    pub(in crate::daemon) kind: PendingKind,
}

pub(in crate::daemon) enum PendingKind {
    /// Browser or pasted code: what the code exchange needs.
    Code {
        redirect_uri: Url,
        state: Secret,
        verifier: Secret,
    },
    /// Device: the job's outcome, and its cancellation: dropped with the flow, polling
    /// stops; sent a reason (a logout), polling stops and the reason is the outcome.
    Device {
        result: watch::Receiver<DeviceResult>,
        cancel: oneshot::Sender<ErrorReply>,
    },
}

/// Every pending login by id.
#[derive(Default)]
pub(in crate::daemon) struct PendingFlows {
    pub(in crate::daemon) flows: HashMap<String, PendingFlow>,
    /// Logins a logout cancelled, by id, until they would have expired: what their CLI is
    /// told when it comes back (`login_wait`, `login_complete`).
    pub(in crate::daemon) cancelled: HashMap<String, (DateTime<Utc>, ErrorReply)>,
}

impl PendingFlows {
    /// Forgets logins past their expiry (device results after a grace period).
    pub(in crate::daemon) fn prune(&mut self, now: DateTime<Utc>) {
        self.flows.retain(|_, flow| match flow.kind {
            PendingKind::Code { .. } => now <= flow.expires_at,
            PendingKind::Device { .. } => now <= flow.expires_at + delta(RESULT_GRACE),
        });
        self.cancelled.retain(|_, (until, _)| now <= *until);
    }

    /// Cancels every pending login of slot name `name` with `reason`; returns how many.
    pub(in crate::daemon) fn cancel_named(&mut self, name: &str, reason: &ErrorReply) -> usize {
        let ids: Vec<String> = (self.flows.iter())
            .filter(|(_, flow)| flow.name == name)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            let Some(flow) = self.flows.remove(id) else {
                continue;
            };
            let until = flow.expires_at + delta(RESULT_GRACE);
            if let PendingKind::Device { cancel, .. } = flow.kind {
                let _ = cancel.send(reason.clone());
            }
            self.cancelled.insert(id.clone(), (until, reason.clone()));
        }
        ids.len()
    }

    /// Why login `flow_id` was cancelled, if a logout cancelled it.
    pub(in crate::daemon) fn cancellation(&self, flow_id: &str) -> Option<ErrorReply> {
        self.cancelled
            .get(flow_id)
            .map(|(_, reason)| reason.clone())
    }
}
