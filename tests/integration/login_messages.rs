//! A failed login says its cause once, with advice that fits it: the real `sessctl login`
//! and daemon, against a token endpoint that cannot resolve and against the real OAuth
//! server with a spent refresh token or a refused code.
//!
//! The unresolvable endpoint (`.invalid`, RFC 2606; https, as the config requires for any
//! host but loopback) is asked from a daemon in a network namespace of its own (`unshare
//! --net`, util-linux): its name lookup fails there at once and no query leaves this
//! machine, as tests here must only use loopback addresses.

use serde_json::{Value, json};

use crate::flows::{Running, assert_success, code_and_stderr};
use crate::socket::{error_code, exchange};
use crate::support::TestEnv;

/// What the CLI prints when the token endpoint's host does not resolve.
const DNS_ADVICE: &str = "cannot resolve nonexistent.invalid: check the network connection, DNS or proxy settings (HTTPS_PROXY)";

/// A `sessctl` that runs in a network namespace of its own (only a loopback that is down):
/// the daemon it starts can reach its socket, the keychain's bus and files, but no network.
fn without_network(env: &TestEnv) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = env.root().join("sessctl-without-network");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec unshare --map-current-user --net -- {} \"$@\"\n",
            crate::support::sessctl::SESSCTL
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

#[test]
fn a_login_against_an_unresolvable_token_endpoint_gives_the_dns_advice_once() {
    let env = TestEnv::new();
    env.write_config(
        "providers:\n  offline:\n    token_url: https://nonexistent.invalid/token\n    client_id: sessctl-test\n",
    );
    let _daemon = env.start_daemon_of(&without_network(&env), &[]);
    let token = "rt-never-printed-1234";
    let out = env.sessctl_stdin(
        &[
            "login",
            "work",
            "--provider",
            "offline",
            "--refresh-token-stdin",
        ],
        token,
    );
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.matches(DNS_ADVICE).count(), 1, "{stderr}");
    assert!(!stderr.contains("failed"), "a second 'failed': {stderr}");
    assert!(!stderr.contains("try again"), "weak advice: {stderr}");
    assert!(!stderr.contains(token), "the token was printed: {stderr}");
}

#[test]
fn a_spent_refresh_token_login_says_to_get_a_new_one() {
    let t = Running::start("");
    let grant = t.server.grant("acct-spent", "spent@example.com");
    let first = t.env.sessctl_stdin(
        &[
            "login",
            "work",
            "--provider",
            "test",
            "--refresh-token-stdin",
        ],
        &grant.refresh_token,
    );
    assert_success(&first, "the first login");
    // The daemon has redeemed (rotated) it: presenting it again is refused.
    let again = t.env.sessctl_stdin(
        &[
            "login",
            "home",
            "--provider",
            "test",
            "--refresh-token-stdin",
        ],
        &grant.refresh_token,
    );
    let (code, stderr) = code_and_stderr(&again);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid_grant): it is spent or revoked; get a new refresh token"),
        "{stderr}"
    );
    assert!(!stderr.contains("failed"), "{stderr}");
    assert!(!stderr.contains(&grant.refresh_token), "{stderr}");
}

/// A code the provider refuses (`invalid_grant`) on a pasted-code login: the message says
/// the code expired or was already used and to log in again, and never shows the code.
#[test]
fn a_refused_authorization_code_says_to_log_in_again() {
    let run = crate::login_flows::start();
    let send = |request: Value| {
        let mut line = serde_json::to_vec(&request).expect("json");
        line.push(b'\n');
        exchange(&run, &line)
    };
    let begun = send(
        json!({"v": 1, "type": "login_begin", "name": "work", "provider": "test",
                            "flow": {"kind": "manual"}, "timeout_secs": 60}),
    );
    let flow_id = begun["ok"]["flow_id"].as_str().expect("a flow id");
    let url = url::Url::parse(begun["ok"]["authorize_url"].as_str().expect("a URL"))
        .expect("authorize URL");
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state");
    let code = "code-never-issued-5678";
    let refused = send(json!({"v": 1, "type": "login_complete", "flow_id": flow_id,
                              "code": code, "state": state}));
    assert_eq!(error_code(&refused), "login_failed", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "the provider refused the authorization code (invalid_grant): it expired or was already used; log in again: sessctl login work --provider test"
        ),
        "{message}"
    );
    assert!(!message.contains(code), "{message}");
}
