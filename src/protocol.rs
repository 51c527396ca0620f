//! The socket protocol between the CLI and the daemon: newline-delimited JSON, one request
//! and one reply per line; a request at most [`MAX_FRAME_BYTES`], a reply at most
//! [`MAX_REPLY_BYTES`] (replies grow with the slots). Every frame carries
//! [`PROTOCOL_VERSION`]; replies are `{"v":1,"ok":{...}}` or
//! `{"v":1,"error":{"code":"...","message":"..."}}` with a typed [`ErrorCode`].
//! Readable by hand: `echo '{"v":1,"type":"status"}' | socat - UNIX:$XDG_RUNTIME_DIR/sessctl/sessctl.sock`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::CredentialStoreKind;
use crate::secret::Secret;
use crate::slot_reason::SlotReason;
use crate::state::SlotState;

/// The protocol version. Bump it on any incompatible change of a request or reply; the one
/// place this number is written.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest request line the daemon accepts, newline included: far above any real request
/// (a login carries one refresh token), small enough that a stuck or hostile client cannot
/// make the daemon buffer without bound.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Largest reply line the CLI accepts, newline included. Replies grow with the slots (a
/// `status` slot is about 500 bytes, so 1,000 slots are half a MB): this is no practical
/// limit (about 500,000 slots), only a guard against a broken peer filling the memory.
pub const MAX_REPLY_BYTES: usize = 256 * 1024 * 1024;

/// A request line: the protocol version and the request itself.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestFrame {
    pub v: u32,
    #[serde(flatten)]
    pub request: Request,
}

/// What a client asks of the daemon. Variants are verbs; each payload is one struct.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Ping,
    Status,
    Token(SlotRef),
    Refresh(RefreshRequest),
    Login(LoginRequest),
    /// Starts an interactive login (browser, pasted code or device); see [`LoginBegin`].
    LoginBegin(LoginBegin),
    /// Finishes a browser or pasted-code login with the code the provider redirected with.
    LoginComplete(LoginComplete),
    /// Waits (at most [`LOGIN_WAIT_SLICE_SECS`]) for a device login to finish.
    LoginWait(FlowRef),
    /// Forgets a pending login (the CLI gave up); its device polling stops.
    LoginCancel(FlowRef),
    Logout(SlotRef),
    Shutdown,
    /// Makes a slot of the login in a Claude Code config dir, whose credentials stay there.
    Adopt(AdoptRequest),
    /// Moves a slot's login into a Claude Code config dir's store, and the login there out
    /// into sessctl's store (`sessctl use`).
    Use(UseRequest),
}

/// `use NAME [--claude-code DIR]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseRequest {
    pub name: String,
    /// The config dir, absolute (the CLI resolves it as `adopt` does).
    pub claude_code: std::path::PathBuf,
}

/// `adopt NAME --claude-code DIR [--provider P]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptRequest {
    pub name: String,
    pub provider: String,
    /// The config dir, absolute (the CLI resolves it).
    pub claude_code: std::path::PathBuf,
}

/// A request about one slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRef {
    pub name: String,
}

/// `refresh NAME` (`name: Some`) or `refresh --all` (`name: None`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub name: Option<String>,
}

/// Create or update a slot from a refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub name: String,
    pub provider: String,
    pub refresh_token: Secret,
}

/// Longest a `login_wait` is held before the daemon answers `login_pending`: well inside the
/// daemon's 120 s reply deadline, so a device login spans several calls.
pub const LOGIN_WAIT_SLICE_SECS: u64 = 60;

/// Start an interactive login of slot `name` with `provider`. The slot name is checked
/// here, before the user is sent to a browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBegin {
    pub name: String,
    pub provider: String,
    pub flow: LoginFlow,
    /// The login is forgotten (and device polling stops) this long after it began.
    pub timeout_secs: u64,
    /// Put the login into Claude Code's store for this config dir (absolute; the CLI
    /// resolves it) instead of sessctl's own store: the slot is then Claude Code-backed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_code: Option<std::path::PathBuf>,
}

/// Which interactive flow. (Extra fields beside `kind` in the unit variants are ignored:
/// serde applies `deny_unknown_fields` to the struct variant only.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LoginFlow {
    /// Authorization code with PKCE, redirected to the CLI's loopback listener
    /// (`http://127.0.0.1:PORT/callback`, RFC 8252).
    Browser { redirect_uri: String },
    /// Authorization code with PKCE, redirected to the provider's page that shows the code
    /// to paste (`manual_redirect_uri`).
    Manual,
    /// The RFC 8628 device authorization grant.
    Device,
}

/// The code (and state) a browser or pasted-code login came back with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginComplete {
    pub flow_id: String,
    pub code: Secret,
    pub state: String,
}

