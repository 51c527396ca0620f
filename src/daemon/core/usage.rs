//! Quota per slot: when to fetch a slot's usage, what a fetch result does, and the merged
//! cache snapshot. One account's usage is never fetched more often than its provider's
//! `usage_min_interval`, whatever `quota_interval` or a `Retry-After: 0` say; a 401 leads to
//! one refresh through the slot's single-flight path and one retry.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cache::{ExtraUsage, QuotaCache, SlotQuota, Window};
use crate::quota::UsageOutcome;
use crate::state::SlotState;

use crate::daemon::core::Manager;
use crate::daemon::core::schedule::{self, delta};
use crate::daemon::core::slot::{Creds, Slot};

/// A slot's quota data and fetch bookkeeping.
#[derive(Debug, Default)]
pub struct QuotaState {
    /// When the windows were fetched (the last good fetch).
    pub fetched_at: Option<DateTime<Utc>>,
    pub windows: BTreeMap<String, Window>,
    /// Credit spend from the last good fetch (`extra_usage`).
    pub extra_usage: Option<ExtraUsage>,
    /// The last fetch's error; the windows are then the last good data.
    pub error: Option<String>,
    pub fetching: bool,
    /// When the last request was sent (the minimum interval counts from here).
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// No request before this (backoff after failures, `Retry-After`).
    pub blocked_until: Option<DateTime<Utc>>,
    /// Consecutive failed fetches.
    pub failures: u32,
    /// Fetch again as soon as the slot's next refresh succeeds (after a 401, or when the
    /// access token had expired).
    pub after_refresh: bool,
    /// A 401 has already cost one refresh since the last good fetch.
    pub refreshed_for_401: bool,
}

/// When a slot's usage should next be fetched: when its data would go stale or the regular
/// interval comes round, but never before the minimum interval since the last request nor
/// before a backoff or `Retry-After` ends.
///
/// Regular fetches land on the slot's own grid: the times `phase + k × period` (period:
/// the shorter of `quota_interval` and `stale_after`), taking the last grid point at or
/// before "one period after the last good fetch". So data is never older than a period, and
/// slots with different phases ([`poll_phase`]) fall due at different moments of the period:
/// 1,000 slots fetched together at start-up (no data yet) drift onto their own grid points
/// within one period, at the cost of at most one early fetch each, which the minimum
/// interval still bounds; after that each account is asked exactly once a period.
pub fn next_fetch_at(
    quota: &QuotaState,
    quota_interval: Duration,
    stale_after: Duration,
    min_interval: Duration,
    phase: Duration,
) -> DateTime<Utc> {
    let period = quota_interval.min(stale_after);
    let wanted = quota.fetched_at.map_or(DateTime::<Utc>::MIN_UTC, |at| {
        grid_point_at_or_before(at + delta(period), period, phase)
    });
    let earliest = quota
        .last_attempt_at
        .map_or(DateTime::<Utc>::MIN_UTC, |at| at + delta(min_interval));
    wanted
        .max(earliest)
        .max(quota.blocked_until.unwrap_or(DateTime::<Utc>::MIN_UTC))
}

/// A slot's deterministic offset within a poll period of `period`, from its name (FNV-1a,
/// stable across restarts and Rust versions), so slots spread evenly over the period.
pub fn poll_phase(name: &str, period: Duration) -> Duration {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let millis = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(hash.checked_rem(millis).unwrap_or(0))
}

/// The last time at or before `at` of the form `epoch + phase + k × period`; `at` itself
/// when the period is under a millisecond or the arithmetic would leave chrono's range.
fn grid_point_at_or_before(at: DateTime<Utc>, period: Duration, phase: Duration) -> DateTime<Utc> {
    let (Ok(period), Ok(phase)) = (
        i64::try_from(period.as_millis()),
        i64::try_from(phase.as_millis()),
    ) else {
        return at;
    };
    if period == 0 {
        return at;
    }
    let t = at.timestamp_millis();
    let grid = t
        .checked_sub(phase)
        .map(|since| since.div_euclid(period) * period + phase);
    grid.and_then(DateTime::from_timestamp_millis)
        .map_or(at, |g| g.min(at))
}

