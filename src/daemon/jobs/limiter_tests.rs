//! Tests of the request limiter: the cap, the order, and waiters that give up.

use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::*;

fn at(secs: i64) -> Urgency {
    Urgency::Scheduled(Some(Utc.timestamp_opt(secs, 0).unwrap()))
}

/// Starts a task that takes a permit of `limiter` at `urgency`, tells `order` its label,
/// and holds the permit until its `release` is sent.
fn waiter(
    limiter: &Limiter,
    urgency: Urgency,
    label: &'static str,
    order: tokio::sync::mpsc::UnboundedSender<&'static str>,
) -> oneshot::Sender<()> {
    let (release, released) = oneshot::channel::<()>();
    let limiter = limiter.clone();
    tokio::spawn(async move {
        let _permit = limiter.acquire(urgency).await;
        let _ = order.send(label);
        let _ = released.await;
    });
    release
}

#[tokio::test]
async fn never_more_out_than_the_capacity_and_the_most_urgent_goes_first() {
    let limiter = Limiter::new("token", 2);
    let first = limiter.acquire(at(100)).await;
    let second = limiter.acquire(at(100)).await;
    assert_eq!(limiter.in_flight(), (2, 2));
    let (order_tx, mut order) = tokio::sync::mpsc::unbounded_channel();
    let mut releases = std::collections::BTreeMap::new();
    for (urgency, label) in [
        (at(300), "late"),
        (at(50), "soon"),
        (Urgency::Asked, "asked"),
        (at(50), "soon-2"),
        (Urgency::Scheduled(None), "unknown"),
    ] {
        releases.insert(label, waiter(&limiter, urgency, label, order_tx.clone()));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        order.try_recv().is_err(),
        "all wait while both permits are out"
    );
    drop(first);
    drop(second);
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let label = order.recv().await.unwrap();
        seen.push(label);
        releases.remove(label);
    }
    assert_eq!(seen, ["asked", "unknown", "soon", "soon-2", "late"]);
    assert_eq!(limiter.in_flight().1, 2, "never more than two at once");
}

#[tokio::test]
async fn a_waiter_that_gave_up_does_not_hold_a_permit() {
    let limiter = Limiter::new("token", 1);
    let held = limiter.acquire(Urgency::Asked).await;
    let gave_up = {
        let limiter = limiter.clone();
        tokio::spawn(async move { limiter.acquire(Urgency::Asked).await })
    };
    tokio::task::yield_now().await;
    gave_up.abort();
    let _ = gave_up.await;
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(5), limiter.acquire(at(1))).await;
    assert!(again.is_ok(), "the permit came back");
    assert_eq!(limiter.in_flight().0, 1);
}

#[test]
fn a_person_comes_before_any_expiry_and_unknown_expiries_first() {
    assert!(Urgency::Asked < Urgency::Scheduled(None));
    assert!(Urgency::Scheduled(None) < at(0));
    assert!(at(1) < at(2));
}

#[test]
fn an_interactive_login_comes_first_and_revocations_last() {
    assert!(Urgency::Interactive < Urgency::Asked);
    assert!(at(i64::from(i32::MAX)) < Urgency::Revocation);
    assert!(Urgency::Scheduled(None) < Urgency::Revocation);
}