/// A request about one pending login.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRef {
    pub flow_id: String,
}

/// A reply line: exactly one of `ok` and `error` is present.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplyFrame {
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<Response>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReply>,
}

impl ReplyFrame {
    /// Frames a daemon result.
    pub fn new(result: Result<Response, ErrorReply>) -> Self {
        match result {
            Ok(ok) => ReplyFrame {
                v: PROTOCOL_VERSION,
                ok: Some(ok),
                error: None,
            },
            Err(error) => ReplyFrame {
                v: PROTOCOL_VERSION,
                ok: None,
                error: Some(error),
            },
        }
    }
}

/// A successful reply, one variant per request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Pong(Pong),
    Status(StatusReport),
    Token(TokenReply),
    Refresh(RefreshReport),
    Login(LoginReply),
    LoginBegun(LoginBegun),
    /// `login_wait`: not finished yet; ask again.
    LoginPending,
    LoginCancelled,
    Logout(LogoutReply),
    ShuttingDown,
    Use(UseReply),
}

/// A failed request: a machine-readable code and a sentence for people.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorReply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorReply {
            code,
            message: message.into(),
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not a request this daemon understands.
    BadRequest,
    /// Client and daemon speak different protocol versions.
    VersionMismatch,
    /// The request line is over [`MAX_FRAME_BYTES`].
    FrameTooLarge,
    /// The request did not arrive in time.
    Timeout,
    /// The connecting process belongs to another user.
    PermissionDenied,
    UnknownSlot,
    UnknownProvider,
    InvalidName,
    /// The slot needs a new login (its server-side session is gone).
    SlotInactive,
    /// A token request failed for a reason that may pass (network, 5xx, 429).
    RefreshFailed,
    /// The refresh token given to `login` was refused or could not be redeemed, or an
    /// interactive login failed (refused code, denied, expired, unreachable provider).
    LoginFailed,
    /// The provider has no endpoint for the login flow asked for (the message names the
    /// config key).
    FlowUnsupported,
    /// No pending login has this id (finished, cancelled or expired).
    UnknownFlow,
    /// The credential store cannot be reached.
    StoreUnavailable,
    /// A newer login or write overtook this one.
    Conflict,
    /// The typed slot holds another account than the one this login is for.
    AccountMismatch,
    ShuttingDown,
    Internal,
    /// `use`: Claude Code's store cannot take the move now (it holds a login sessctl does not
    /// know, or a running Claude Code holds its lock); nothing changed.
    ClaudeCodeStore,
    /// A code this client does not know (from a newer daemon).
    #[serde(other)]
    Unknown,
}

/// Reply to `ping`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pong {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
}

/// Reply to `status`: the public `status --json` schema (documented in the README).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub pid: u32,
    /// True when at least one slot exists and none is active or degraded.
    pub all_inactive: bool,
    pub credential_store: CredentialStoreKind,
    /// Set while the credential store cannot be reached (tokens are held in memory).
    pub credential_store_error: Option<String>,
    /// Set while the state file cannot be saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_file_error: Option<String>,
    /// The merged quota cache, judged at the cache level.
    pub cache: CacheStatus,
    pub slots: Vec<SlotStatus>,
    /// Credential items under service `sessctl` that match no slot and could not be
    /// adopted back as one, each with the command that fixes it.
    #[serde(default)]
    pub unplaced_credentials: Vec<UnplacedCredential>,
    /// Refresh tokens whose revocation failed for now and is being retried (no tokens
    /// here: they wait in the credential store).
    #[serde(default)]
    pub pending_revocations: Vec<crate::revocation::PendingRevocation>,
    /// A `sessctl use` under way (`null` when none): until it ends, neither slot it moves
    /// refreshes or loads anything.
    #[serde(default)]
    pub moving: Option<UseInProgress>,
}

