//! The refresh engine against the real OAuth server (node-oidc-provider with refresh-token
//! rotation: a reused refresh token revokes the whole grant).

use std::time::Duration;

use serde_json::json;

use crate::flows::{Running, code_and_stderr, config_yaml, token_works};
use crate::support::wait_for;

#[test]
fn login_stores_the_rotated_token_and_learns_the_account() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    let slot = t.slot_status("work");
    assert_eq!(slot["state"], "active");
    assert_eq!(slot["account"], "alice@example.com");
    assert_eq!(slot["provider"], "test");
    // login redeemed the token once: the original is spent, the stored one is new
    assert_eq!(t.token_requests(), 1);
    let item = t
        .env
        .secret_lookup("sessctl", "work")
        .expect("a keychain item for the slot");
    let item: serde_json::Value = serde_json::from_str(&item).expect("item is JSON");
    assert_ne!(item["refresh_token"], grant.refresh_token.as_str());
    assert!(token_works(&t.server, &t.token("work")));
}

#[test]
fn a_slot_stays_valid_across_several_access_token_lifetimes() {
    let t = Running::start("");
    t.server.set_access_token_ttl(4);
    t.login("work", "alice");
    // 4 s tokens are refreshed at half their life, but token requests for a slot are at
    // least 10 s apart (daemon::pacing): wait for four scheduled refreshes.
    wait_for("four scheduled refreshes", Duration::from_secs(60), || {
        t.slot_status("work")["refreshes"].as_u64().unwrap_or(0) >= 4
    });
    assert_eq!(t.state("work"), "active");
    assert!(token_works(&t.server, &t.token("work")));
    assert_eq!(t.invalid_grants(), 0, "a refresh token was reused");
}

#[test]
fn fifty_concurrent_token_calls_around_a_refresh_make_one_token_request() {
    let t = Running::start("");
    t.server.set_access_token_ttl(6);
    t.login("work", "alice");
    let before = t.token_requests();
    // Hold the next token request at the server: the scheduled refresh (due at half the
    // token's life) stays in flight while the 50 callers arrive.
    t.server.hold("token", true);
    wait_for(
        "the scheduled refresh to reach the server",
        Duration::from_secs(20),
        || t.server.stats().holding("token") == 1,
    );
    // The token is now within its refresh margin, so every caller needs a fresh one.
    t.server.set_access_token_ttl(3600);
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let cmd = t.env.sessctl_command(&["token", "work"]);
            std::thread::spawn(move || {
                let mut cmd = cmd;
                cmd.output().expect("run sessctl token")
            })
        })
        .collect();
    wait_for(
        "all 50 callers to join the refresh",
        Duration::from_secs(30),
        || t.daemon.log().matches("token caller waits").count() >= 50,
    );
    t.server.hold("token", false);
    let tokens: Vec<String> = callers
        .into_iter()
        .map(|c| {
            let out = c.join().expect("caller thread");
            assert!(out.status.success(), "{:?}", code_and_stderr(&out));
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .collect();
    assert_eq!(t.token_requests() - before, 1, "exactly one token request");
    assert_eq!(t.invalid_grants(), 0);
    assert!(
        tokens.iter().all(|tok| tok == &tokens[0]),
        "all callers got the same token"
    );
    assert!(token_works(&t.server, &tokens[0]));
}

#[test]
fn a_revoked_grant_makes_the_slot_inactive_after_one_request() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    t.server.revoke_grant(&grant.grant_id);
    let before = t.token_requests();
    let out = t.env.sessctl(&["refresh", "work"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("login"), "{stderr}");
    let slot = t.slot_status("work");
    assert_eq!(slot["state"], "inactive");
    assert_eq!(slot["reason"], "session_expired");
    assert_eq!(t.token_requests() - before, 1);
    // No further token request for an inactive slot, whoever asks.
    assert_eq!(t.env.sessctl(&["token", "work"]).status.code(), Some(4));
    assert_eq!(t.env.sessctl(&["refresh", "--all"]).status.code(), Some(4));
    assert_eq!(t.token_requests() - before, 1);
    let status = t.env.status_json();
    assert_eq!(status["all_inactive"], true);
    assert_eq!(t.env.sessctl(&["status"]).status.code(), Some(2));
}

#[test]
fn server_errors_rate_limits_and_resets_degrade_then_recover() {
    let t = Running::start("");
    t.login("work", "alice");
    t.server.push_faults(
        "token",
        vec![
            json!({"status": 500}),
            json!({"status": 429, "retry_after": "1"}),
            json!({"reset": true}),
            json!({"status": 200, "body": "not json"}),
        ],
    );
    let out = t.env.sessctl(&["refresh", "work"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", code_and_stderr(&out));
    let slot = t.slot_status("work");
    assert_eq!(slot["state"], "degraded");
    assert!(slot["last_refresh_error"].as_str().unwrap().contains("500"));
    // The daemon retries with backoff (1 s, 2 s, 4 s, ..., but requests at least 10 s
    // apart) until a request gets through, and the slot is never deactivated on the way.
    wait_for("the slot to recover", Duration::from_secs(90), || {
        let state = t.state("work");
        assert_ne!(state, "inactive", "a transient error deactivated the slot");
        state == "active"
    });
    assert_eq!(t.invalid_grants(), 0);
    assert!(t.token_requests() >= 5);
    assert!(token_works(&t.server, &t.token("work")));
}

#[test]
fn a_refused_client_deactivates_the_slot_as_client_rejected() {
    let mut t = Running::start("");
    t.login("work", "alice");
    // The same server, but a client it does not know: invalid_client.
    let config = config_yaml(&t.server, "", "").replace("sessctl-test", "nobody-knows-me");
    t.env.write_config(&config);
    t.crash_and_restart();
    let out = t.env.sessctl(&["refresh", "work"]);
    assert_eq!(out.status.code(), Some(4), "{:?}", code_and_stderr(&out));
    let slot = t.slot_status("work");
    assert_eq!(slot["state"], "inactive");
    assert_eq!(slot["reason"], "client_rejected");
}

#[test]
fn json_token_requests_work_like_forms() {
    let t = Running::with_provider("", "token_request: json");
    t.login("work", "alice");
    assert_eq!(t.env.sessctl(&["refresh", "work"]).status.code(), Some(0));
    assert!(token_works(&t.server, &t.token("work")));
    assert_eq!(t.invalid_grants(), 0);
}
