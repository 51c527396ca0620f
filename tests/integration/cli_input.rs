//! Bad input at the command line and in the config: clear errors, distinct exit codes,
//! nothing changed.

use crate::flows::{Running, assert_daemon_refuses_config, code_and_stderr};
use crate::support::TestEnv;

#[test]
fn login_refuses_bad_names_and_missing_tokens() {
    let t = Running::start("");
    for (args, stdin, needle) in [
        (
            &[
                "login",
                "Work",
                "--provider",
                "test",
                "--refresh-token-stdin",
            ][..],
            "tok",
            "a-z",
        ),
        (
            &[
                "login",
                "a/b",
                "--provider",
                "test",
                "--refresh-token-stdin",
            ],
            "tok",
            "a-z",
        ),
        (
            &["login", "work", "--provider", "test"],
            "tok",
            "--refresh-token-stdin",
        ),
        (
            &[
                "login",
                "work",
                "--provider",
                "test",
                "--refresh-token-stdin",
            ],
            "",
            "no refresh token",
        ),
        (
            &[
                "login",
                "work",
                "--provider",
                "test",
                "--refresh-token-stdin",
            ],
            "two words",
            "one",
        ),
        (
            &[
                "login",
                "work",
                "--provider",
                "nope",
                "--refresh-token-stdin",
            ],
            "tok",
            "no provider",
        ),
    ] {
        let out = t.env.sessctl_stdin(args, stdin);
        let (code, stderr) = code_and_stderr(&out);
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert_eq!(t.token_requests(), 0);
    assert_eq!(t.env.status_json()["slots"], serde_json::json!([]));
}

#[test]
fn a_refresh_token_the_server_refuses_creates_no_slot() {
    let t = Running::start("");
    let out = t.env.sessctl_stdin(
        &[
            "login",
            "work",
            "--provider",
            "test",
            "--refresh-token-stdin",
        ],
        "not-a-real-token",
    );
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert_eq!(t.env.status_json()["slots"], serde_json::json!([]));
}

#[test]
fn unknown_commands_and_slots_are_usage_errors_or_named() {
    let env = TestEnv::new();
    assert_eq!(env.sessctl(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(env.sessctl(&["refresh"]).status.code(), Some(64));
    assert_eq!(
        env.sessctl(&["refresh", "a", "--all"]).status.code(),
        Some(64)
    );
    let t = Running::start("");
    let out = t.env.sessctl(&["token", "ghost"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no slot named \"ghost\""), "{stderr}");
}

#[test]
fn a_bad_config_is_refused_with_file_line_and_key() {
    let env = TestEnv::new();
    for (yaml, needle) in [
        (
            "refresh_before_expiry: 5 minutes\n",
            "config.yaml:1: refresh_before_expiry",
        ),
        ("stale_after: 15m\nrefresh_befor_expiry: 5m\n", ":2"),
        (
            "providers:\n  acme:\n    token_url: http://auth.example.com/token\n    client_id: x\n",
            "providers.acme.token_url",
        ),
        ("credential_store: vault\n", "credential_store"),
        ("- just\n- a list\n", "config.yaml"),
        ("key: [unclosed\n", "config.yaml"),
    ] {
        assert_daemon_refuses_config(&env, yaml, needle);
    }
    let out = env.sessctl(&["--config", "/nonexistent/sessctl.yaml", "daemon"]);
    assert_eq!(out.status.code(), Some(78));
}
