//! Callers parked on a slot's job, and how each is answered when the job ends: a `token`
//! caller with the token (or why there is none), one slot of a `refresh` request with its
//! line of the report, sent once every slot of the request has ended. Answering is plain
//! in-memory work on the callers' reply channels: no task, no clock read (the time comes in).

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::protocol::{
    ErrorCode, ErrorReply, RefreshReport, Response, SlotRefreshResult, TokenReply,
};

use crate::daemon::core::Reply;
use crate::daemon::core::slot::SlotOutcome;

/// A token within this long of expiry is not handed out as "still valid" after a failed
/// refresh: the caller could not use it before it dies.
const MIN_USABLE_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// A caller waiting for a slot's current or next refresh.
pub struct Waiter {
    pub reply: WaiterReply,
    /// A `token` caller: it needs a refresh only when the token is due. A `refresh`
    /// caller always wants one.
    pub token_only: bool,
}

/// Where a waiter's answer goes.
pub enum WaiterReply {
    Token(Reply),
    Refresh(BatchPart),
}

impl Waiter {
    pub fn token(reply: Reply) -> Self {
        Waiter {
            reply: WaiterReply::Token(reply),
            token_only: true,
        }
    }

    pub fn refresh(part: BatchPart) -> Self {
        Waiter {
            reply: WaiterReply::Refresh(part),
            token_only: false,
        }
    }

    /// Answers this waiter with the slot job's outcome, judged at `now`.
    pub fn answer(self, outcome: &SlotOutcome, now: DateTime<Utc>) {
        match self.reply {
            // A waiter whose client went away is fine to skip.
            WaiterReply::Token(reply) => {
                let _ = reply.send(token_reply(outcome.clone(), now));
            }
            WaiterReply::Refresh(part) => part.fill(outcome),
        }
    }
}

/// A `refresh` request over several slots: its report, filled a line at a time.
struct Batch {
    reply: Option<Reply>,
    results: Vec<Option<SlotRefreshResult>>,
}

/// One slot's line of a `refresh` request's report. When the last line is filled the
/// report is sent; if the parts are dropped unfilled (the daemon exits), the caller hears
/// "shutting down" from the server.
pub struct BatchPart {
    batch: Arc<Mutex<Batch>>,
    index: usize,
}

/// The parts of a `refresh` request over `count` slots, answered on `reply`.
pub fn refresh_batch(reply: Reply, count: usize) -> Vec<BatchPart> {
    let batch = Arc::new(Mutex::new(Batch {
        reply: Some(reply),
        results: (0..count).map(|_| None).collect(),
    }));
    let parts: Vec<BatchPart> = (0..count)
        .map(|index| BatchPart {
            batch: Arc::clone(&batch),
            index,
        })
        .collect();
    if count == 0 {
        finish(&mut batch.lock().unwrap_or_else(PoisonError::into_inner));
    }
    parts
}

impl BatchPart {
    /// Fills this slot's line; sends the report when it was the last one.
    pub fn fill(self, outcome: &SlotOutcome) {
        let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
        batch.results[self.index] = Some(SlotRefreshResult {
            name: outcome.name.clone(),
            ok: outcome.result.is_ok(),
            state: outcome.state,
            error: outcome.result.clone().err(),
        });
        if batch.results.iter().all(Option::is_some) {
            finish(&mut batch);
        }
    }
}

fn finish(batch: &mut Batch) {
    let results = batch.results.iter_mut().filter_map(Option::take).collect();
    if let Some(reply) = batch.reply.take() {
        let _ = reply.send(Ok(Response::Refresh(RefreshReport { results })));
    }
}

/// Turns a slot outcome into the `token` reply: the fresh token, or the still-valid old
/// one with a warning when the refresh failed transiently, or the error.
fn token_reply(outcome: SlotOutcome, now: DateTime<Utc>) -> Result<Response, ErrorReply> {
    let usable = outcome
        .expires_at
        .is_none_or(|at| at - now > MIN_USABLE_LIFETIME);
    match (outcome.result, outcome.access_token) {
        (Ok(()), Some(access_token)) => Ok(Response::Token(TokenReply {
            access_token,
            expires_at: outcome.expires_at,
            warning: None,
        })),
        (Err(error), Some(access_token)) if usable && error.code == ErrorCode::RefreshFailed => {
            Ok(Response::Token(TokenReply {
                access_token,
                expires_at: outcome.expires_at,
                warning: Some(format!(
                    "refresh failed, returning the current token: {}",
                    error.message
                )),
            }))
        }
        (Err(error), _) => Err(error),
        (Ok(()), None) => Err(ErrorReply::new(
            ErrorCode::Internal,
            "no token is held for this slot",
        )),
    }
}