/// The quota cache is published at most this often: at 1,000 slots a usage result arrives
/// every few hundred milliseconds, and each publication is every slot's quota. A change after
/// a quiet spell goes at once; changes close behind one gather into the next. Readers judge
/// staleness by minutes. (The cache writer, `crate::daemon::jobs::writer`, spaces its writes
/// the same way.)
pub const CACHE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Manager {
    /// When this slot's usage fetch is due, if it has one (an active or degraded slot with
    /// credentials, a provider with a usage endpoint, no fetch running).
    pub(in crate::daemon) fn usage_deadline(&self, slot: &Slot) -> Option<DateTime<Utc>> {
        let provider = self.usage_provider(slot)?;
        // A login still being stored is not answered yet: its quota waits for it, as the
        // quota of a slot that does not exist yet would.
        if slot.quota.fetching
            || slot.quota.after_refresh
            || slot.record.state == SlotState::Inactive
            || !matches!(slot.creds, Creds::Present { .. })
            || slot.pending_login.is_some()
        {
            return None;
        }
        let period = self.config.quota_interval.min(self.config.stale_after);
        Some(next_fetch_at(
            &slot.quota,
            self.config.quota_interval,
            self.config.stale_after,
            provider.usage_min_interval,
            poll_phase(&slot.name, period),
        ))
    }

    /// Starts a usage fetch for `name` with its current access token. An expired token is
    /// not sent: the fetch waits for the slot's next successful refresh instead.
    pub(in crate::daemon) fn start_usage_fetch(&mut self, name: &str, now: DateTime<Utc>) {
        if self.jobs.drain.is_closed() {
            return;
        }
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let (Some(provider), Some(tokens)) = (
            self.config.providers.get(&slot.record.provider),
            slot.creds.tokens(),
        ) else {
            return;
        };
        if schedule::effective_expiry(tokens) <= now {
            slot.quota.after_refresh = true;
            slot.quota.error =
                Some("the access token expired; usage waits for the next refresh".into());
            self.publish_cache();
            return;
        }
        slot.quota.fetching = true;
        slot.quota.last_attempt_at = Some(now);
        self.jobs.usage(
            name.to_owned(),
            slot.record.generation,
            provider.clone(),
            tokens.access_token.clone(),
        );
    }

    /// Applies a usage fetch's outcome.
    pub(in crate::daemon) fn on_usage(
        &mut self,
        name: &str,
        generation: u64,
        outcome: UsageOutcome,
    ) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        if slot.record.generation != generation {
            return;
        }
        let now = self.now;
        let unit = self.rng.f64();
        let quota = &mut slot.quota;
        quota.fetching = false;
        match outcome {
            UsageOutcome::Fetched(usage) => {
                quota.windows = usage.windows;
                quota.extra_usage = usage.extra_usage;
                quota.fetched_at = Some(now);
                quota.error = None;
                quota.failures = 0;
                quota.blocked_until = None;
                quota.refreshed_for_401 = false;
            }
            UsageOutcome::Unauthorized if !quota.refreshed_for_401 => {
                quota.refreshed_for_401 = true;
                quota.after_refresh = true;
                quota.error = Some("usage endpoint: HTTP 401; refreshing the token".into());
                slot.refresh_wanted = true;
                tracing::info!(
                    slot = name,
                    "usage endpoint refused the token; refreshing once"
                );
                self.start_next_job(name, false);
            }
            UsageOutcome::Unauthorized => {
                fail(
                    quota,
                    (now, unit),
                    "usage endpoint: HTTP 401 even after a refresh".into(),
                    None,
                );
            }
            UsageOutcome::Failed { error, retry_after } => {
                fail(quota, (now, unit), error, retry_after);
            }
        }
        self.publish_cache();
    }

    /// After a slot's refresh: a fetch that waited for it goes now (or gives up if the
    /// refresh failed).
    pub(in crate::daemon) fn usage_after_refresh(&mut self, name: &str, refreshed: bool) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        if !slot.quota.after_refresh {
            return;
        }
        slot.quota.after_refresh = false;
        if refreshed {
            self.start_usage_fetch(name, self.now);
        }
    }

    /// The merged cache as it stands now.
    pub(in crate::daemon) fn cache_snapshot(&self, now: DateTime<Utc>) -> QuotaCache {
        QuotaCache {
            updated_at: now,
            stale_after_secs: Some(self.config.stale_after.as_secs()),
            slots: self
                .slots
                .values()
                .filter_map(|slot| Some((slot.name.clone(), self.slot_quota(slot)?)))
                .collect(),
        }
    }

    /// The slot's provider, if it has a usage endpoint.
    fn usage_provider(&self, slot: &Slot) -> Option<&crate::config::Provider> {
        self.config
            .providers
            .get(&slot.record.provider)
            .filter(|p| p.usage_url.is_some())
    }

    /// One slot's entry in the cache (and in `status`); `None` when its provider has no
    /// usage endpoint, so it has no quota to show.
    pub(in crate::daemon) fn slot_quota(&self, slot: &Slot) -> Option<SlotQuota> {
        self.usage_provider(slot)?;
        Some(SlotQuota {
            account: slot.record.account.clone(),
            provider: Some(slot.record.provider.clone()),
            state: slot.record.state,
            fetched_at: slot.quota.fetched_at,
            windows: slot.quota.windows.clone(),
            error: slot.quota.error.clone(),
            extra_usage: slot.quota.extra_usage.clone(),
            claude_code: (slot.record.claude_code.as_ref())
                .map(|d| d.to_string_lossy().into_owned()),
        })
    }
}

