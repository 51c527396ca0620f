//! Quota against the real server's usage endpoint: fresh data reaches status and the cache;
//! a slot's own old data is flagged although the cache's timestamp is fresh (the incident);
//! a 401 costs one refresh and one retry; a dead server leaves the last data, flagged
//! stale; `Retry-After: 0` does not cause a burst.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::flows::Running;
use crate::support::wait_for;

/// Fast quota timings so the tests see several fetch cycles in seconds.
const FAST: &str = "quota_interval: 1s\nstale_after: 3s";
/// Lets the test server's usage endpoint be asked every second.
const FAST_PROVIDER: &str = "usage_min_interval: 1s";

fn quota(t: &Running, slot: &str) -> Value {
    t.slot_status(slot)["quota"].clone()
}

fn usage_requests(t: &Running) -> u64 {
    t.server.stats().usage_requests
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[test]
fn fresh_usage_reaches_status_and_the_cache_file() {
    use std::os::unix::fs::PermissionsExt;
    let t = Running::start("");
    t.login("work", "alice");
    wait_for("the first usage fetch", Duration::from_secs(20), || {
        !quota(&t, "work")["fetched_at"].is_null()
    });
    let q = quota(&t, "work");
    assert_eq!(q["stale"], false);
    assert!(q["windows"]["five_hour"]["utilization"].is_number(), "{q}");
    assert!(
        q["windows"].get("seven_day_opus").is_none(),
        "null windows are skipped"
    );
    let status = t.env.status_json();
    assert_eq!(status["cache"]["stale"], false);
    let path = status["cache"]["path"].as_str().unwrap().to_owned();
    // The cache file is written at most once a second (daemon::jobs::writer): the fetch
    // reaches it within that.
    let read_cache = || -> Value {
        std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null)
    };
    wait_for(
        "the fetch to reach the cache file",
        Duration::from_secs(10),
        || !read_cache()["slots"]["work"]["fetched_at"].is_null(),
    );
    let cache = read_cache();
    assert_eq!(cache["slots"]["work"]["account"], "alice@example.com");
    assert_eq!(cache["slots"]["work"]["state"], "active");
    assert!(cache["slots"]["work"]["windows"]["five_hour"]["utilization"].is_number());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(t.env.sessctl(&["status"]).status.code(), Some(0));
}

#[test]
fn old_slot_data_is_flagged_though_the_cache_timestamp_is_fresh() {
    let t = Running::with_provider(FAST, FAST_PROVIDER);
    t.login("work", "alice");
    wait_for("the first usage fetch", Duration::from_secs(20), || {
        !quota(&t, "work")["fetched_at"].is_null()
    });
    let fetched = time(&quota(&t, "work")["fetched_at"]).unwrap();
    t.server
        .push_faults("usage", (0..200).map(|_| json!({"status": 503})).collect());
    wait_for(
        "the slot's data to go stale",
        Duration::from_secs(30),
        || quota(&t, "work")["stale"] == true,
    );
    let status = t.env.status_json();
    let slot = &status["slots"][0];
    // The incident: the cache as a whole is fresh, the slot's own data is not.
    assert_eq!(status["cache"]["stale"], false, "{status}");
    assert_eq!(slot["quota"]["stale"], true);
    assert_eq!(
        time(&slot["quota"]["fetched_at"]),
        Some(fetched),
        "last good data kept"
    );
    assert!(slot["quota"]["error"].as_str().unwrap().contains("503"));
    assert!(
        slot["quota"]["windows"]["five_hour"].is_object(),
        "last good windows kept"
    );
    assert_eq!(
        slot["state"], "active",
        "a usage failure is not a token failure"
    );
    assert_eq!(t.env.sessctl(&["status"]).status.code(), Some(1));
    let table = String::from_utf8(t.env.sessctl(&["status"]).stdout).unwrap();
    assert!(table.contains("STALE"), "{table}");
    // The status line, from the cache the daemon wrote: the slot is flagged, the cache not.
    let out = t.env.sessctl(&["statusline", "--no-stdin"]);
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("work 5h"),
        "no cache-level marker expected: {line:?}"
    );
    assert!(
        line.trim_end().ends_with('🔺'),
        "slot-level marker expected: {line:?}"
    );
}

#[test]
fn a_401_on_usage_costs_one_refresh_and_one_retry() {
    let t = Running::with_provider(FAST, FAST_PROVIDER);
    t.login("work", "alice");
    wait_for("the first usage fetch", Duration::from_secs(20), || {
        !quota(&t, "work")["fetched_at"].is_null()
    });
    let tokens_before = t.token_requests();
    let refreshes_before = t.slot_status("work")["refreshes"].as_u64().unwrap();
    t.server.push_faults("usage", vec![json!({"status": 401})]);
    wait_for(
        "a good fetch after the 401's refresh",
        Duration::from_secs(20),
        || {
            let slot = t.slot_status("work");
            slot["refreshes"].as_u64() == Some(refreshes_before + 1)
                && slot["quota"]["error"].is_null()
                && time(&slot["quota"]["fetched_at"]) > time(&slot["last_refresh_at"])
        },
    );
    assert_eq!(
        t.token_requests() - tokens_before,
        1,
        "one refresh for the 401"
    );
    assert_eq!(
        t.slot_status("work")["refreshes"].as_u64().unwrap(),
        refreshes_before + 1
    );
    assert_eq!(t.invalid_grants(), 0);
}

#[test]
fn with_the_server_gone_the_last_data_is_kept_and_goes_stale() {
    let mut t = Running::with_provider(FAST, FAST_PROVIDER);
    t.login("work", "alice");
    wait_for("the first usage fetch", Duration::from_secs(20), || {
        !quota(&t, "work")["fetched_at"].is_null()
    });
    let fetched = time(&quota(&t, "work")["fetched_at"]).unwrap();
    t.server.stop();
    wait_for(
        "the slot's data to go stale",
        Duration::from_secs(30),
        || quota(&t, "work")["stale"] == true,
    );
    let q = quota(&t, "work");
    assert_eq!(time(&q["fetched_at"]), Some(fetched));
    assert!(q["windows"]["five_hour"].is_object());
    assert!(!q["error"].is_null());
    assert_ne!(t.state("work"), "inactive");
}

#[test]
fn retry_after_zero_does_not_cause_a_burst() {
    // usage_min_interval 4s: whatever the server says, at most one request per 4 s. The
    // failure backoff alone (1 s, then 2 s, +-20%) would allow gaps of at most 2.4 s, so
    // gaps of 3.5 s or more (4 s less transit jitter on a loaded machine) show the minimum
    // interval at work. The gaps are measured by the server, when each request arrived,
    // not by this test's polling, so a slow test process cannot skew them. (stale_after
    // must exceed usage_min_interval, or the config is refused.)
    let t = Running::with_provider(
        "quota_interval: 1s\nstale_after: 10s",
        "usage_min_interval: 4s",
    );
    t.server.push_faults(
        "usage",
        (0..50)
            .map(|_| json!({"status": 429, "retry_after": "0"}))
            .collect(),
    );
    t.login("work", "alice");
    wait_for("three usage requests", Duration::from_secs(40), || {
        usage_requests(&t) >= 3
    });
    let times = t.server.stats().usage_request_times_ms;
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= 3500,
            "usage requests {gap} ms apart: a burst ({times:?})"
        );
    }
    assert!(quota(&t, "work")["error"].as_str().unwrap().contains("429"));
}
