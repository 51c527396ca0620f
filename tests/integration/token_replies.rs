//! Bad token-endpoint replies: a 200 that rotated the grant is never dropped, server times
//! are clamped, and no reply makes a request loop (issue 15, "The token endpoint's replies").
//!
//! The replies are a stand-in: the real provider (node-oidc-provider) cannot be made to send
//! `expires_in: 1e13` or a 300 KB body, so the test server's `rewrite` fault
//! (`tests/oauth-server/fault_layer.mjs`) changes the provider's real reply on its way out.
//! The provider has really rotated the grant by then, and its reuse detection stays real: a
//! rotated refresh token that sessctl dropped shows up as `invalid_grant` at the next request
//! (the whole grant revoked), which is what every test here checks never happens.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::flows::{Running, assert_success, code_and_stderr, token_works};
use crate::support::{Grant, wait_for};

/// Matches `daemon::pacing::MIN_REQUEST_INTERVAL`.
const MIN_REQUEST_INTERVAL_MS: u64 = 10_000;
const YEAR_SECS: i64 = 365 * 24 * 3600;

/// Queues one `rewrite` fault for the next token request.
#[allow(
    clippy::needless_pass_by_value,
    reason = "callers build the fault inline with json!"
)]
fn rewrite_next(t: &Running, rewrite: Value) {
    t.server
        .push_faults("token", vec![json!({ "rewrite": rewrite })]);
}

/// Seconds from now until the RFC 3339 time in `value`.
fn seconds_until(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    let at = DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("not an RFC 3339 time ({e}): {text}"));
    (at.with_timezone(&Utc) - Utc::now()).num_seconds()
}

/// The grant is alive and nothing was presented twice.
fn assert_no_reuse(t: &Running, grant: &Grant) {
    assert_eq!(t.invalid_grants(), 0, "a refresh token was presented twice");
    assert!(
        t.server.grant_exists(&grant.grant_id),
        "the grant was revoked"
    );
}

/// One more refresh, unfaulted: it presents the refresh token kept from the bad reply.
fn assert_refreshes_cleanly(t: &Running, grant: &Grant) {
    assert_success(
        &t.env.sessctl(&["refresh", "work"]),
        "refresh after the bad reply",
    );
    assert_eq!(t.state("work"), "active");
    assert!(token_works(&t.server, &t.token("work")));
    assert_no_reuse(t, grant);
}

#[test]
fn an_expires_in_of_1e13_or_more_neither_panics_nor_loses_the_grant() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    for raw in ["10000000000000", "18446744073709551615", "1e300"] {
        rewrite_next(
            &t,
            json!({"drop": ["expires_in"], "raw": {"expires_in": raw}}),
        );
        let out = t.env.sessctl(&["refresh", "work"]);
        assert_success(&out, &format!("refresh answered expires_in {raw}"));
        let slot = t.slot_status("work");
        assert_eq!(slot["state"], "active", "{slot}");
        let expires = seconds_until(&slot["access_token_expires_at"]);
        assert!(expires <= YEAR_SECS + 60, "{raw}: expires in {expires} s");
        assert!(seconds_until(&slot["next_refresh_at"]) <= expires, "{slot}");
    }
    assert_refreshes_cleanly(&t, &grant);
}

#[test]
fn an_expires_in_of_1e12_is_capped_at_a_year() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    rewrite_next(&t, json!({"set": {"expires_in": 1e12}}));
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    let slot = t.slot_status("work");
    let expires = seconds_until(&slot["access_token_expires_at"]);
    assert!(
        (YEAR_SECS - 60..=YEAR_SECS + 60).contains(&expires),
        "expires in {expires} s: {slot}"
    );
    let next = seconds_until(&slot["next_refresh_at"]);
    assert!(next <= YEAR_SECS, "next refresh in {next} s");
    assert_refreshes_cleanly(&t, &grant);
}

