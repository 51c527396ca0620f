//! Unit tests of [`super`]: no reply brings the next request closer than the minimum
//! interval, and a `Retry-After` is cut to the access token's expiry.

use chrono::TimeDelta;

use super::*;
use crate::secret::Secret;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Tokens received at `now` with `lifetime` seconds (negative: already expired).
fn tokens(lifetime: Option<i64>) -> Tokens {
    Tokens {
        access_token: Secret::new("a"),
        refresh_token: Secret::new("r"),
        expires_at: lifetime.map(|s| now() + TimeDelta::seconds(s)),
        obtained_at: now(),
        scopes: vec![],
    }
}

const FIVE_MIN: Duration = Duration::from_secs(300);

#[test]
fn no_reply_makes_the_next_request_sooner_than_the_minimum_interval() {
    let lifetimes = [
        None,
        Some(-7200),
        Some(-1),
        Some(0),
        Some(1),
        Some(9),
        Some(3600),
    ];
    let retry_afters = [None, Some(0), Some(1), Some(3600), Some(u64::MAX / 4)];
    let replies = std::iter::once(LastReply::Granted)
        .chain(std::iter::once(LastReply::Unusable))
        .chain(retry_afters.iter().map(|r| LastReply::Failed {
            retry_after: r.map(Duration::from_secs),
        }));
    let earliest = now() + TimeDelta::seconds(MIN_REQUEST_INTERVAL.as_secs() as i64);
    for reply in replies {
        for lifetime in lifetimes {
            let held = tokens(lifetime);
            for held in [Some(&held), None] {
                for failures in [0, 1, 2, 30, u32::MAX] {
                    for unit in [0.0, 0.5, 0.999_999] {
                        let next = next_request(reply, held, failures, FIVE_MIN, now(), unit);
                        assert!(
                            next.at >= earliest,
                            "{reply:?} lifetime {lifetime:?} failures {failures}: {next:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_long_retry_after_is_cut_to_before_the_access_token_expires() {
    let held = tokens(Some(600));
    let reply = LastReply::Failed {
        retry_after: Some(Duration::from_secs(3600)),
    };
    let next = next_request(reply, Some(&held), 1, FIVE_MIN, now(), 0.5);
    assert_eq!(next.at, now() + TimeDelta::seconds(600 - 60));
    assert_eq!(next.cut_retry_after, Some(Duration::from_secs(3600)));
    // A wait that ends in time is honoured as asked.
    let reply = LastReply::Failed {
        retry_after: Some(Duration::from_secs(120)),
    };
    let next = next_request(reply, Some(&held), 1, FIVE_MIN, now(), 0.5);
    assert_eq!(next.at, now() + TimeDelta::seconds(120));
    assert_eq!(next.cut_retry_after, None);
}

#[test]
fn a_granted_reply_follows_the_token_expiry_and_an_unusable_one_backs_off() {
    let held = tokens(Some(3600));
    let next = next_request(LastReply::Granted, Some(&held), 0, FIVE_MIN, now(), 0.0);
    assert_eq!(next.at, now() + TimeDelta::seconds(3300));
    let first = next_request(LastReply::Unusable, Some(&held), 1, FIVE_MIN, now(), 0.5);
    assert_eq!(first.at, now() + TimeDelta::seconds(10));
    let later = next_request(LastReply::Unusable, Some(&held), 9, FIVE_MIN, now(), 0.5);
    assert_eq!(later.at, now() + TimeDelta::seconds(256));
}

#[test]
fn callers_may_ask_again_only_after_the_interval() {
    assert!(may_request(None, now()));
    let replied = now() - TimeDelta::seconds(9);
    assert!(!may_request(Some(replied), now()));
    assert!(may_request(Some(replied), now() + TimeDelta::seconds(1)));
}
