//! When a slot's next token request may start, after whatever reply its last one got. Pure
//! and clock-free like [`crate::daemon::core::schedule`], which it builds on.
//!
//! The rule: **no reply can make the next request for a slot come sooner than
//! [`MIN_REQUEST_INTERVAL`]** after it. Not `expires_in: 0`, not `Retry-After: 0`, not a
//! reply whose access token is unusable: each would otherwise turn into a request loop
//! against the provider, every request rotating the grant. The interval holds for the
//! timer and for `token` callers (and usage 401s) alike; only an explicit `sessctl refresh`
//! goes ahead at once, because a person asked for exactly one request.
//!
//! A server's `Retry-After` is honoured only as far as the access token allows: the retry
//! still comes [`EXPIRY_SAFETY`] before the token expires, and the slot's error says so.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::oauth::MAX_RETRY_AFTER;
use crate::store::Tokens;

use crate::daemon::core::schedule::{self, delta};

/// Shortest time between two token requests for one slot that a reply can cause. Long
/// enough that a misbehaving provider sees at most 6 requests a minute per slot, short
/// enough that a token whose provider gave it a few seconds of life is replaced promptly.
pub const MIN_REQUEST_INTERVAL: Duration = Duration::from_secs(10);

/// How long before the access token expires a retry is made at the latest, whatever the
/// server's `Retry-After` asked.
pub const EXPIRY_SAFETY: Duration = Duration::from_secs(60);

/// What the last token request of a slot came to, as far as pacing cares.
#[derive(Debug, Clone, Copy)]
pub enum LastReply {
    /// New tokens, usable: the next refresh follows their expiry.
    Granted,
    /// A rotated refresh token was kept but the access token is unusable: re-refresh soon,
    /// backing off if it keeps happening.
    Unusable,
    /// No new tokens (network, 5xx, 429, junk): back off, within `retry_after` if given.
    Failed { retry_after: Option<Duration> },
}

/// When the next request may go, and the server's wait when it was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    pub at: DateTime<Utc>,
    /// The `Retry-After` the server asked for, when the retry comes before it (the access
    /// token would expire first).
    pub cut_retry_after: Option<Duration>,
}

impl Next {
    /// `error` of a failed request, with what happened to the server's `Retry-After` when
    /// it was cut short: for `status`'s `last_refresh_error`.
    pub fn explain(&self, error: String) -> String {
        match self.cut_retry_after {
            Some(asked) => format!(
                "{error}; the provider asked to wait {} s, but the access token expires sooner: retrying at {}",
                asked.as_secs(),
                self.at_text()
            ),
            None => error,
        }
    }

    /// The error of a reply whose access token was unusable (`defect`), for `status`.
    pub fn explain_unusable(&self, defect: &str) -> String {
        format!(
            "the provider's token reply was unusable ({defect}); the new refresh token in it was kept, and the slot is refreshed again at {}",
            self.at_text()
        )
    }

    fn at_text(&self) -> String {
        self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// The next request for a slot after `reply`, received at `now`. `tokens` are the ones the
/// slot holds now, `failures` its consecutive failures (this one counted), `unit` a random
/// draw in `[0, 1)`. Never earlier than `now + MIN_REQUEST_INTERVAL`.
pub fn next_request(
    reply: LastReply,
    tokens: Option<&Tokens>,
    failures: u32,
    refresh_before_expiry: Duration,
    now: DateTime<Utc>,
    unit: f64,
) -> Next {
    let mut cut_retry_after = None;
    let proposed = match (reply, tokens) {
        (LastReply::Granted, Some(tokens)) => {
            schedule::next_refresh_at(tokens, refresh_before_expiry, unit)
        }
        (LastReply::Granted | LastReply::Unusable, _) => {
            after(now, schedule::backoff(failures, None, unit))
        }
        (LastReply::Failed { retry_after }, _) => {
            let allowed = retry_after.map(|asked| {
                let limit = tokens.map_or(MAX_RETRY_AFTER, |t| until_safety(t, now));
                if asked > limit {
                    cut_retry_after = Some(asked);
                }
                asked.min(limit).min(MAX_RETRY_AFTER)
            });
            after(now, schedule::backoff(failures, allowed, unit))
        }
    };
    Next {
        at: proposed.max(earliest_after(now)),
        cut_retry_after,
    }
}

/// The earliest a request may follow a reply received at `replied_at`.
pub fn earliest_after(replied_at: DateTime<Utc>) -> DateTime<Utc> {
    after(replied_at, MIN_REQUEST_INTERVAL)
}

/// `at + wait`, saturating at the end of time instead of panicking.
fn after(at: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    at.checked_add_signed(delta(wait))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// True when a request that is not an explicit `refresh` may start now.
pub fn may_request(last_reply_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_reply_at.is_none_or(|at| earliest_after(at) <= now)
}

/// Time left until [`EXPIRY_SAFETY`] before the access token expires (zero if past).
fn until_safety(tokens: &Tokens, now: DateTime<Utc>) -> Duration {
    (schedule::effective_expiry(tokens) - delta(EXPIRY_SAFETY) - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
#[path = "pacing_tests.rs"]
mod tests;
