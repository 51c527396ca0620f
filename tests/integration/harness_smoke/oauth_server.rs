//! The test OAuth server behaves like the real provider it is (rotation, reuse detection,
//! revocation, userinfo) and its fault and hold layer does what tests will rely on.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{OAuthServer, wait_for};

#[test]
fn refresh_rotates_the_token_and_reusing_an_old_one_revokes_the_whole_grant() {
    let server = OAuthServer::start();
    let grant = server.grant("alice", "alice@example.com");
    assert!(server.grant_exists(&grant.grant_id));

    let first = server.refresh(&grant.refresh_token);
    assert_eq!(first.status, 200, "{first:?}");
    let rotated = first.field("refresh_token").to_owned();
    assert_ne!(rotated, grant.refresh_token, "refresh tokens rotate");
    assert_eq!(first.body["expires_in"], 3600);
    assert!(
        first.body["id_token"].is_string(),
        "openid scope gives an id_token"
    );

    let second = server.refresh(&rotated);
    assert_eq!(second.status, 200, "the rotated token works: {second:?}");
    let latest = second.field("refresh_token").to_owned();

    let reuse = server.refresh(&rotated);
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.body["error"], "invalid_grant");
    let after = server.refresh(&latest);
    assert_eq!(
        after.body["error"], "invalid_grant",
        "reuse revoked the grant, so even the newest token fails"
    );
    assert!(!server.grant_exists(&grant.grant_id));

    let stats = server.stats();
    assert_eq!(stats.token_requests, 4);
    assert_eq!(stats.grant_type("refresh_token"), 4);
    assert_eq!(stats.errors("invalid_grant"), 2);
}

#[test]
fn json_token_request_is_answered_like_a_form_one() {
    let server = OAuthServer::start();
    let grant = server.grant("alice", "alice@example.com");
    let reply = server.refresh_json(&grant.refresh_token);
    assert_eq!(reply.status, 200, "{reply:?}");
    let next = server.refresh(reply.field("refresh_token"));
    assert_eq!(
        next.status, 200,
        "the token from a JSON request rotates normally"
    );
    assert_eq!(server.stats().grant_type("refresh_token"), 2);
}

#[test]
fn userinfo_and_usage_answer_for_a_fresh_access_token_only() {
    let server = OAuthServer::start();
    let grant = server.grant("bob", "bob@example.com");
    let reply = server.refresh(&grant.refresh_token);
    let access = reply.field("access_token");

    let me = server.get_with_bearer("/me", access);
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["email"], "bob@example.com");
    assert_eq!(me.body["sub"], "bob");

    let usage = server.get_with_bearer("/api/oauth/usage", access);
    assert_eq!(usage.status, 200, "{usage:?}");
    assert_eq!(usage.body["five_hour"]["utilization"], 16.0);
    assert_eq!(usage.body["seven_day"]["utilization"], 42.0);
    assert!(usage.body["seven_day"]["resets_at"].is_string());
    assert!(usage.body["seven_day_opus"].is_null());

    server.set_usage(
        "bob",
        json!({"five_hour": {"utilization": 99.5, "resets_at": "2030-01-01T00:00:00Z"}}),
    );
    let changed = server.get_with_bearer("/api/oauth/usage", access);
    assert_eq!(changed.body["five_hour"]["utilization"], 99.5);

    let bogus = server.get_with_bearer("/api/oauth/usage", "not-a-token");
    assert_eq!(bogus.status, 401);
    assert_eq!(bogus.body["error"], "invalid_token");

    server.revoke_grant(&grant.grant_id);
    assert_eq!(server.get_with_bearer("/me", access).status, 401);
    assert_eq!(
        server.get_with_bearer("/api/oauth/usage", access).status,
        401
    );
    let stats = server.stats();
    assert_eq!((stats.userinfo_requests, stats.usage_requests), (2, 4));
}

#[test]
fn revoking_the_refresh_token_ends_the_session_on_the_server() {
    let server = OAuthServer::start();
    let grant = server.grant("carol", "carol@example.com");
    let form = [
        ("token", grant.refresh_token.as_str()),
        ("token_type_hint", "refresh_token"),
        ("client_id", "sessctl-test"),
    ];
    let reply = crate::support::http_client()
        .post(format!("{}/token/revocation", server.base_url()))
        .form(&form)
        .send()
        .expect("revocation request");
    assert_eq!(reply.status(), 200);
    assert!(!server.grant_exists(&grant.grant_id));
    assert_eq!(
        server.refresh(&grant.refresh_token).body["error"],
        "invalid_grant"
    );
    assert_eq!(server.stats().revocations, 1);
}

#[test]
fn access_token_lifetime_follows_the_admin_setting() {
    let server = OAuthServer::start();
    let grant = server.grant("dave", "dave@example.com");
    server.set_access_token_ttl(5);
    let reply = server.refresh(&grant.refresh_token);
    assert_eq!(reply.body["expires_in"], 5);
}

