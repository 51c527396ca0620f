//! The credential store's health in the log: said once when calls start failing as
//! unavailable, then at most every [`crate::repeat::REMIND_EVERY`] with a count, and once
//! when a call succeeds again, however many calls fail in between. The messages are our
//! own ([`StoreError::Unavailable`] never carries token material).

use std::time::Instant;

use super::StoreError;
use crate::repeat::{Repeated, Say};

/// The message of an `Unavailable` result, if it is one.
pub(super) fn result_unavailable<T>(result: &Result<T, StoreError>) -> Option<String> {
    match result {
        Err(StoreError::Unavailable(message)) => Some(message.clone()),
        _ => None,
    }
}

/// Logs the store becoming unavailable, staying so (with a count, at a bounded rate) and
/// becoming available again: once per change, however many calls fail in between.
pub(super) fn log_health(health: &mut Repeated, unavailable: Option<String>) {
    let now = Instant::now();
    match unavailable {
        Some(error) => match health.failed(now) {
            Say::Started => tracing::warn!("credential store unavailable: {error}"),
            Say::Still { count, since } => tracing::warn!(
                failed_calls = count,
                "credential store still unavailable ({count} failed calls in {} s): {error}",
                since.as_secs()
            ),
            Say::Nothing | Say::Ended { .. } => {
                tracing::debug!("credential store call failed: {error}");
            }
        },
        None => {
            if let Say::Ended { count, lasted } = health.succeeded(now) {
                tracing::info!(
                    failed_calls = count,
                    "credential store available again (after {count} failed calls in {} s)",
                    lasted.as_secs()
                );
            }
        }
    }
}
