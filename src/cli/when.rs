//! Times for people: "in 42m", "4m ago", "3h5m". Pure functions of two instants, so the
//! tables that use them (`status`, `doctor`) are deterministic under test.

use chrono::{DateTime, Utc};

/// `at` relative to `now`: "in 42m" for the future, "4m ago" for the past, "now" within
/// a second either way (the daemon's and the CLI's clock readings differ by that much),
/// "-" when unknown.
pub fn relative(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let secs = (at - now).num_seconds();
    match secs.cmp(&0) {
        std::cmp::Ordering::Equal => "now".into(),
        std::cmp::Ordering::Greater => format!("in {}", span(secs.unsigned_abs())),
        std::cmp::Ordering::Less => format!("{} ago", span(secs.unsigned_abs())),
    }
}

/// A length of time in its largest useful units, kubectl-style: "45s", "42m", "3h5m"
/// (minutes kept while they still matter), "30h", "3d".
pub fn span(secs: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    match secs {
        s if s < MINUTE => format!("{s}s"),
        s if s < HOUR => format!("{}m", s / MINUTE),
        s if s < 10 * HOUR => match (s % HOUR) / MINUTE {
            0 => format!("{}h", s / HOUR),
            m => format!("{}h{m}m", s / HOUR),
        },
        s if s < 2 * DAY => format!("{}h", s / HOUR),
        s => format!("{}d", s / DAY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn spans_use_the_largest_useful_unit() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(59), "59s");
        assert_eq!(span(60), "1m");
        assert_eq!(span(42 * 60 + 59), "42m");
        assert_eq!(span(3600), "1h");
        assert_eq!(span(3 * 3600 + 5 * 60 + 7), "3h5m");
        assert_eq!(span(10 * 3600 + 59 * 60), "10h");
        assert_eq!(span(47 * 3600), "47h");
        assert_eq!(span(49 * 3600), "2d");
        assert_eq!(span(30 * 86400), "30d");
    }

    #[test]
    fn relative_times_say_in_or_ago() {
        let now = at("2026-11-23T21:00:00Z");
        assert_eq!(relative(Some(at("2026-11-23T21:42:00Z")), now), "in 42m");
        assert_eq!(relative(Some(at("2026-11-23T20:56:00Z")), now), "4m ago");
        assert_eq!(relative(Some(now), now), "now");
        let just_before = now - chrono::Duration::milliseconds(900);
        assert_eq!(relative(Some(just_before), now), "now");
        assert_eq!(relative(Some(at("2026-11-23T20:59:58Z")), now), "2s ago");
        assert_eq!(relative(Some(at("2026-11-21T20:00:00Z")), now), "2d ago");
        assert_eq!(relative(None, now), "-");
    }
}
