//! The built-in `claude` provider's requests have Claude Code's shapes, checked on the exact
//! requests the real test server receives (its request recorder, credentials redacted): only
//! the endpoints and scopes are pointed at the test server, every shape is the built-in's.
//! A provider made in the config keeps the RFC shapes (form bodies, sessctl's client headers).

use std::time::Duration;

use serde_json::{Value, json};

use crate::flows::{Running, assert_success};
use crate::login_flows::{LOGIN_DEADLINE, login_in_background, visit};
use crate::support::{OAuthServer, TestEnv, UserAgent, wait_for};

/// Claude Code's login scopes, plus the two the test server needs to issue a refresh token.
const LOGIN_SCOPES: &str = "openid offline_access org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload";
/// What Claude Code sends as `scope` with a refresh: its login scopes but `org:create_api_key`.
const REFRESH_SCOPE: &str =
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload";

/// The built-in `claude` with only its endpoints, client and login scopes moved to `server`.
pub(crate) fn claude_pointed_at(server: &OAuthServer) -> String {
    let base = server.base_url();
    let scopes = LOGIN_SCOPES.split(' ').collect::<Vec<_>>().join(", ");
    format!(
        "providers:\n  claude:\n    token_url: {base}/token\n    client_id: sessctl-test\n    \
         authorize_url: {base}/auth?prompt=consent\n    manual_redirect_uri: {base}/manual-code\n    \
         revoke_url: {base}/token/revocation\n    usage_url: {base}/api/oauth/usage\n    \
         scopes: [{scopes}]\n"
    )
}

/// The recorded requests to `target` whose body has `grant_type` (any, when `None`).
fn requests_to(server: &OAuthServer, target: &str, grant_type: Option<&str>) -> Vec<Value> {
    server
        .requests()
        .into_iter()
        .filter(|r| r["target"] == target)
        .filter(|r| grant_type.is_none_or(|g| r["body"]["grant_type"] == g))
        .collect()
}

/// The one recorded request to `target` (with `grant_type`), or a panic listing them all.
fn only_request(server: &OAuthServer, target: &str, grant_type: Option<&str>) -> Value {
    let found = requests_to(server, target, grant_type);
    assert_eq!(found.len(), 1, "{target} {grant_type:?}: {found:#?}");
    found.into_iter().next().expect("one request")
}