#[test]
fn an_expires_in_of_zero_makes_no_request_loop() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    let zero = json!({"rewrite": {"set": {"expires_in": 0}}});
    t.server.push_faults("token", vec![zero; 8]);
    let before = t.token_requests();
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    // The token counts as expired at once; the next requests come, but paced.
    wait_for("two more token requests", Duration::from_secs(60), || {
        t.token_requests() >= before + 3
    });
    let stats = t.server.stats();
    let count = usize::try_from(stats.token_requests - before).expect("small");
    let times = stats.token_request_times_ms;
    let ours = &times[times.len() - count..];
    for pair in ours.windows(2) {
        assert!(
            pair[1] - pair[0] >= MIN_REQUEST_INTERVAL_MS,
            "token requests {} ms apart: {ours:?}",
            pair[1] - pair[0]
        );
    }
    assert_no_reuse(&t, &grant);
    assert!(token_works(&t.server, &t.token("work")));
}

#[test]
fn an_unreadable_expires_in_keeps_the_rotated_refresh_token() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    for rewrite in [
        json!({"set": {"expires_in": -5}}),
        json!({"set": {"expires_in": "soon"}}),
    ] {
        rewrite_next(&t, rewrite.clone());
        assert_success(&t.env.sessctl(&["refresh", "work"]), &rewrite.to_string());
        let slot = t.slot_status("work");
        assert_eq!(slot["state"], "active", "{slot}");
        // Taken as a short lifetime: refreshed again soon, not in an hour.
        assert!(
            seconds_until(&slot["access_token_expires_at"]) <= 60,
            "{slot}"
        );
        assert_refreshes_cleanly(&t, &grant);
    }
}

/// A 200 that rotated the grant but whose access token cannot be used: the refresh fails,
/// the new refresh token is kept, `status` says why, and the slot recovers by itself.
fn assert_unusable_reply_is_survived(rewrite: Value) {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    rewrite_next(&t, rewrite);
    let out = t.env.sessctl(&["refresh", "work"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("refresh token in it was kept"), "{stderr}");
    let slot = t.slot_status("work");
    assert_eq!(slot["state"], "degraded", "{slot}");
    assert_eq!(slot["reason"], "token_reply_unusable", "{slot}");
    let next = seconds_until(&slot["next_refresh_at"]);
    assert!((0..=60).contains(&next), "re-refresh in {next} s: {slot}");
    wait_for("the slot to refresh again", Duration::from_secs(60), || {
        t.state("work") == "active"
    });
    assert!(token_works(&t.server, &t.token("work")));
    assert_no_reuse(&t, &grant);
}

#[test]
fn a_200_without_an_access_token_keeps_its_refresh_token() {
    assert_unusable_reply_is_survived(json!({"drop": ["access_token"]}));
}

#[test]
fn a_200_over_the_size_limit_keeps_its_refresh_token() {
    assert_unusable_reply_is_survived(json!({"pad_bytes": 300_000}));
}

#[test]
fn a_long_retry_after_is_cut_so_the_retry_comes_before_the_token_expires() {
    let t = Running::start("");
    t.server.set_access_token_ttl(600);
    let grant = t.login("work", "alice");
    t.server
        .push_faults("token", vec![json!({"status": 429, "retry_after": "3600"})]);
    let out = t.env.sessctl(&["refresh", "work"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", code_and_stderr(&out));
    let slot = t.slot_status("work");
    let expires = seconds_until(&slot["access_token_expires_at"]);
    let next = seconds_until(&slot["next_refresh_at"]);
    assert!(
        next < expires,
        "retry in {next} s, token expires in {expires} s"
    );
    let error = slot["last_refresh_error"].as_str().unwrap_or("");
    assert!(
        error.contains("asked to wait 3600 s") && error.contains("retrying at"),
        "{slot}"
    );
    assert_no_reuse(&t, &grant);
}

#[test]
fn a_refresh_token_login_whose_reply_has_no_access_token_keeps_the_new_token() {
    let t = Running::start("");
    let grant = t.server.grant("alice", "alice@example.com");
    rewrite_next(&t, json!({"drop": ["access_token"]}));
    let out = t.env.sessctl_stdin(
        &[
            "login",
            "work",
            "--provider",
            "test",
            "--refresh-token-stdin",
        ],
        &grant.refresh_token,
    );
    assert_success(&out, "login");
    // The login's access token was unusable: the slot gets a real one at once.
    wait_for("the slot's first refresh", Duration::from_secs(30), || {
        t.slot_status("work")["refreshes"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(t.state("work"), "active");
    assert!(token_works(&t.server, &t.token("work")));
    assert_no_reuse(&t, &grant);
}
