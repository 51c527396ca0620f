//! Logging a condition that repeats (a keychain that keeps failing, a reconnect that keeps
//! being needed) once per change instead of once per occurrence: when it starts, then at
//! most every [`REMIND_EVERY`] with a count, and when it ends. Pure bookkeeping over an
//! injected clock; the caller writes the log line [`Say`] asks for. Never sees the
//! condition's text, so it cannot leak anything.

use std::time::{Duration, Instant};

/// Longest a repeating condition goes unmentioned in the log. A failing keychain is
/// retried every few seconds to minutes; one line per five minutes keeps a day-long outage
/// to under 300 lines while still showing the daemon is alive and trying.
pub const REMIND_EVERY: Duration = Duration::from_secs(300);

/// What to log about one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// Nothing: already said recently.
    Nothing,
    /// The condition just started.
    Started,
    /// The condition goes on: `count` occurrences over `since`.
    Still { count: u64, since: Duration },
    /// The condition ended after `count` occurrences over `lasted`.
    Ended { count: u64, lasted: Duration },
}

/// One repeating condition's bookkeeping.
#[derive(Debug, Default)]
pub struct Repeated {
    ongoing: Option<Ongoing>,
}

#[derive(Debug)]
struct Ongoing {
    since: Instant,
    count: u64,
    last_said: Instant,
}

impl Repeated {
    /// The condition occurred (again) at `now`.
    pub fn failed(&mut self, now: Instant) -> Say {
        let Some(ongoing) = &mut self.ongoing else {
            self.ongoing = Some(Ongoing {
                since: now,
                count: 1,
                last_said: now,
            });
            return Say::Started;
        };
        ongoing.count += 1;
        if now.saturating_duration_since(ongoing.last_said) < REMIND_EVERY {
            return Say::Nothing;
        }
        ongoing.last_said = now;
        Say::Still {
            count: ongoing.count,
            since: now.saturating_duration_since(ongoing.since),
        }
    }

    /// The condition did not occur at `now`: it ends if it was going on.
    pub fn succeeded(&mut self, now: Instant) -> Say {
        match self.ongoing.take() {
            Some(ongoing) => Say::Ended {
                count: ongoing.count,
                lasted: now.saturating_duration_since(ongoing.since),
            },
            None => Say::Nothing,
        }
    }

    /// True while the condition is going on.
    pub fn is_ongoing(&self) -> bool {
        self.ongoing.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_storm_of_failures_is_said_once_then_counted_at_a_bounded_rate_then_ended_once() {
        let start = Instant::now();
        let mut repeated = Repeated::default();
        let mut said = Vec::new();
        // 51 failures a second for 17 minutes, as in the incident.
        for tick in 0..(17 * 60 * 51) {
            let now = start + Duration::from_millis(tick * 1000 / 51);
            let say = repeated.failed(now);
            if say != Say::Nothing {
                said.push(say);
            }
        }
        assert_eq!(said[0], Say::Started);
        assert!(said.len() <= 1 + 17 * 60 / 300, "{said:?}");
        assert!(
            matches!(said[1], Say::Still { count, since } if count > 15_000 && since >= REMIND_EVERY)
        );
        let end = start + 17 * 60 * SECOND;
        assert!(matches!(
            repeated.succeeded(end),
            Say::Ended { count: 52_020, lasted } if lasted == 17 * 60 * SECOND
        ));
        assert!(!repeated.is_ongoing());
        assert_eq!(repeated.succeeded(end), Say::Nothing);
    }

    #[test]
    fn a_new_failure_after_recovery_is_said_again() {
        let start = Instant::now();
        let mut repeated = Repeated::default();
        assert_eq!(repeated.failed(start), Say::Started);
        assert_eq!(repeated.failed(start + SECOND), Say::Nothing);
        assert!(matches!(
            repeated.succeeded(start + 2 * SECOND),
            Say::Ended { count: 2, .. }
        ));
        assert_eq!(repeated.failed(start + 3 * SECOND), Say::Started);
        assert!(repeated.is_ongoing());
    }

    #[test]
    fn a_clock_that_goes_backwards_does_not_panic_or_remind() {
        let start = Instant::now() + REMIND_EVERY;
        let mut repeated = Repeated::default();
        assert_eq!(repeated.failed(start), Say::Started);
        assert_eq!(
            repeated.failed(start.checked_sub(SECOND).unwrap()),
            Say::Nothing
        );
    }
}
