//! One log line per provider request a job makes: every refresh attempt and every usage
//! fetch, with the slot, the outcome and how long it took (`duration_ms`; a refresh also
//! says how long storing the new tokens took, `store_ms`). Success at `info` (a usage
//! fetch's at `debug`), failure at `warn`. Lines hold outcome names, HTTP status codes and the short error texts of
//! [`crate::oauth`] (which never echo a reply body), never a token.

use std::time::Duration;

use crate::quota::UsageOutcome;

use crate::daemon::core::reports::RefreshOutcome;

/// Milliseconds, for the `duration_ms` fields.
fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Logs one refresh attempt: `request` is the token request's duration, `store` the
/// credential write's (when the request gave new tokens).
pub fn refresh(slot: &str, outcome: &RefreshOutcome, request: Duration, store: Option<Duration>) {
    let duration_ms = ms(request);
    let store_ms = store.map(ms);
    match outcome {
        RefreshOutcome::Stored(_) => {
            tracing::info!(
                slot,
                outcome = "refreshed",
                duration_ms,
                store_ms,
                "refresh"
            );
        }
        RefreshOutcome::Unsaved { error, .. } => tracing::warn!(
            slot,
            outcome = "refreshed_unsaved",
            duration_ms,
            store_ms,
            %error,
            "refresh"
        ),
        RefreshOutcome::Conflict { error, .. } => tracing::warn!(
            slot,
            outcome = "store_conflict",
            duration_ms,
            store_ms,
            %error,
            "refresh"
        ),
        RefreshOutcome::Transient { error, retry_after } => tracing::warn!(
            slot,
            outcome = "transient_failure",
            duration_ms,
            retry_after_s = retry_after.map(|d| d.as_secs()),
            error,
            "refresh"
        ),
        RefreshOutcome::Permanent { reason, error } => tracing::warn!(
            slot,
            outcome = "permanent_failure",
            reason = crate::slot_reason::SlotReason::from(*reason).as_str(),
            duration_ms,
            error,
            "refresh"
        ),
    }
}

/// The class of an HTTP status (`2xx`), or why there is none.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
        None => "no_reply",
    }
}

/// Logs one usage fetch; `status` is the HTTP status, `None` when no reply came.
pub fn usage(slot: &str, outcome: &UsageOutcome, status: Option<u16>, took: Duration) {
    let duration_ms = ms(took);
    let http = status_class(status);
    match outcome {
        // Debug: at 1,000 slots a fetch succeeds every few hundred milliseconds, which would
        // be most of the log (`status` shows each slot's last fetch); failures stay warnings.
        UsageOutcome::Fetched(usage) => tracing::debug!(
            slot,
            outcome = "fetched",
            http,
            status,
            windows = usage.windows.len(),
            duration_ms,
            "usage fetch"
        ),
        UsageOutcome::Unauthorized => tracing::warn!(
            slot,
            outcome = "unauthorized",
            http,
            status,
            duration_ms,
            "usage fetch"
        ),
        UsageOutcome::Failed { error, retry_after } => tracing::warn!(
            slot,
            outcome = "failed",
            http,
            status,
            duration_ms,
            retry_after_s = retry_after.map(|d| d.as_secs()),
            error,
            "usage fetch"
        ),
    }
}

/// Logs a login's redemption of its refresh token.
pub fn login(slot: &str, result: Result<(), &str>, took: Duration) {
    let duration_ms = ms(took);
    match result {
        Ok(()) => tracing::info!(slot, outcome = "redeemed", duration_ms, "login"),
        Err(error) => tracing::warn!(slot, outcome = "refused", duration_ms, error, "login"),
    }
}

/// Logs a revocation request.
pub fn revocation(slot: &str, result: &Result<bool, crate::oauth::RevokeError>, took: Duration) {
    let duration_ms = ms(took);
    match result {
        Ok(true) => tracing::info!(slot, outcome = "revoked", duration_ms, "revocation"),
        Ok(false) => tracing::info!(slot, outcome = "no_revoke_url", "revocation"),
        Err(e) => {
            let outcome = if e.permanent { "refused" } else { "failed" };
            let error = e.message.as_str();
            tracing::warn!(slot, outcome, duration_ms, error, "revocation");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fall_into_their_class() {
        assert_eq!(status_class(Some(200)), "2xx");
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(Some(401)), "4xx");
        assert_eq!(status_class(Some(429)), "4xx");
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(Some(302)), "3xx");
        assert_eq!(status_class(Some(999)), "other");
        assert_eq!(status_class(None), "no_reply");
    }
}
