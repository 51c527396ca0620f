//! Deadline arithmetic for the refresh engine, pure and clock-free: every function takes
//! `now` and a random draw, so tests pin both. Deadlines are wall-clock instants
//! (`DateTime<Utc>`), because monotonic timers do not count time the machine spent
//! suspended; the manager additionally never sleeps longer than [`MAX_SLEEP`].
//!
//! The wall clock can also be *stepped* (by NTP, or by hand). A step backwards would leave
//! every deadline and token expiry late by the step, so the manager reads both clocks
//! ([`Clocks`]) and, when the wall clock fell behind the boot clock (which counts suspended
//! time but is never stepped), moves its deadlines and expiries back by as much
//! ([`wall_fell_behind`]). A step forwards needs nothing: the wall clock then judges every
//! deadline earlier than the boot clock would, which is already the earlier of the two.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::store::Tokens;

/// Longest the manager sleeps before looking at the wall clock again. After a suspend, an
/// overdue refresh starts within this time of waking, whatever the timers believe.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Lifetime assumed for an access token whose provider sent no `expires_in`.
pub const ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);

/// First retry delay after a transient failure; doubles with each further failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Longest retry delay after transient failures (unless the server's `Retry-After` asks
/// for more).
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// Largest random jitter subtracted from a scheduled refresh, so slots that were logged in
/// together do not all hit the provider in the same second.
pub const MAX_SCHEDULE_JITTER: Duration = Duration::from_secs(30);

/// Smallest disagreement between the wall and boot clocks treated as a step of the wall
/// clock. The manager compares the clocks at least every [`MAX_SLEEP`]; NTP slews at most
/// 500 ppm (15 ms in 30 s), so only a real step gets this far.
pub const CLOCK_STEP_TOLERANCE: Duration = Duration::from_secs(1);

/// One reading of both clocks: the wall clock, and a monotonic clock that counts time
/// suspended (`CLOCK_BOOTTIME` on Linux), as time since an arbitrary origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clocks {
    pub wall: DateTime<Utc>,
    pub boot: Duration,
}

/// How far the wall clock fell behind the boot clock between the readings `earlier` and
/// `now` (a backward step), or `None` when it did not by more than
/// [`CLOCK_STEP_TOLERANCE`] (no step, a forward step, or a suspend the boot clock counted).
pub fn wall_fell_behind(earlier: Clocks, now: Clocks) -> Option<TimeDelta> {
    let boot_elapsed = delta(now.boot.saturating_sub(earlier.boot));
    let wall_elapsed = now.wall - earlier.wall;
    let behind = boot_elapsed - wall_elapsed;
    (behind > delta(CLOCK_STEP_TOLERANCE)).then_some(behind)
}

/// When the access token stops working (assumed when the provider did not say). Never more
/// than [`crate::oauth::MAX_LIFETIME`] after it was obtained, also for tokens stored before
/// that cap existed (an `expires_in` of 1e12 was once stored as the year 33715).
pub fn effective_expiry(tokens: &Tokens) -> DateTime<Utc> {
    let longest = tokens
        .obtained_at
        .checked_add_signed(delta(crate::oauth::MAX_LIFETIME))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    tokens
        .expires_at
        .unwrap_or_else(|| tokens.obtained_at + delta(ASSUMED_LIFETIME))
        .min(longest)
}

/// How long before expiry a token counts as due for refresh: `refresh_before_expiry`, but
/// at most half the token's lifetime, so a provider issuing short-lived tokens does not
/// put the slot into a refresh loop.
pub fn refresh_margin(tokens: &Tokens, refresh_before_expiry: Duration) -> Duration {
    let lifetime = (effective_expiry(tokens) - tokens.obtained_at)
        .to_std()
        .unwrap_or(Duration::ZERO);
    refresh_before_expiry.min(lifetime / 2)
}

