//! No keychain at all (no session D-Bus: `DBUS_SESSION_BUS_ADDRESS` leads nowhere) is
//! reported at once: a warning naming the fix when the daemon starts, `credential_store_error`
//! in `status`, and `sessctl login` refusing before a browser opens or a token is redeemed.

use crate::flows::{Running, code_and_stderr, config_yaml};
use crate::support::{OAuthServer, TestEnv};

/// A bus address with no bus behind it.
fn nowhere(env: &TestEnv) -> String {
    format!("unix:path={}", env.root().join("no-bus").display())
}

/// The real server with every login flow, and a daemon that has no session bus.
fn start_without_bus() -> Running {
    let env = TestEnv::new();
    let server = OAuthServer::start();
    let base = server.base_url().to_owned();
    let flows = format!("authorize_url: {base}/auth?prompt=consent\n");
    env.write_config(&config_yaml(&server, "", &flows));
    let address = nowhere(&env);
    let daemon = env.start_daemon_overriding(&[("DBUS_SESSION_BUS_ADDRESS", &address)]);
    Running {
        server,
        daemon,
        env,
    }
}

#[test]
fn without_a_session_bus_the_daemon_status_and_login_say_so_at_once() {
    let t = start_without_bus();

    let log = t.daemon.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("logins cannot be stored"))
        .unwrap_or_else(|| panic!("no start-up warning in the log:\n{log}"));
    assert!(warning.contains("credential_store: file"), "{warning}");
    assert!(warning.contains("gnome-keyring"), "{warning}");

    let status = t.env.status_json();
    assert_eq!(status["credential_store"], "keychain");
    let error = status["credential_store_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("no keychain reachable"), "{status}");
    let human = t.env.sessctl(&["status"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("credential store problem"), "{human}");
    assert!(human.contains("credential_store: file"), "{human}");

    // A browser login is refused before any URL is printed or opened.
    let out = t.env.sessctl(&[
        "login",
        "work",
        "--provider",
        "test",
        "--no-browser",
        "--timeout",
        "5s",
    ]);
    let (code, stderr) = code_and_stderr(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stdout.contains("/auth"), "a URL was printed: {stdout}");
    assert!(stderr.contains("no login was started"), "{stderr}");
    assert!(stderr.contains("credential_store: file"), "{stderr}");

    // A refresh token given on stdin is not redeemed (it would be spent for nothing).
    let grant = t.server.grant("alice", "alice@example.com");
    let before = t.token_requests();
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
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("credential_store: file"), "{stderr}");
    assert_eq!(t.token_requests(), before, "the refresh token was redeemed");
    let status = t.env.status_json();
    assert_eq!(status["slots"], serde_json::json!([]), "{status}");
}