/// Records a failed fetch: keep the last good data, back off (at least `retry_after`).
fn fail(
    quota: &mut QuotaState,
    (now, unit): (DateTime<Utc>, f64),
    error: String,
    retry_after: Option<Duration>,
) {
    quota.failures += 1;
    let wait = schedule::backoff(quota.failures, retry_after, unit);
    quota.blocked_until = Some(now + delta(wait));
    quota.error = Some(error);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(180);
    const INTERVAL: Duration = Duration::from_secs(300);
    const STALE: Duration = Duration::from_secs(900);
    /// On the epoch's grid: the times in these tests are whole minutes, so a 0 phase
    /// leaves them where they were before phases existed.
    const NO_PHASE: Duration = Duration::ZERO;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_slot_without_data_is_fetched_at_once() {
        assert_eq!(
            next_fetch_at(&QuotaState::default(), INTERVAL, STALE, MIN, NO_PHASE),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn good_data_is_refetched_every_quota_interval() {
        let q = QuotaState {
            fetched_at: Some(at("2026-01-01T00:00:00Z")),
            last_attempt_at: Some(at("2026-01-01T00:00:00Z")),
            ..QuotaState::default()
        };
        assert_eq!(
            next_fetch_at(&q, INTERVAL, STALE, MIN, NO_PHASE),
            at("2026-01-01T00:05:00Z")
        );
        // a quota_interval longer than stale_after still refetches before data goes stale
        let long = Duration::from_secs(3600);
        assert_eq!(
            next_fetch_at(&q, long, STALE, MIN, NO_PHASE),
            at("2026-01-01T00:15:00Z")
        );
    }

    #[test]
    fn the_minimum_interval_wins_over_a_short_quota_interval() {
        let q = QuotaState {
            fetched_at: Some(at("2026-01-01T00:00:00Z")),
            last_attempt_at: Some(at("2026-01-01T00:00:00Z")),
            ..QuotaState::default()
        };
        let every_10s = Duration::from_secs(10);
        assert_eq!(
            next_fetch_at(&q, every_10s, STALE, MIN, NO_PHASE),
            at("2026-01-01T00:03:00Z")
        );
    }

    #[test]
    fn retry_after_zero_still_waits_the_minimum_interval() {
        let mut q = QuotaState {
            last_attempt_at: Some(at("2026-01-01T00:00:00Z")),
            ..QuotaState::default()
        };
        fail(
            &mut q,
            (at("2026-01-01T00:00:00Z"), 0.5),
            "429".into(),
            Some(Duration::ZERO),
        );
        assert_eq!(
            next_fetch_at(&q, INTERVAL, STALE, MIN, NO_PHASE),
            at("2026-01-01T00:03:00Z")
        );
    }

    #[test]
    fn a_long_retry_after_is_honoured() {
        let mut q = QuotaState {
            last_attempt_at: Some(at("2026-01-01T00:00:00Z")),
            ..QuotaState::default()
        };
        fail(
            &mut q,
            (at("2026-01-01T00:00:00Z"), 0.5),
            "429".into(),
            Some(Duration::from_secs(1200)),
        );
        assert_eq!(
            next_fetch_at(&q, INTERVAL, STALE, MIN, NO_PHASE),
            at("2026-01-01T00:20:00Z")
        );
        assert_eq!(q.error.as_deref(), Some("429"));
    }

    /// 1,000 slots whose data all arrived at once (a start-up) fall due spread over the
    /// period, never later than a period after their data, and then once a period each.
    #[test]
    fn a_thousand_slots_fall_due_spread_over_the_period_not_in_a_burst() {
        let fetched = at("2026-01-01T00:00:07Z");
        let mut due = Vec::new();
        for i in 0..1000 {
            let phase = poll_phase(&format!("slot{i:03}"), INTERVAL);
            assert_eq!(
                phase,
                poll_phase(&format!("slot{i:03}"), INTERVAL),
                "stable"
            );
            assert!(phase < INTERVAL);
            let mut q = QuotaState {
                fetched_at: Some(fetched),
                last_attempt_at: Some(fetched),
                ..QuotaState::default()
            };
            let next = next_fetch_at(&q, INTERVAL, STALE, Duration::ZERO, phase);
            assert!(
                next > fetched && next <= fetched + delta(INTERVAL),
                "{next}"
            );
            // In step: the next fetch is exactly one period later.
            q.fetched_at = Some(next + chrono::Duration::milliseconds(300));
            q.last_attempt_at = Some(next);
            let after = next_fetch_at(&q, INTERVAL, STALE, Duration::ZERO, phase);
            assert_eq!(after - next, delta(INTERVAL));
            due.push((next - fetched).num_seconds());
        }
        // Ten 30 s buckets of the 300 s period: each holds about a tenth, none a burst.
        let mut buckets = [0; 10];
        for secs in due {
            buckets[usize::try_from(secs / 30).unwrap().min(9)] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (60..=140).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn the_minimum_interval_still_bounds_an_early_grid_point() {
        let fetched = at("2026-01-01T00:00:00Z");
        let q = QuotaState {
            fetched_at: Some(fetched),
            last_attempt_at: Some(fetched),
            ..QuotaState::default()
        };
        // A phase that puts the grid point 1 s after the fetch: the budget still holds.
        let phase = Duration::from_secs(1);
        assert_eq!(
            next_fetch_at(&q, INTERVAL, STALE, MIN, phase),
            at("2026-01-01T00:03:00Z")
        );
        assert_eq!(poll_phase("any", Duration::ZERO), Duration::ZERO);
        for edge in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
            assert!(
                grid_point_at_or_before(edge, INTERVAL, phase) <= edge,
                "no panic"
            );
        }
    }
}