/// True when the access token must be refreshed before it is handed out.
pub fn is_due(tokens: &Tokens, refresh_before_expiry: Duration, now: DateTime<Utc>) -> bool {
    effective_expiry(tokens) - delta(refresh_margin(tokens, refresh_before_expiry)) <= now
}

/// When to refresh next: at `expiry - margin`, minus a jitter of up to a tenth of the
/// margin (at most [`MAX_SCHEDULE_JITTER`]). `unit` is a random draw in `[0, 1)`.
pub fn next_refresh_at(
    tokens: &Tokens,
    refresh_before_expiry: Duration,
    unit: f64,
) -> DateTime<Utc> {
    let margin = refresh_margin(tokens, refresh_before_expiry);
    let jitter = (margin / 10)
        .min(MAX_SCHEDULE_JITTER)
        .mul_f64(unit.clamp(0.0, 1.0));
    effective_expiry(tokens) - delta(margin) - delta(jitter)
}

/// The delay before retry number `attempt` (1 = first retry) after a transient failure:
/// exponential from [`BACKOFF_BASE`], capped at [`BACKOFF_CAP`], with ±20% jitter from
/// `unit` in `[0, 1)`, and never shorter than the server's `Retry-After`.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let plain = BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_CAP);
    let jittered = plain
        .mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
        .min(BACKOFF_CAP);
    jittered.max(retry_after.unwrap_or(Duration::ZERO))
}

/// How long the manager may sleep: until the earliest deadline, at most [`MAX_SLEEP`].
pub fn sleep_for(earliest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    earliest
        .map(|at| (at - now).to_std().unwrap_or(Duration::ZERO))
        .unwrap_or(MAX_SLEEP)
        .min(MAX_SLEEP)
}

