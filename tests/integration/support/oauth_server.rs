//! `OAuthServer`: the real OAuth server (`tests/oauth-server/server.mjs`, node-oidc-provider)
//! as a child process, with typed wrappers for its admin API. Owns the node process; the
//! server's behaviour itself lives in server.mjs.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::env::KEEP_DIRS_VAR;
use super::process::ChildGuard;

/// How long node gets to load oidc-provider and listen: well under a second normally, but a
/// 2-core CI machine running two heavy tests beside it once took over 30 s.
const READY_DEADLINE: Duration = Duration::from_secs(90);
/// Per admin request: they are local and immediate.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The public client configured in server.mjs.
pub const CLIENT_ID: &str = "sessctl-test";

static NEXT_LOG: AtomicUsize = AtomicUsize::new(0);

/// A refresh token minted for an account, as if it had just logged in.
#[derive(Debug, Clone, Deserialize)]
pub struct Grant {
    pub refresh_token: String,
    pub grant_id: String,
}

/// The server's request counters (`GET /admin/stats`).
#[derive(Debug, Clone, Deserialize)]
pub struct Stats {
    /// Requests that reached `/token` (faulted ones included).
    pub token_requests: u64,
    /// When each token request arrived, in ms since the epoch (the newest 1000).
    pub token_request_times_ms: Vec<u64>,
    pub by_grant_type: BTreeMap<String, u64>,
    /// Error replies by OAuth `error` code; injected faults count as `http_<status>`.
    pub errors: BTreeMap<String, u64>,
    pub revocations: u64,
    pub usage_requests: u64,
    /// When each usage request arrived, in ms since the epoch (the newest 1000).
    pub usage_request_times_ms: Vec<u64>,
    pub userinfo_requests: u64,
    /// Requests that were held (cumulative).
    pub held: u64,
    /// Requests waiting on a hold right now, by target.
    pub holding: BTreeMap<String, u64>,
    /// Replies held back right now (the provider has processed their requests), by target.
    #[serde(default)]
    pub holding_replies: BTreeMap<String, u64>,
    /// Requests being served right now, by target.
    #[serde(default)]
    pub in_flight: BTreeMap<String, u64>,
    /// The most requests ever served at once since the last stats reset, by target.
    #[serde(default)]
    pub in_flight_max: BTreeMap<String, u64>,
}

impl Stats {
    /// Error replies with this OAuth `error` code (0 when none).
    pub fn errors(&self, code: &str) -> u64 {
        self.errors.get(code).copied().unwrap_or(0)
    }
    /// Token requests with this grant type (0 when none).
    pub fn grant_type(&self, grant_type: &str) -> u64 {
        self.by_grant_type.get(grant_type).copied().unwrap_or(0)
    }
    /// Requests to `target` waiting on a hold right now.
    pub fn holding(&self, target: &str) -> u64 {
        self.holding.get(target).copied().unwrap_or(0)
    }
    /// Replies of `target` held back right now, their requests already processed.
    pub fn holding_replies(&self, target: &str) -> u64 {
        self.holding_replies.get(target).copied().unwrap_or(0)
    }
}

/// A token endpoint reply as a test sees it: status and parsed JSON body (`Null` if not JSON).
#[derive(Debug, Clone)]
pub struct TokenReply {
    pub status: u16,
    pub body: Value,
}

impl TokenReply {
    /// The body's string field `name`, or a panic showing the whole reply.
    pub fn field(&self, name: &str) -> &str {
        self.body[name]
            .as_str()
            .unwrap_or_else(|| panic!("no string field {name:?} in token reply {self:?}"))
    }
}

/// The running server; killed in Drop (its log is printed if the test is panicking).
pub struct OAuthServer {
    base_url: String,
    http: reqwest::blocking::Client,
    log_path: PathBuf,
    // Kept open: the server exits when its stdin closes (EXIT_WITH_STDIN), even if we die.
    _stdin: ChildStdin,
    process: ChildGuard,
}