/// A `sessctl use` the daemon has recorded and not finished (no tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseInProgress {
    /// The slot whose login moves into Claude Code's store.
    pub slot: String,
    /// That store's config dir.
    pub dir: std::path::PathBuf,
    /// The slot whose login leaves that store for sessctl's; `None` when it held none.
    pub outgoing: Option<String>,
    /// True when an earlier daemon started it, or an attempt failed and it is tried again.
    pub resumed: bool,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the next attempt starts, after a failed one.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A credential item the daemon could not place in a slot (see `daemon::reconcile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnplacedCredential {
    /// The item's account, which is the slot name it was written for.
    pub name: String,
    /// What is wrong, in words.
    pub problem: String,
    /// The command that fixes it.
    pub fix: String,
}

/// The quota cache file in `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheStatus {
    pub path: std::path::PathBuf,
    /// The `updated_at` of the cache last written; `None` before the first write.
    pub updated_at: Option<DateTime<Utc>>,
    /// True when `updated_at` is older than `stale_after` (or missing).
    pub stale: bool,
    /// Set while the cache cannot be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One slot's quota in `status`, judged at the slot level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuotaStatus {
    pub windows: std::collections::BTreeMap<String, crate::cache::Window>,
    pub fetched_at: Option<DateTime<Utc>>,
    /// True when this slot's own data is older than `stale_after`, or missing while the
    /// slot is active, whatever the cache's timestamp says.
    pub stale: bool,
    pub error: Option<String>,
    /// Claude's credit spend beyond the plan (`extra_usage`), when the provider sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_usage: Option<crate::cache::ExtraUsage>,
}

/// One slot in `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotStatus {
    pub name: String,
    pub provider: String,
    pub account: Option<String>,
    pub state: SlotState,
    pub reason: Option<SlotReason>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_refresh_error: Option<String>,
    pub next_refresh_at: Option<DateTime<Utc>>,
    pub refreshes: u64,
    /// `None` when the slot's provider has no usage endpoint.
    pub quota: Option<QuotaStatus>,
    /// Where the credentials of a slot adopted from Claude Code live (the credentials file,
    /// or `keychain:<service>` on macOS); absent for slots kept in sessctl's own store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_code_store: Option<String>,
    /// That slot's Claude Code config dir (what `CLAUDE_CONFIG_DIR` is set to for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_code_dir: Option<std::path::PathBuf>,
}

/// Reply to `token`: the only reply that carries a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenReply {
    pub access_token: Secret,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when a refresh was due but failed and the still-valid current token is returned.
    pub warning: Option<String>,
}

/// Reply to `refresh`: one result per slot refreshed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshReport {
    pub results: Vec<SlotRefreshResult>,
}

/// How one slot's refresh ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotRefreshResult {
    pub name: String,
    pub ok: bool,
    pub state: SlotState,
    pub error: Option<ErrorReply>,
}

/// Reply to `login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginReply {
    /// The slot the login went to (the account's own slot, which may not be the typed name).
    pub name: String,
    pub account: Option<String>,
    /// False when an existing slot was updated.
    pub created: bool,
    pub warning: Option<String>,
    /// What the login did; absent from daemons before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<LoginAction>,
    /// The name that was typed, when the login went to another slot holding the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_name: Option<String>,
    /// True when the slot was inactive and this login made it active again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reactivated: bool,
    /// The Claude Code config dir whose store the login went into (`login --claude-code`,
    /// or a login of a Claude Code slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_code_dir: Option<std::path::PathBuf>,
}

/// What a login did to the slot it went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginAction {
    /// No slot held the account: a slot of the typed name was created.
    Created,
    /// The typed slot, which holds this account, was updated in place.
    Updated,
    /// Another slot already held this account: it was updated, and no slot of the typed
    /// name was created.
    UpdatedAccountSlot,
    /// An action this client does not know (from a newer daemon).
    #[serde(other)]
    Unknown,
}

/// Reply to `login_begin`: what to show the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginBegun {
    pub flow_id: String,
    /// The login is forgotten after this.
    pub expires_at: DateTime<Utc>,
    /// Browser and pasted-code logins: the URL to open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// Device logins: the code to enter and where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceCode>,
}

/// What the user of a device login is shown (RFC 8628 §3.2; the device code stays in the
/// daemon).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceCode {
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Seconds between polls the provider asked for.
    pub interval: u64,
}

/// Reply to `use`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UseReply {
    pub name: String,
    pub claude_code_dir: std::path::PathBuf,
    /// The slot whose login left the store for sessctl's (none: the store held no login).
    pub previous: Option<String>,
    /// True when the slot's login was in that store already (nothing was done).
    pub already: bool,
}

/// Reply to `logout`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutReply {
    pub name: String,
    /// True when the provider confirmed the revocation.
    pub revoked: bool,
    /// Why revocation or deletion did not fully happen, if it did not.
    pub warning: Option<String>,
    /// Pending logins of this name the logout cancelled (their grants, if any, revoked).
    #[serde(default)]
    pub cancelled_logins: u32,
    /// The revocation failed for now: the token is kept and revoked by a later retry
    /// (listed in `status` as a pending revocation).
    #[serde(default)]
    pub revocation_pending: bool,
    /// The slot's credentials were Claude Code's (in its store for this config dir): they
    /// are left there untouched, neither revoked nor deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_in_claude_code: Option<std::path::PathBuf>,
}