/// The body's field names, sorted.
fn body_keys(request: &Value) -> Vec<String> {
    let mut keys: Vec<String> = request["body"]
        .as_object()
        .expect("a body object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// A JSON body whose only header set by sessctl is `Content-Type: application/json`: no
/// `User-Agent`, no `anthropic-beta`, no `Accept` but reqwest's own `*/*` (see
/// `config::TokenHeaders::Minimal`), and nothing beyond what HTTP itself needs.
fn assert_claude_code_token_request(request: &Value) {
    let what = format!("{request:#}");
    assert_eq!(request["method"], "POST", "{what}");
    assert_eq!(request["body_format"], "json", "{what}");
    let headers = request["headers"].as_object().expect("headers");
    assert_eq!(headers["content-type"], "application/json", "{what}");
    assert!(headers.get("user-agent").is_none(), "{what}");
    assert!(headers.get("anthropic-beta").is_none(), "{what}");
    assert!(headers.get("accept").is_none_or(|a| a == "*/*"), "{what}");
    let mut names: Vec<&str> = headers.keys().map(String::as_str).collect();
    names.sort_unstable();
    let allowed = ["accept", "content-length", "content-type", "host"];
    assert!(names.iter().all(|n| allowed.contains(n)), "{what}");
}

#[test]
fn the_claude_provider_sends_claude_codes_requests() {
    let env = TestEnv::new();
    let server = OAuthServer::start();
    env.write_config(&claude_pointed_at(&server));
    let daemon = env.start_daemon();
    let run = Running {
        server,
        daemon,
        env,
    };
    run.server.add_account("alice", "alice@example.com");

    // Login: PKCE S256, the redirect names `localhost`, and the listener there answers.
    let (login, url) = login_in_background(&run, &["login", "work", "--provider", "claude"]);
    let url = reqwest::Url::parse(&url).expect("authorize URL");
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    assert_eq!(param("code_challenge_method"), "S256");
    assert_eq!(param("scope"), LOGIN_SCOPES);
    let redirect_uri = param("redirect_uri");
    assert!(
        redirect_uri.starts_with("http://localhost:") && redirect_uri.ends_with("/callback"),
        "{redirect_uri}"
    );
    let redirect = UserAgent::new(run.server.base_url()).authorize(url.as_str(), "alice");
    assert!(redirect.starts_with("http://localhost:"), "{redirect}");
    let (status, page) = visit(&redirect);
    assert_success(&login.wait(LOGIN_DEADLINE), "login");
    assert_eq!(status, 200, "{page}");

    let exchange = only_request(&run.server, "token", Some("authorization_code"));
    assert_claude_code_token_request(&exchange);
    assert_eq!(
        body_keys(&exchange),
        [
            "client_id",
            "code",
            "code_verifier",
            "grant_type",
            "redirect_uri",
            "state"
        ]
    );
    assert_eq!(exchange["body"]["redirect_uri"], redirect_uri.as_str());
    assert_eq!(exchange["body"]["code"], "[redacted]");

    // Refresh: the JSON body Claude Code sends, with `scope`.
    assert_success(&run.env.sessctl(&["refresh", "work"]), "refresh");
    let refresh = only_request(&run.server, "token", Some("refresh_token"));
    assert_claude_code_token_request(&refresh);
    assert_eq!(
        body_keys(&refresh),
        ["client_id", "grant_type", "refresh_token", "scope"]
    );
    assert_eq!(refresh["body"]["scope"], REFRESH_SCOPE);
    assert_eq!(refresh["body"]["client_id"], "sessctl-test");
    let token = run.token("work");
    let usage = run.server.get_with_bearer("/api/oauth/usage", &token);
    assert_eq!(
        usage.status, 200,
        "the refreshed token works: {:?}",
        usage.body
    );

    // Usage: the only request that carries `anthropic-beta` (the daemon's, not the test's
    // own check of the token above).
    let from_sessctl = || {
        requests_to(&run.server, "usage", None)
            .into_iter()
            .filter(|r| {
                r["headers"]["user-agent"]
                    .as_str()
                    .is_some_and(|ua| ua.starts_with("sessctl/"))
            })
            .collect::<Vec<_>>()
    };
    wait_for(
        "a usage request from the daemon",
        Duration::from_secs(30),
        || !from_sessctl().is_empty(),
    );
    for request in from_sessctl() {
        assert_eq!(request["method"], "GET");
        assert_eq!(request["headers"]["authorization"], "Bearer [redacted]");
        assert_eq!(request["headers"]["anthropic-beta"], "oauth-2025-04-20");
    }

    // Logout: Claude Code's revocation body, as JSON.
    assert_success(&run.env.sessctl(&["logout", "work"]), "logout");
    let revoke = only_request(&run.server, "revocation", None);
    assert_claude_code_token_request(&revoke);
    assert_eq!(
        revoke["body"],
        json!({"token": "[redacted]", "token_type_hint": "refresh_token", "client_id": "sessctl-test"})
    );
    assert_eq!(run.server.stats().revocations, 1);
    assert!(
        run.server.stats().errors.is_empty(),
        "{:?}",
        run.server.stats()
    );
}

#[test]
fn a_configured_provider_keeps_form_bodies_and_its_client_headers() {
    let run = Running::start("");
    run.login("work", "alice");
    assert_success(&run.env.sessctl(&["refresh", "work"]), "refresh");
    // The last: the login redeemed a refresh token too.
    let refresh = requests_to(&run.server, "token", Some("refresh_token"))
        .pop()
        .expect("the refresh reached the server");
    assert_eq!(refresh["body_format"], "form", "{refresh:#}");
    assert_eq!(
        body_keys(&refresh),
        ["client_id", "grant_type", "refresh_token"]
    );
    let headers = &refresh["headers"];
    assert!(
        headers["user-agent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("sessctl/")),
        "{refresh:#}"
    );
    assert_eq!(headers["accept"], "application/json");
    assert_success(&run.env.sessctl(&["logout", "work"]), "logout");
    let revoke = only_request(&run.server, "revocation", None);
    assert_eq!(revoke["body_format"], "form", "{revoke:#}");
    assert_eq!(
        revoke["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
}
