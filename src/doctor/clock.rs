//! Doctor's clock check: the local clock against the `Date` headers of the token endpoints'
//! replies. Refresh timing and token expiry are wall-clock times the provider set, so a
//! clock off by minutes refreshes late (or far too early).

use super::Check;

/// Skew worth a warning: above a `Date` header's one-second resolution and network delay
/// by far, and already a minute off the refresh schedule.
const WARN_SKEW_SECS: f64 = 60.0;
/// Skew that breaks sessctl: the default refresh margin is five minutes, so a clock this
/// far behind lets access tokens expire before the daemon refreshes them.
const FAIL_SKEW_SECS: f64 = 300.0;

const CHECK: &str = "clock";

const FIX: &str = "sync the clock with a time server (`timedatectl set-ntp true` on systemd machines, or the system's date and time settings)";

/// What one reply said about the time.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockReading {
    /// Where the reply came from (`host:port`).
    pub source: String,
    /// Server time minus local time, in seconds: positive when the local clock is behind.
    pub skew_secs: f64,
}

/// Judges the largest skew seen.
pub fn check(readings: &[ClockReading]) -> Check {
    let Some(worst) = readings
        .iter()
        .max_by(|a, b| a.skew_secs.abs().total_cmp(&b.skew_secs.abs()))
    else {
        return Check::warn(
            CHECK,
            "no token endpoint reply carried a Date header to compare with (no slots, or no endpoint answered)",
            format!("check the clock by other means; {FIX}"),
        );
    };
    let skew = worst.skew_secs.abs();
    let direction = if worst.skew_secs > 0.0 {
        "behind"
    } else {
        "ahead of"
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "skew is non-negative and rounded; `as` saturates an absurd one"
    )]
    let detail = format!(
        "the local clock is {} {direction} {}",
        crate::cli::when::span(skew.round() as u64),
        worst.source
    );
    if skew > FAIL_SKEW_SECS {
        Check::fail(CHECK, detail, FIX)
    } else if skew > WARN_SKEW_SECS {
        Check::warn(CHECK, detail, FIX)
    } else {
        Check::pass(
            CHECK,
            format!("within {}s of {}", skew.ceil(), worst.source),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::Outcome;
    use super::*;

    fn reading(source: &str, skew_secs: f64) -> ClockReading {
        ClockReading {
            source: source.to_owned(),
            skew_secs,
        }
    }

    #[test]
    fn small_skews_pass_a_minute_warns_five_minutes_fail() {
        let outcome = |skew| check(&[reading("a.example", skew)]).outcome;
        assert_eq!(outcome(0.4), Outcome::Pass);
        assert_eq!(outcome(-60.0), Outcome::Pass);
        assert_eq!(outcome(61.0), Outcome::Warn);
        assert_eq!(outcome(-299.0), Outcome::Warn);
        assert_eq!(outcome(301.0), Outcome::Fail);
        assert_eq!(outcome(-3600.0), Outcome::Fail);
    }

    #[test]
    fn the_worst_reading_is_named_with_its_direction() {
        let c = check(&[reading("a.example", 2.0), reading("b.example:8443", -420.0)]);
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.detail, "the local clock is 7m ahead of b.example:8443");
        let behind = check(&[reading("a.example", 90.0)]);
        assert_eq!(behind.detail, "the local clock is 1m behind a.example");
        assert_eq!(
            check(&[reading("a.example", 0.2)]).detail,
            "within 1s of a.example"
        );
    }

    #[test]
    fn nothing_to_compare_with_is_a_warning() {
        assert_eq!(check(&[]).outcome, Outcome::Warn);
    }
}