#[test]
fn each_queued_fault_answers_one_request_then_requests_pass_through() {
    let server = OAuthServer::start();
    let grant = server.grant("erin", "erin@example.com");
    server.push_faults(
        "token",
        vec![
            json!({"status": 500}),
            json!({"status": 429, "retry_after": "1"}),
            json!({"status": 200, "body": "not json"}),
            json!({"reset": true}),
            json!({"delay_ms": 300}),
        ],
    );
    let url = format!("{}/token", server.base_url());
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "sessctl-test"),
        ("refresh_token", grant.refresh_token.as_str()),
    ];
    let client = crate::support::http_client();
    let send = || client.post(&url).form(&form).send();

    assert_eq!(send().expect("500 reply").status(), 500);
    let limited = send().expect("429 reply");
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    let garbage = send().expect("garbage reply");
    assert_eq!(garbage.status(), 200);
    assert_eq!(garbage.text().expect("body"), "not json");
    assert!(send().is_err(), "a reset fault drops the connection");

    let started = Instant::now();
    let delayed = send().expect("delayed reply");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(delayed.status(), 200, "a delay fault passes through");

    let stats = server.stats();
    assert_eq!(stats.token_requests, 5, "faulted requests still count");
    assert_eq!((stats.errors("http_500"), stats.errors("http_429")), (1, 1));
    assert_eq!(
        server.refresh(&grant.refresh_token).body["error"],
        "invalid_grant",
        "the queue is empty again: the real provider answers"
    );
}

#[test]
fn held_token_request_completes_only_after_the_hold_is_released() {
    let server = OAuthServer::start();
    let grant = server.grant("frank", "frank@example.com");
    server.hold("token", true);
    let url = format!("{}/token", server.base_url());
    let token = grant.refresh_token.clone();
    let request = thread::spawn(move || {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", "sessctl-test"),
            ("refresh_token", token.as_str()),
        ];
        let reply = crate::support::http_client().post(url).form(&form).send();
        reply.expect("held request").status().as_u16()
    });
    wait_for(
        "the token request to be held",
        Duration::from_secs(10),
        || server.stats().holding("token") == 1,
    );
    assert!(!request.is_finished());
    assert_eq!(server.stats().held, 1);

    server.hold("token", false);
    assert_eq!(request.join().expect("request thread"), 200);
    assert_eq!(server.stats().holding("token"), 0);
}

#[test]
fn provider_yaml_names_this_servers_endpoints_and_takes_extra_keys() {
    let server = OAuthServer::start();
    let yaml = server.provider_yaml("test") + "    token_request: json\n";
    let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("valid YAML");
    let provider = &parsed["providers"]["test"];
    let base = server.base_url();
    assert_eq!(
        provider["token_url"].as_str(),
        Some(&*format!("{base}/token"))
    );
    assert_eq!(provider["client_id"].as_str(), Some("sessctl-test"));
    assert_eq!(
        provider["revoke_url"].as_str(),
        Some(&*format!("{base}/token/revocation"))
    );
    assert_eq!(
        provider["userinfo_url"].as_str(),
        Some(&*format!("{base}/me"))
    );
    assert_eq!(
        provider["usage_url"].as_str(),
        Some(&*format!("{base}/api/oauth/usage"))
    );
    assert_eq!(provider["scopes"].as_sequence().map(Vec::len), Some(3));
    assert_eq!(provider["token_request"].as_str(), Some("json"));
}

#[test]
fn drop_response_fault_rotates_the_token_but_loses_the_reply() {
    let server = OAuthServer::start();
    let grant = server.grant("gina", "gina@example.com");
    server.push_faults("token", vec![json!({"drop_response": true})]);
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "sessctl-test"),
        ("refresh_token", grant.refresh_token.as_str()),
    ];
    let lost = crate::support::http_client()
        .post(format!("{}/token", server.base_url()))
        .form(&form)
        .send();
    assert!(lost.is_err(), "the reply is lost: {lost:?}");
    let retry = server.refresh(&grant.refresh_token);
    assert_eq!(
        retry.body["error"], "invalid_grant",
        "the lost request did rotate, so the old token is now a reuse"
    );
    assert!(!server.grant_exists(&grant.grant_id));
}

#[test]
fn faults_apply_to_usage_and_userinfo_too() {
    let server = OAuthServer::start();
    let grant = server.grant("hank", "hank@example.com");
    let access = server
        .refresh(&grant.refresh_token)
        .field("access_token")
        .to_owned();
    server.push_faults("usage", vec![json!({"status": 503})]);
    server.push_faults("userinfo", vec![json!({"status": 200, "body": "<html>"})]);
    assert_eq!(
        server.get_with_bearer("/api/oauth/usage", &access).status,
        503
    );
    assert_eq!(
        server.get_with_bearer("/api/oauth/usage", &access).status,
        200
    );
    let garbage = server.get_with_bearer("/me", &access);
    assert_eq!((garbage.status, garbage.body.is_null()), (200, true));
    assert_eq!(
        server.get_with_bearer("/me", &access).body["email"],
        "hank@example.com"
    );
}
