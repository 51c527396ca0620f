//! Steps many integration tests share: a daemon with a logged-in slot, reading a token,
//! checking a token at the real server.

use std::process::Output;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Daemon, Grant, OAuthServer, TestEnv, wait_for};

/// A test environment with the real OAuth server, a config naming it as provider `test`
/// (plus `extra` YAML at the top level), and a running daemon.
pub struct Running {
    pub server: OAuthServer,
    pub daemon: Daemon,
    // Declared last: dropped after the daemon, so the bus outlives the daemon.
    pub env: TestEnv,
}

impl Running {
    pub fn start(extra: &str) -> Running {
        Running::with_provider(extra, "")
    }

    /// Like [`Running::start`], with `provider_extra` lines inside the provider's entry.
    pub fn with_provider(extra: &str, provider_extra: &str) -> Running {
        let env = TestEnv::new();
        let server = OAuthServer::start();
        env.write_config(&config_yaml(&server, extra, provider_extra));
        let daemon = env.start_daemon();
        Running {
            server,
            daemon,
            env,
        }
    }

    /// Simulates a crash (`kill -9`) and starts a new daemon in the same environment.
    pub fn crash_and_restart(&mut self) {
        self.daemon.kill9();
        assert!(
            self.env.socket_path().exists(),
            "kill -9 leaves the socket behind"
        );
        self.daemon = self.env.start_daemon();
    }

    /// Starts `sessctl refresh SLOT` in the background with the server holding back its
    /// answer for `delay_ms`, and returns once the request has reached the server: the
    /// refresh is in flight. Join the handle for the command's output.
    pub fn refresh_in_flight(&self, slot: &str, delay_ms: u64) -> JoinHandle<Output> {
        self.server
            .push_faults("token", vec![serde_json::json!({ "delay_ms": delay_ms })]);
        let before = self.token_requests();
        let mut refresh = self.env.sessctl_command(&["refresh", slot]);
        let handle = std::thread::spawn(move || refresh.output().expect("run sessctl refresh"));
        wait_for(
            "the refresh to reach the server",
            Duration::from_secs(20),
            || self.token_requests() > before,
        );
        handle
    }

    /// Mints a grant for `account` at the server and logs slot `slot` in with it.
    pub fn login(&self, slot: &str, account: &str) -> Grant {
        let grant = self
            .server
            .grant(account, &format!("{account}@example.com"));
        let stored = || self.daemon.log().matches("tokens stored").count();
        let before = stored();
        let out = self.env.sessctl_stdin(
            &["login", slot, "--provider", "test", "--refresh-token-stdin"],
            &grant.refresh_token,
        );
        assert_success(&out, "login");
        // A login is answered once journaled, and the keychain write follows; tests read or
        // disturb the keychain next, so they start once it has the tokens. (A slot in
        // Claude Code's store is answered once that store has them.)
        if !String::from_utf8_lossy(&out.stdout).contains("Claude Code") {
            wait_for(
                "the login's tokens in the keychain",
                Duration::from_secs(60),
                || stored() > before,
            );
        }
        grant
    }

    /// `sessctl token SLOT`, which must succeed; returns the token.
    pub fn token(&self, slot: &str) -> String {
        let out = self.env.sessctl(&["token", slot]);
        assert_success(&out, "token");
        let token = String::from_utf8(out.stdout).expect("token is UTF-8");
        let token = token.trim_end_matches('\n');
        assert!(
            !token.is_empty() && !token.contains('\n'),
            "token output: {token:?}"
        );
        token.to_owned()
    }

    /// The slot's entry in `status --json`.
    pub fn slot_status(&self, slot: &str) -> Value {
        let status = self.env.status_json();
        status["slots"]
            .as_array()
            .and_then(|slots| slots.iter().find(|s| s["name"] == slot).cloned())
            .unwrap_or_else(|| panic!("slot {slot} not in status: {status}"))
    }

    /// The slot's `state` in `status --json`.
    pub fn state(&self, slot: &str) -> String {
        self.slot_status(slot)["state"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Token requests the server has seen so far.
    pub fn token_requests(&self) -> u64 {
        self.server.stats().token_requests
    }

    /// `invalid_grant` replies the server has given so far.
    pub fn invalid_grants(&self) -> u64 {
        self.server.stats().errors("invalid_grant")
    }
}

/// A config naming the real server as provider `test`: `top` is added at the top level,
/// `provider_extra` (lines like `token_request: json`) inside the provider.
pub fn config_yaml(server: &OAuthServer, top: &str, provider_extra: &str) -> String {
    let base = server.base_url();
    let extra: String = provider_extra
        .lines()
        .flat_map(|line| ["    ", line, "\n"])
        .collect();
    format!(
        "{top}\nproviders:\n  test:\n    token_url: {base}/token\n    client_id: sessctl-test\n    revoke_url: {base}/token/revocation\n    userinfo_url: {base}/me\n    usage_url: {base}/api/oauth/usage\n    scopes: [openid, email, offline_access]\n{extra}"
    )
}

/// True when the real server accepts `token` as a bearer token (its userinfo endpoint).
pub fn token_works(server: &OAuthServer, token: &str) -> bool {
    let reply = crate::support::http_client()
        .get(format!("{}/me", server.base_url()))
        .bearer_auth(token)
        .send()
        .expect("userinfo request");
    reply.status().is_success()
}

/// Panics with the command's output unless it exited 0.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `yaml` as the config and checks the daemon refuses to start with it: exit 78
/// (bad config), no panic, and a message containing `needle` (`file:line: key`).
pub fn assert_daemon_refuses_config(env: &TestEnv, yaml: &str, needle: &str) {
    env.write_config(yaml);
    let out = env.sessctl(&["daemon"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(78), "{yaml:?}: {stderr}");
    assert!(stderr.contains(needle), "{yaml:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The command's exit code and stderr, for asserting on failures.
pub fn code_and_stderr(out: &Output) -> (Option<i32>, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