impl OAuthServer {
    /// Starts `node tests/oauth-server/server.mjs` on a free loopback port and waits for its
    /// ready line.
    pub fn start() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oauth-server");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test OAuth server's npm packages are not installed: run scripts/test.sh \
             (or `npm ci --prefix tests/oauth-server`)"
        );
        let log_path = std::env::temp_dir().join(format!(
            "sessctl-oauth-{}-{}.log",
            std::process::id(),
            NEXT_LOG.fetch_add(1, Ordering::Relaxed)
        ));
        let log = File::create(&log_path).expect("create OAuth server log");
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("server.mjs"))
            .current_dir(&dir)
            .env("PORT", "0")
            .env("EXIT_WITH_STDIN", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut process = ChildGuard::spawn(cmd, "the test OAuth server (node)");
        let stdin = process.child_mut().stdin.take().expect("stdin piped");
        let stdout = process.child_mut().stdout.take().expect("stdout piped");
        let port = read_ready_port(stdout, &log_path);
        let http = crate::support::http_builder()
            .timeout(ADMIN_TIMEOUT)
            // Node closes an idle keep-alive connection after 5 s; a request sent on one it
            // is closing fails ("error sending request"). Never reuse one that old.
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("build HTTP client");
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            http,
            log_path,
            _stdin: stdin,
            process,
        }
    }

    /// `http://127.0.0.1:PORT` (also the issuer).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Process id of the node process.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// A sessctl config snippet (`providers:` with one provider called `name`) for this server.
    /// It ends inside that provider's mapping, so more of its keys can be appended, indented by
    /// four spaces (e.g. `"    token_request: json\n"`).
    pub fn provider_yaml(&self, name: &str) -> String {
        let base = &self.base_url;
        format!(
            "providers:\n  {name}:\n    token_url: {base}/token\n    client_id: {CLIENT_ID}\n    \
             revoke_url: {base}/token/revocation\n    userinfo_url: {base}/me\n    \
             usage_url: {base}/api/oauth/usage\n    scopes: [openid, email, offline_access]\n"
        )
    }

    /// Mints a grant and refresh token for `account` (claims `sub=account`, `email`).
    pub fn grant(&self, account: &str, email: &str) -> Grant {
        let reply = self.admin_post("grant", &json!({"account": account, "email": email}));
        serde_json::from_value(reply).expect("grant reply")
    }

    /// [`OAuthServer::grant`] with the space-separated `scope` granted.
    pub fn grant_with_scope(&self, account: &str, email: &str, scope: &str) -> Grant {
        let body = json!({"account": account, "email": email, "scope": scope});
        serde_json::from_value(self.admin_post("grant", &body)).expect("grant reply")
    }

    /// Lets `account` (claims `sub=account`, `email`) log in on the server's login page.
    pub fn add_account(&self, account: &str, email: &str) {
        self.admin_post("account", &json!({"account": account, "email": email}));
    }

    /// Kills the server-side session: the grant and all its tokens.
    pub fn revoke_grant(&self, grant_id: &str) {
        self.admin_post("revoke-grant", &json!({ "grant_id": grant_id }));
    }

    /// True while the grant exists and one of its refresh tokens is still usable.
    pub fn grant_exists(&self, grant_id: &str) -> bool {
        let reply = self.admin_get(&format!("grant/{grant_id}"));
        reply["exists"].as_bool().expect("exists is a bool")
    }

    /// Every access and refresh token value the server has issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        let reply = self.admin_get("issued-tokens");
        ["access_tokens", "refresh_tokens"]
            .iter()
            .flat_map(|kind| reply[kind].as_array().expect("a list of tokens").clone())
            .map(|v| v.as_str().expect("a token is a string").to_owned())
            .collect()
    }

    /// The requests to the provider's endpoints as they arrived, oldest first: `target`,
    /// `method`, `path`, `headers` (names lowercase), `body_format` (`json`, `form`, `empty`,
    /// `other`) and `body` (its fields, credentials replaced by `[redacted]`). Cleared by
    /// [`OAuthServer::reset_stats`].
    pub fn requests(&self) -> Vec<Value> {
        let reply = self.admin_get("requests");
        reply["requests"]
            .as_array()
            .expect("a list of requests")
            .clone()
    }

    /// The request counters.
    pub fn stats(&self) -> Stats {
        serde_json::from_value(self.admin_get("stats")).expect("stats reply")
    }

    /// Zeroes the request counters and forgets the recorded requests.
    pub fn reset_stats(&self) {
        self.admin_post("stats/reset", &json!({}));
    }

    /// Queues faults for `target` (`token`, `revocation`, `usage`, `userinfo`), each consumed by
    /// one request: `{"status":500}`, `{"status":429,"retry_after":"1"}`,
    /// `{"status":200,"body":"not json"}`, `{"reset":true}`, `{"delay_ms":N}`,
    /// `{"drop_response":true}` (the provider processes the request, a refresh really rotates,
    /// but the reply is lost: the connection is cut instead), and `{"rewrite":{...}}` (the
    /// provider answers, a refresh really rotates, then fields of its reply are changed:
    /// `set`, `raw` literal JSON text, `drop`, `pad_bytes`; see `fault_layer.mjs`).
    #[allow(
        clippy::needless_pass_by_value,
        reason = "callers build the list inline with vec!"
    )]
    pub fn push_faults(&self, target: &str, faults: Vec<Value>) {
        self.admin_post("faults", &json!({"target": target, "faults": faults}));
    }

    /// While on, requests to `target` wait (see [`Stats::holding`]) until it is turned off.
    pub fn hold(&self, target: &str, on: bool) {
        self.admin_post("hold", &json!({"target": target, "on": on}));
    }

    /// While on, requests to `target` reach the provider (a refresh really rotates) but their
    /// replies wait (see [`Stats::holding_replies`]); turning it off sends them all.
    pub fn hold_replies(&self, target: &str, on: bool) {
        self.admin_post("hold-replies", &json!({"target": target, "on": on}));
    }

    /// Lets one request held on `target` through (the most recent with `newest`, else the
    /// oldest) while the hold stays on; false when none was waiting.
    pub fn release_one(&self, target: &str, newest: bool) -> bool {
        let reply = self.admin_post("release", &json!({"target": target, "newest": newest}));
        reply["released"] == json!(1)
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, seconds: u64) {
        self.admin_post("access-token-ttl", &json!({ "seconds": seconds }));
    }

    /// Overrides fields of `account`'s usage reply, e.g.
    /// `json!({"five_hour": {"utilization": 99.0, "resets_at": "2030-01-01T00:00:00Z"}})`.
    pub fn set_usage(&self, account: &str, fields: Value) {
        let mut body = fields;
        body["account"] = json!(account);
        self.admin_post("usage", &body);
    }

    /// Sends a form-encoded refresh request, as a client would.
    pub fn refresh(&self, refresh_token: &str) -> TokenReply {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", refresh_token),
        ];
        let sent = self
            .http
            .post(format!("{}/token", self.base_url))
            .form(&form)
            .send();
        token_reply(sent.expect("send refresh request"))
    }

    /// Sends a JSON-bodied refresh request (sessctl's `token_request: json` mode).
    pub fn refresh_json(&self, refresh_token: &str) -> TokenReply {
        let body = json!({"grant_type": "refresh_token", "client_id": CLIENT_ID,
                          "refresh_token": refresh_token});
        let sent = self
            .http
            .post(format!("{}/token", self.base_url))
            .json(&body)
            .send();
        token_reply(sent.expect("send refresh request"))
    }

    /// `GET path` with a bearer token; returns status and JSON body (`Null` if not JSON).
    pub fn get_with_bearer(&self, path: &str, access_token: &str) -> TokenReply {
        let sent = self
            .http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(access_token)
            .send();
        token_reply(sent.expect("send GET"))
    }

    fn admin_get(&self, path: &str) -> Value {
        let sent = self.http.get(self.admin_url(path)).send();
        self.admin_reply(path, sent)
    }

    fn admin_post(&self, path: &str, body: &Value) -> Value {
        let sent = self.http.post(self.admin_url(path)).json(body).send();
        self.admin_reply(path, sent)
    }

    fn admin_url(&self, path: &str) -> String {
        format!("{}/admin/{path}", self.base_url)
    }

    fn admin_reply(&self, path: &str, sent: reqwest::Result<reqwest::blocking::Response>) -> Value {
        let response = sent.unwrap_or_else(|e| panic!("admin {path}: {e}\n{}", self.log()));
        let status = response.status();
        let text = response.text().expect("admin reply body");
        assert!(status.is_success(), "admin {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("admin {path}: {e}: {text}"))
    }
}

