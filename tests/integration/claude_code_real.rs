//! The real Claude Code (npm `@anthropic-ai/claude-code` 2.1.332, pinned in
//! `tests/claude-code-real/` and installed by `scripts/test.sh`) beside the real daemon over
//! one config dir in the test's temp HOME, refreshing against the test OAuth server.
//!
//! How the real binary is pointed at the test server: its token URL is fixed
//! (`https://platform.claude.com/v1/oauth/token`; `CLAUDE_CODE_CUSTOM_OAUTH_URL` only takes
//! three Anthropic hosts, and `USE_LOCAL_OAUTH` has no effect in a release build), but it
//! honours `HTTPS_PROXY` and `NODE_EXTRA_CA_CERTS`, and `CLAUDE_CODE_OAUTH_CLIENT_ID`. So
//! `tests/claude-code/real_client_proxy.cjs` answers its CONNECTs to platform.claude.com and
//! api.anthropic.com itself, with a certificate from a CA made for this test (openssl): the
//! token request goes unchanged to the test server, and a stand-in for the messages API
//! checks the bearer token against the test server and streams "pong". Every other host is
//! refused; nothing leaves the machine, and the environment is cleared so no real
//! `~/.claude`, API key or proxy setting reaches it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::flows::{Running, assert_success};
use crate::support::claude_code::{
    access_token_in, adopt, first_line, now_ms, spawn_node, write_store,
};
use crate::support::oauth_server::CLIENT_ID;
use crate::support::process::ChildGuard;

/// Claude Code's login scopes but `org:create_api_key` (what it asks for again on every
/// refresh), plus what the test server needs to issue a refresh token.
const SCOPES: &str = "openid email offline_access user:profile user:inference \
                      user:sessions:claude_code user:mcp_servers user:file_upload";

/// Token lifetime: under Claude Code's 5 minutes, so every run of `claude` refreshes first.
const TTL_SECS: u64 = 30;

/// Runs of `claude -p`.
const RUNS: u64 = 10;

/// The native binary of the pinned package for this machine.
fn claude_binary() -> PathBuf {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "x64",
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "tests/claude-code-real/node_modules/@anthropic-ai/claude-code-linux-{arch}/claude"
    ));
    assert!(
        path.is_file(),
        "the real Claude Code is not installed: run scripts/test.sh (or `npm ci --prefix tests/claude-code-real`)"
    );
    path
}

/// A CA and a certificate for Claude Code's two hosts signed by it, in `dir`.
fn make_certs(dir: &Path) {
    fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:platform.claude.com,DNS:api.anthropic.com\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    for args in [
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=sessctl-test-CA",
        "req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj /CN=platform.claude.com",
        "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext",
    ] {
        let out = Command::new("openssl")
            .args(args.split(' '))
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/test.sh installs it)");
        assert_success(&out, "openssl");
    }
}

/// `real_client_proxy.cjs`, killed on drop.
struct Proxy {
    child: Child,
    port: u64,
    log: PathBuf,
}

impl Proxy {
    fn start(t: &Running, certs: &Path) -> Proxy {
        let log = certs.join("proxy.jsonl");
        let args = [
            t.server.base_url(),
            certs.to_str().unwrap(),
            log.to_str().unwrap(),
        ];
        let mut child = spawn_node("real_client_proxy.cjs", &args);
        let line = first_line(&mut child);
        let ready: Value = serde_json::from_str(&line).expect("proxy ready line");
        let port = ready["port"].as_u64().unwrap();
        Proxy { child, port, log }
    }

