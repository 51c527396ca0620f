//! Outbound token requests are capped (`max_token_requests`): a restart with every token
//! expired refreshes a few slots at a time, never all at once, reusing no refresh token;
//! and a refresh still queued for its turn when a graceful stop begins is never sent.
//! Against the real test server (its `in_flight_max` counts requests served at once) and
//! the real keychain.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::flows::{Running, assert_success, token_works};
use crate::support::wait_for;

/// Logs in `count` slots with access tokens of `ttl` seconds, stops the daemon (graceful),
/// waits until every stored access token has expired, and holds the server's token
/// endpoint: the next daemon finds every slot due at once. Returns the names soonest
/// expiry first, as stored (logged in in reverse alphabetical order, but on a slow machine
/// the first daemon may already have refreshed the first few, which then expire last).
pub(crate) fn expired_slots_behind_a_hold(t: &mut Running, count: usize, ttl: u64) -> Vec<String> {
    t.server.set_access_token_ttl(ttl);
    let names: Vec<String> = (0..count).rev().map(|i| format!("slot{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        t.login(name, &format!("acct{i:02}"));
    }
    assert!(t.daemon.terminate(Duration::from_secs(60)).success());
    let mut by_expiry: Vec<(DateTime<Utc>, String)> = names
        .iter()
        .map(|name| {
            let item = t.env.secret_lookup("sessctl", name).expect("stored item");
            let item: serde_json::Value = serde_json::from_str(&item).unwrap();
            let at = item["expires_at"].as_str().expect("an expiry").to_owned();
            let at = DateTime::parse_from_rfc3339(&at)
                .unwrap()
                .with_timezone(&Utc);
            (at, name.clone())
        })
        .collect();
    by_expiry.sort();
    let last_expiry = by_expiry.last().unwrap().0;
    wait_for(
        "every stored access token to expire",
        Duration::from_secs(60),
        || Utc::now() > last_expiry,
    );
    t.server.set_access_token_ttl(3600);
    t.server.hold("token", true);
    t.server.reset_stats();
    by_expiry.into_iter().map(|(_, name)| name).collect()
}

/// The slot's last refresh, if any.
fn last_refresh(t: &Running, name: &str) -> Option<DateTime<Utc>> {
    t.slot_status(name)["last_refresh_at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc))
}

/// Whether the slot's last refresh came after `since`.
fn refreshed_since(t: &Running, name: &str, since: DateTime<Utc>) -> bool {
    last_refresh(t, name).is_some_and(|at| at > since)
}

#[test]
fn a_restart_with_every_token_expired_keeps_token_requests_under_the_cap() {
    const SLOTS: usize = 12;
    const CAP: usize = 4;
    let mut t = Running::start("");
    let names = expired_slots_behind_a_hold(&mut t, SLOTS, 3);
    let restarted = Utc::now();
    t.daemon = t.env.start_daemon();
    // Let the held requests through one at a time, each as soon as it has arrived: with
    // the cap, at most CAP are ever at the server; without it, all arrive at once.
    wait_for(
        "the first refreshes at the server",
        Duration::from_secs(30),
        || t.server.stats().holding("token") >= CAP.min(SLOTS) as u64,
    );
    // Every refresh beyond the cap is in the limiter's queue before the first is released,
    // so the order they go in is the queue's, not the order their tasks happened to run.
    wait_for(
        "every refresh beyond the cap queued for its turn",
        Duration::from_secs(30),
        || {
            t.daemon
                .log()
                .matches("token request queued for its turn")
                .count()
                >= SLOTS - CAP
        },
    );
    // One refresh at a time: each release waits until the one before has been recorded by
    // the daemon and the next queued refresh (sent once that permit freed) has arrived, so
    // the order the refreshes end in is the order the limiter sent them, not a race between
    // requests in flight together.
    for released in 0..SLOTS {
        let out = CAP.min(SLOTS - released) as u64;
        wait_for(
            &format!("refresh {released} recorded and {out} at the server"),
            Duration::from_secs(30),
            || {
                let recorded = names
                    .iter()
                    .filter(|name| refreshed_since(&t, name, restarted))
                    .count();
                recorded == released && t.server.stats().holding("token") == out
            },
        );
        assert!(t.server.release_one("token", false));
    }
    t.server.hold("token", false);
    wait_for("every slot refreshed", Duration::from_secs(60), || {
        names
            .iter()
            .all(|name| refreshed_since(&t, name, restarted))
    });
    let stats = t.server.stats();
    let most = stats.in_flight_max.get("token").copied().unwrap_or(0);
    assert!(
        most <= CAP as u64,
        "{most} token requests were at the server at once; the cap is {CAP}"
    );
    assert_eq!(stats.token_requests, SLOTS as u64, "one refresh per slot");
    assert_eq!(t.invalid_grants(), 0, "a refresh token was reused");
    for name in &names {
        assert_eq!(t.state(name), "active", "{name}");
    }
    // Released one at a time, requests finish in the order they reached the server: after
    // the first CAP, the queued ones went soonest expiry first (not alphabetically).
    let mut finished = names.clone();
    finished.sort_by_key(|name| last_refresh(&t, name));
    let first = &finished[..CAP];
    let queued: Vec<&String> = names.iter().filter(|n| !first.contains(n)).collect();
    let finished_queued: Vec<&String> = finished[CAP..].iter().collect();
    assert_eq!(
        finished_queued, queued,
        "queued refreshes, soonest expiry first"
    );
}

#[test]
fn a_refresh_queued_for_its_turn_is_not_sent_once_a_stop_began() {
    let mut t = Running::start("max_token_requests: 1");
    let names = expired_slots_behind_a_hold(&mut t, 3, 3);
    t.daemon = t.env.start_daemon();
    wait_for("one refresh at the server", Duration::from_secs(30), || {
        t.server.stats().holding("token") == 1
    });
    t.daemon.signal(libc::SIGTERM);
    wait_for(
        "the stop to wait for the refresh out",
        Duration::from_secs(30),
        || t.daemon.log().contains("stopping: waiting for"),
    );
    t.server.hold("token", false);
    assert!(t.daemon.wait_exit(Duration::from_secs(60)).success());
    let stats = t.server.stats();
    assert_eq!(
        stats.token_requests, 1,
        "only the refresh already sent reached the server"
    );
    assert_eq!(t.invalid_grants(), 0);
    // The next daemon refreshes the rest with the tokens the store holds: none was lost.
    t.daemon = t.env.start_daemon();
    for name in &names {
        assert!(token_works(&t.server, &t.token(name)), "{name}");
    }
    assert_eq!(
        t.server.stats().token_requests,
        3,
        "each slot refreshed once in all"
    );
    assert_eq!(t.invalid_grants(), 0, "a refresh token was reused");
}

#[test]
fn a_persons_refresh_goes_before_the_timers_queued_ones() {
    let mut t = Running::start("max_token_requests: 1");
    // Logged in with a long-lived token: not due after the restart, refreshed on request.
    t.server.set_access_token_ttl(3600);
    t.login("asked", "acct-asked");
    let names = expired_slots_behind_a_hold(&mut t, 3, 3);
    let restarted = Utc::now();
    t.daemon = t.env.start_daemon();
    wait_for("one refresh at the server", Duration::from_secs(30), || {
        t.server.stats().holding("token") == 1
    });
    let queued = |t: &Running| {
        t.daemon
            .log()
            .matches("token request queued for its turn")
            .count()
    };
    wait_for("the others queued", Duration::from_secs(30), || {
        queued(&t) >= names.len() - 1
    });
    let mut refresh = t.env.sessctl_command(&["refresh", "asked"]);
    let asked = std::thread::spawn(move || refresh.output().expect("run sessctl refresh"));
    wait_for(
        "the person's refresh queued",
        Duration::from_secs(30),
        || t.daemon.log().contains("refreshing slot=\"asked\"") && queued(&t) >= names.len(),
    );
    // The one out finishes; the next at the server must be the person's, not the timer's.
    assert!(t.server.release_one("token", false));
    wait_for(
        "the next request at the server",
        Duration::from_secs(30),
        || t.server.stats().holding("token") == 1,
    );
    assert!(t.server.release_one("token", false));
    wait_for(
        "the person's refresh to end",
        Duration::from_secs(30),
        || asked.is_finished(),
    );
    let out = asked.join().expect("refresh thread");
    assert_success(&out, "refresh asked");
    let timer_done = names
        .iter()
        .filter(|name| refreshed_since(&t, name, restarted))
        .count();
    assert_eq!(
        timer_done, 1,
        "the person's refresh went before the queued ones"
    );
    t.server.hold("token", false);
    wait_for("every slot refreshed", Duration::from_secs(60), || {
        names
            .iter()
            .all(|name| refreshed_since(&t, name, restarted))
    });
    assert_eq!(t.invalid_grants(), 0, "a refresh token was reused");
}