impl OAuthServer {
    /// Stops the server now (a provider gone down); admin calls fail afterwards.
    pub fn stop(&mut self) {
        self.process.kill();
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        self.process.kill();
        if std::thread::panicking() {
            eprintln!("--- OAuth server log ---\n{}", self.log());
        }
        if std::env::var_os(KEEP_DIRS_VAR).is_none() {
            let _ = fs::remove_file(&self.log_path);
        }
    }
}

fn token_reply(response: reqwest::blocking::Response) -> TokenReply {
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    TokenReply { status, body }
}

/// Reads the `{"ready":true,"port":N,...}` line, panicking with the server log on timeout or
/// early exit. The reader thread then drains stdout until the server exits.
fn read_ready_port(stdout: impl Read + Send + 'static, log_path: &Path) -> u16 {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = rx.recv_timeout(READY_DEADLINE).unwrap_or_default();
    let ready: Value = serde_json::from_str(line.trim()).unwrap_or(Value::Null);
    match ready["port"].as_u64().and_then(|p| u16::try_from(p).ok()) {
        Some(port) if ready["ready"] == json!(true) => port,
        _ => panic!(
            "the test OAuth server did not become ready within {READY_DEADLINE:?} (got {line:?}):\n{}",
            fs::read_to_string(log_path).unwrap_or_default()
        ),
    }
}