    /// Every request the proxy served or refused, as logged.
    fn entries(&self) -> Vec<Value> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `claude -p hi` with `CLAUDE_CONFIG_DIR=dir`, only the environment it needs.
fn claude(t: &Running, dir: &Path, proxy: &Proxy, certs: &Path) -> Command {
    let mut cmd = Command::new(claude_binary());
    cmd.args(["-p", "hi"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", t.env.home())
        .env("CLAUDE_CONFIG_DIR", dir)
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{}", proxy.port))
        .env("NODE_EXTRA_CA_CERTS", certs.join("ca.pem"))
        .env("CLAUDE_CODE_OAUTH_CLIENT_ID", CLIENT_ID)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1");
    cmd
}

#[test]
fn the_real_claude_code_and_the_daemon_share_a_store_without_reuse() {
    let t = Running::start("");
    t.server.set_access_token_ttl(TTL_SECS);
    let certs = t.env.home().join("certs");
    fs::create_dir_all(&certs).unwrap();
    make_certs(&certs);
    let proxy = Proxy::start(&t, &certs);
    let dir = t.env.home().join(".claude-work");
    fs::create_dir_all(&dir).unwrap();
    let grant = t
        .server
        .grant_with_scope("work", "work@example.com", SCOPES);
    let reply = t.server.refresh(&grant.refresh_token);
    write_store(
        &dir,
        &json!({"claudeAiOauth": {
            "accessToken": reply.field("access_token"),
            "refreshToken": reply.field("refresh_token"),
            "expiresAt": now_ms() + 1000 * i64::try_from(TTL_SECS).unwrap(),
            "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
            "subscriptionType": "max",
        }}),
    );
    assert_success(&adopt(&t, "work", &dir), "adopt");
    let before = t.server.stats().grant_type("refresh_token");
    for run in 0..RUNS {
        // Every other run, the daemon is asked to refresh twice: first it catches up (it
        // adopts Claude Code's last rotation and sends nothing), then it refreshes while
        // Claude Code starts and refreshes too: the locks decide who goes first.
        let race = run % 2 == 1;
        if race {
            assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
        }
        let mut cmd = claude(&t, &dir, &proxy, &certs);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut started = ChildGuard::spawn(cmd, "claude");
        if race {
            assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
        }
        let status = started.wait_timeout(Duration::from_secs(120));
        let (mut said, mut complaint) = (String::new(), String::new());
        let child = started.child_mut();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut said)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut complaint)
            .unwrap();
        assert!(
            status.success() && said.trim() == "pong",
            "claude run {run}: {status}: {said}\n{complaint}"
        );
    }
    let entries = proxy.entries();
    let sent_by_claude = entries
        .iter()
        .filter(|e| e["path"] == "/v1/oauth/token")
        .inspect(|e| assert_eq!(e["status"], 200, "{e}"))
        .count() as u64;
    let messages: Vec<_> = entries
        .iter()
        .filter(|e| e["path"] == "/v1/messages")
        .collect();
    assert!(messages.len() as u64 >= RUNS, "{entries:?}");
    assert!(
        messages.iter().all(|e| e["token_works"] == true),
        "{entries:?}"
    );
    let rotations = t.server.stats().grant_type("refresh_token") - before;
    let sent_by_daemon = rotations - sent_by_claude;
    eprintln!("{rotations} rotations: Claude Code {sent_by_claude}, daemon {sent_by_daemon}");
    assert!(sent_by_claude > 0 && sent_by_daemon > 0, "{entries:?}");
    // The daemon found Claude Code's rotations under the lock and took them, sending nothing.
    assert!(
        t.daemon.log().contains("rotated by another program"),
        "{}",
        t.daemon.log()
    );
    assert_eq!(t.invalid_grants(), 0, "{}", t.daemon.log());
    assert!(
        t.server.grant_exists(&grant.grant_id),
        "the grant was revoked"
    );
    let stored = access_token_in(&dir);
    // Through the endpoint that takes tokens of Claude's scopes (userinfo needs `openid`).
    let works = |token: &str| t.server.get_with_bearer("/api/oauth/usage", token).status == 200;
    assert!(works(&stored), "the store's token");
    assert!(works(&t.token("work")), "the daemon's token");
    assert_eq!(t.state("work"), "active");
}