/// A std duration as a chrono delta (saturating; our durations are far below the limit).
pub fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn tokens(obtained: &str, lifetime_secs: Option<i64>) -> Tokens {
        let obtained_at = at(obtained);
        Tokens {
            access_token: Secret::new("a"),
            refresh_token: Secret::new("r"),
            expires_at: lifetime_secs.map(|s| obtained_at + TimeDelta::seconds(s)),
            obtained_at,
            scopes: vec![],
        }
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn a_one_hour_token_is_refreshed_five_minutes_before_expiry() {
        let t = tokens("2026-01-01T00:00:00Z", Some(3600));
        assert_eq!(
            next_refresh_at(&t, FIVE_MIN, 0.0),
            at("2026-01-01T00:55:00Z")
        );
        // the jitter moves it earlier by at most a tenth of the margin (30 s)
        let latest_jitter = next_refresh_at(&t, FIVE_MIN, 0.999_999);
        assert!(latest_jitter > at("2026-01-01T00:54:30Z"));
        assert!(latest_jitter < at("2026-01-01T00:54:31Z"));
        assert_eq!(
            next_refresh_at(&t, FIVE_MIN, 0.5),
            at("2026-01-01T00:54:45Z")
        );
    }

    #[test]
    fn a_short_lived_token_is_refreshed_at_half_its_life_not_in_a_loop() {
        let t = tokens("2026-01-01T00:00:00Z", Some(60));
        assert_eq!(refresh_margin(&t, FIVE_MIN), Duration::from_secs(30));
        assert_eq!(
            next_refresh_at(&t, FIVE_MIN, 0.0),
            at("2026-01-01T00:00:30Z")
        );
        assert!(!is_due(&t, FIVE_MIN, at("2026-01-01T00:00:29Z")));
        assert!(is_due(&t, FIVE_MIN, at("2026-01-01T00:00:30Z")));
    }

    #[test]
    fn an_unknown_lifetime_is_assumed_to_be_an_hour() {
        let t = tokens("2026-01-01T00:00:00Z", None);
        assert_eq!(effective_expiry(&t), at("2026-01-01T01:00:00Z"));
        assert_eq!(
            next_refresh_at(&t, FIVE_MIN, 0.0),
            at("2026-01-01T00:55:00Z")
        );
    }

    #[test]
    fn a_stored_expiry_beyond_a_year_counts_as_a_year() {
        let mut t = tokens("2026-01-01T00:00:00Z", Some(3600));
        t.expires_at = Some(t.obtained_at + TimeDelta::seconds(1_000_000_000_000));
        assert_eq!(effective_expiry(&t), at("2027-01-01T00:00:00Z"));
        assert!(next_refresh_at(&t, FIVE_MIN, 0.0) < at("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn an_already_expired_token_is_due_now() {
        let t = tokens("2026-01-01T00:00:00Z", Some(3600));
        assert!(is_due(&t, FIVE_MIN, at("2026-01-02T00:00:00Z")));
        assert!(next_refresh_at(&t, FIVE_MIN, 0.5) < at("2026-01-02T00:00:00Z"));
    }

    #[test]
    fn backoff_doubles_from_one_second_and_caps_at_five_minutes() {
        let mid = 0.5; // no jitter
        let delays: Vec<u64> = (1..=12).map(|n| backoff(n, None, mid).as_secs()).collect();
        assert_eq!(
            delays,
            vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
        );
        assert_eq!(backoff(u32::MAX, None, mid), BACKOFF_CAP);
    }

    #[test]
    fn backoff_jitter_stays_within_twenty_percent_and_under_the_cap() {
        assert_eq!(backoff(4, None, 0.0), Duration::from_millis(6400));
        assert!(backoff(4, None, 0.999) <= Duration::from_millis(9600));
        assert_eq!(backoff(30, None, 0.999), BACKOFF_CAP);
    }

    #[test]
    fn retry_after_wins_when_longer_than_the_backoff() {
        assert_eq!(
            backoff(1, Some(Duration::from_secs(120)), 0.5),
            Duration::from_secs(120)
        );
        assert_eq!(
            backoff(5, Some(Duration::ZERO), 0.5),
            Duration::from_secs(16)
        );
    }

    fn clocks(wall: &str, boot_secs: u64) -> Clocks {
        Clocks {
            wall: at(wall),
            boot: Duration::from_secs(boot_secs),
        }
    }

    #[test]
    fn a_two_hour_step_back_of_the_wall_clock_is_measured() {
        let before = clocks("2026-01-01T10:30:00Z", 1000);
        // 30 s later by the boot clock, the wall clock reads two hours less.
        let after = clocks("2026-01-01T08:30:30Z", 1030);
        assert_eq!(wall_fell_behind(before, after), Some(TimeDelta::hours(2)));
    }

    #[test]
    fn suspend_forward_steps_and_slew_are_not_steps_back() {
        let before = clocks("2026-01-01T10:00:00Z", 1000);
        // Suspended 8 h: both clocks count it.
        let resumed = clocks("2026-01-01T18:00:00Z", 1000 + 8 * 3600);
        assert_eq!(wall_fell_behind(before, resumed), None);
        // A day forward: the wall clock is ahead, already the earlier judge.
        let forward = clocks("2026-01-02T10:00:30Z", 1030);
        assert_eq!(wall_fell_behind(before, forward), None);
        // NTP slewing: milliseconds.
        let slewed = Clocks {
            wall: at("2026-01-01T10:00:29.985Z"),
            boot: Duration::from_secs(1030),
        };
        assert_eq!(wall_fell_behind(before, slewed), None);
    }

    #[test]
    fn the_manager_never_sleeps_past_the_cap() {
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(sleep_for(None, now), MAX_SLEEP);
        assert_eq!(sleep_for(Some(at("2026-01-01T05:00:00Z")), now), MAX_SLEEP);
        assert_eq!(
            sleep_for(Some(at("2026-01-01T00:00:07Z")), now),
            Duration::from_secs(7)
        );
        assert_eq!(
            sleep_for(Some(at("2025-12-31T00:00:00Z")), now),
            Duration::ZERO
        );
    }
}