/// Parses one request line. The version is checked before the request itself, so a client
/// from another version gets `version_mismatch`, not a confusing parse error.
pub fn parse_request(line: &[u8]) -> Result<Request, ErrorReply> {
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| ErrorReply::new(ErrorCode::BadRequest, format!("not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(ErrorReply::new(
            ErrorCode::BadRequest,
            "a request must be a JSON object",
        ));
    };
    match object.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(ErrorReply::new(
                ErrorCode::VersionMismatch,
                format!(
                    "this daemon (sessctl {}) speaks protocol {PROTOCOL_VERSION}, the client speaks {v}; restart the daemon after upgrading (sessctl shutdown, then start it again)",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
        None => {
            return Err(ErrorReply::new(
                ErrorCode::BadRequest,
                "missing protocol version \"v\"",
            ));
        }
    }
    serde_json::from_value::<RequestFrame>(value)
        .map(|frame| frame.request)
        .map_err(|e| ErrorReply::new(ErrorCode::BadRequest, format!("bad request: {e}")))
}

/// Serializes a frame as one line, newline included.
pub fn to_line<T: Serialize>(frame: &T) -> Vec<u8> {
    // Serializing our own types to a Vec cannot fail (no maps with non-string keys).
    let mut line = serde_json::to_vec(frame).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_through_a_line() {
        let frame = RequestFrame {
            v: PROTOCOL_VERSION,
            request: Request::Token(SlotRef {
                name: "work".into(),
            }),
        };
        let line = to_line(&frame);
        assert!(line.ends_with(b"\n"));
        let parsed = parse_request(&line[..line.len() - 1]).unwrap();
        assert!(matches!(parsed, Request::Token(SlotRef { name }) if name == "work"));
    }

    #[test]
    fn another_protocol_version_is_named_as_such() {
        let err = parse_request(br#"{"v":99,"type":"frobnicate"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::VersionMismatch);
        assert!(err.message.contains("99"), "{}", err.message);
    }

    #[test]
    fn malformed_requests_are_bad_requests() {
        for line in [
            &b"not json"[..],
            b"[1,2]",
            b"{}",
            br#"{"v":1}"#,
            br#"{"v":1,"type":"nope"}"#,
            br#"{"v":1,"type":"token"}"#,
            br#"{"v":1,"type":"token","name":7}"#,
            br#"{"v":"1","type":"ping"}"#,
            b"\xff\xfe",
        ] {
            let err = parse_request(line).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadRequest, "{line:?}");
        }
    }

    #[test]
    fn replies_carry_ok_or_a_typed_error() {
        let ok = String::from_utf8(to_line(&ReplyFrame::new(Ok(Response::ShuttingDown)))).unwrap();
        assert_eq!(ok, "{\"v\":1,\"ok\":{\"type\":\"shutting_down\"}}\n");
        let err = ReplyFrame::new(Err(ErrorReply::new(ErrorCode::UnknownSlot, "no slot x")));
        let text = String::from_utf8(to_line(&err)).unwrap();
        assert!(text.contains("\"code\":\"unknown_slot\""), "{text}");
    }

    #[test]
    fn login_flow_requests_parse_and_bad_ones_are_bad_requests() {
        let begin = parse_request(
            br#"{"v":1,"type":"login_begin","name":"w","provider":"p","flow":{"kind":"browser","redirect_uri":"http://127.0.0.1:1/callback"},"timeout_secs":300}"#,
        )
        .unwrap();
        assert!(matches!(
            begin,
            Request::LoginBegin(LoginBegin {
                flow: LoginFlow::Browser { .. },
                ..
            })
        ));
        for line in [
            &br#"{"v":1,"type":"login_begin","name":"w","provider":"p","flow":"device","timeout_secs":1}"#[..],
            br#"{"v":1,"type":"login_begin","name":"w","provider":"p","flow":{"kind":"fax"},"timeout_secs":1}"#,
            br#"{"v":1,"type":"login_begin","name":"w","provider":"p","flow":{"kind":"manual"},"timeout_secs":-1}"#,
            br#"{"v":1,"type":"login_complete","flow_id":"f","code":"c"}"#,
            br#"{"v":1,"type":"login_wait","flow_id":7}"#,
        ] {
            let err = parse_request(line).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadRequest, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn a_login_complete_never_shows_its_code_in_debug_output() {
        let request = parse_request(
            br#"{"v":1,"type":"login_complete","flow_id":"f","code":"SECRET-CODE","state":"s"}"#,
        )
        .unwrap();
        assert!(!format!("{request:?}").contains("SECRET-CODE"));
    }

    #[test]
    fn an_unknown_error_code_from_a_newer_daemon_still_parses() {
        let frame: ReplyFrame =
            serde_json::from_str(r#"{"v":1,"error":{"code":"brand_new","message":"m"}}"#).unwrap();
        assert_eq!(frame.error.unwrap().code, ErrorCode::Unknown);
    }
}
