//! Talking to a provider: the refresh-token grant, revocation (RFC 7009), userinfo and the
//! usage endpoint; the interactive login flows (authorization code with PKCE, device grant)
//! in [`flow`].
//! Every call has a 30 s timeout. Nothing here touches slot state or the credential
//! store; callers get typed outcomes ([`TokenOutcome`]) and decide.

mod cause;
mod classify;
mod flow;
mod grant;
mod http;
mod identity;
pub mod tls;

pub use cause::{Cause, SendError, Unreachable};
pub use classify::{
    MAX_RETRY_AFTER, PermanentReason, TokenGrant, TokenOutcome, classify_reply, parse_retry_after,
};
pub use flow::{AuthorizationStart, DeviceDetails, FlowFailure, authorization_url};
pub use grant::{MAX_LIFETIME, UNREADABLE_LIFETIME, clamp_lifetime};
pub use identity::{
    account_from_id_token, email_from_id_token, identity_from_claims, identity_from_id_token,
};

use std::fmt::Write as _;
use std::time::Duration;

use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::config::{Provider, TokenHeaders, TokenRequestFormat};
use crate::secret::Secret;

/// Time allowed for any one request to a provider, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle connection stays in the client's pool (reqwest's default is 90 s).
/// While any connection is idle, the pool wakes the daemon every this often to sweep it, so
/// a short time ends those wakeups soon after the last request. Nothing is lost: requests
/// are either back to back (they reuse the connection) or minutes apart (a connection
/// would not survive the server's own keep-alive anyway).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest response body read from a provider; a token response is a few KiB.
const MAX_BODY_BYTES: usize = grant::MAX_PARSED_BODY;

/// How much of a token reply is read at most. A 200 over [`MAX_BODY_BYTES`] is not parsed
/// as a grant, but its rotated refresh token must not be lost: up to this much is read to
/// find it (the rest is cut off unread).
const MAX_TOKEN_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// An HTTP client for providers. Cheap to clone (one connection pool each).
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    /// The same without a `User-Agent`, for providers whose token requests carry no client
    /// headers ([`TokenHeaders::Minimal`]).
    bare: reqwest::Client,
}

impl OAuthClient {
    /// Builds the client (rustls, 30 s timeout, no redirects: a token endpoint that
    /// redirects is misconfigured and must not receive our refresh token twice).
    pub fn new() -> Result<Self, String> {
        let builder = || {
            tls::client_builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(10))
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
        };
        let failed = |e: reqwest::Error| format!("cannot build the HTTP client: {e}");
        let http = builder()
            .user_agent(concat!("sessctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(failed)?;
        let bare = builder().build().map_err(failed)?;
        Ok(Self { http, bare })
    }

    /// The client for `provider`'s token and revocation requests.
    fn token_http(&self, provider: &Provider) -> &reqwest::Client {
        match provider.shape.token_headers {
            TokenHeaders::Standard => &self.http,
            TokenHeaders::Minimal => &self.bare,
        }
    }

    /// Redeems `refresh_token` once. The caller guarantees single flight: this function
    /// sends the token exactly once and never retries.
    pub async fn refresh(&self, provider: &Provider, refresh_token: &Secret) -> TokenOutcome {
        let mut fields: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", &provider.client_id),
        ];
        if let Some(secret) = &provider.client_secret {
            fields.push(("client_secret", secret.expose()));
        }
        let scope = provider.shape.refresh_scopes.join(" ");
        if !scope.is_empty() {
            fields.push(("scope", &scope));
        }
        let request = self.token_http(provider).post(provider.token_url.clone());
        let request =
            with_body(request, provider.token_request, &fields).headers(provider_headers(provider));
        let request = match provider.shape.token_headers {
            TokenHeaders::Standard => request.header(reqwest::header::ACCEPT, "application/json"),
            TokenHeaders::Minimal => request,
        };
        match send_reading(request, MAX_TOKEN_REPLY_BYTES).await {
            Ok(reply) => classify_reply(
                reply.status,
                reply.retry_after.as_deref(),
                &reply.body,
                reply.complete,
                Utc::now(),
            ),
            Err(error) => TokenOutcome::Transient {
                error: error.detail,
                cause: error.cause,
                retry_after: None,
            },
        }
    }

    /// Revokes a refresh token at the provider's `revoke_url` (RFC 7009). `Ok(false)` when
    /// the provider has no revocation endpoint.
    pub async fn revoke(
        &self,
        provider: &Provider,
        refresh_token: &Secret,
    ) -> Result<bool, RevokeError> {
        let Some(url) = &provider.revoke_url else {
            return Ok(false);
        };
        let mut fields = vec![
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
            ("client_id", provider.client_id.as_str()),
        ];
        if let Some(secret) = &provider.client_secret {
            fields.push(("client_secret", secret.expose()));
        }
        let request = self.token_http(provider).post(url.clone());
        let request = with_body(request, provider.shape.revoke_request, &fields)
            .headers(provider_headers(provider));
        let reply = send(request).await.map_err(|message| RevokeError {
            message,
            permanent: false,
        })?;
        if reply.status == 200 {
            return Ok(true);
        }
        // RFC 7009 §2.2.1: 503 (and, like every endpoint, 429 and 5xx) means "try again
        // later"; any other refusal (`unsupported_token_type`, `invalid_client`) stays.
        let permanent = reply.status != 429 && reply.status < 500;
        let error = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(classify::printable_code));
        let message = match error {
            Some(error) => format!(
                "revocation endpoint answered HTTP {} ({error})",
                reply.status
            ),
            None => format!("revocation endpoint answered HTTP {}", reply.status),
        };
        Err(RevokeError { message, permanent })
    }

    /// Asks the provider's userinfo endpoint who the access token belongs to: the e-mail
    /// and the subject. `Ok(None)` when no userinfo endpoint is configured.
    pub async fn userinfo(
        &self,
        provider: &Provider,
        access_token: &Secret,
    ) -> Result<Option<crate::account::Identity>, String> {
        let Some(url) = &provider.userinfo_url else {
            return Ok(None);
        };
        let request = self
            .http
            .get(url.clone())
            .bearer_auth(access_token.expose())
            .headers(provider_headers(provider));
        let reply = send(request).await?;
        if reply.status != 200 {
            return Err(format!("userinfo endpoint answered HTTP {}", reply.status));
        }
        let claims: serde_json::Value = serde_json::from_slice(&reply.body)
            .map_err(|_| "userinfo reply is not JSON".to_owned())?;
        Ok(Some(identity::identity_from_claims(&claims)))
    }

    /// GETs the provider's usage endpoint with `access_token`. The reply is returned raw;
    /// [`crate::quota`] interprets it. `Ok(None)` when no usage endpoint is configured.
    pub async fn usage(
        &self,
        provider: &Provider,
        access_token: &Secret,
    ) -> Result<Option<Reply>, String> {
        let Some(url) = &provider.usage_url else {
            return Ok(None);
        };
        let request = self
            .http
            .get(url.clone())
            .bearer_auth(access_token.expose())
            .headers(provider_headers(provider))
            .headers(header_map(&provider.shape.usage_headers))
            .header(reqwest::header::ACCEPT, "application/json");
        send(request).await.map(Some)
    }
}

/// Why a revocation did not happen: a failure worth retrying (network, 5xx, 429) or a
/// permanent refusal by the provider (any other 4xx).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RevokeError {
    pub message: String,
    pub permanent: bool,
}

/// The parts of a provider's reply callers look at.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// The raw `Retry-After` header.
    pub retry_after: Option<String>,
    /// The raw `Content-Type` header.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// False when `body` is only the beginning of the reply (see [`send_reading`]).
    pub complete: bool,
}

/// Sends a request and reads at most [`MAX_BODY_BYTES`] of the reply; a longer reply is an
/// error. Errors are short texts without the request body.
async fn send(request: reqwest::RequestBuilder) -> Result<Reply, String> {
    let reply = send_reading(request, MAX_BODY_BYTES)
        .await
        .map_err(|e| e.detail)?;
    if !reply.complete {
        return Err(format!(
            "reply over {MAX_BODY_BYTES} bytes (HTTP {})",
            reply.status
        ));
    }
    Ok(reply)
}

/// Sends a request and reads the reply's first `limit` bytes; the rest is not read
/// (`complete` is then false).
async fn send_reading(request: reqwest::RequestBuilder, limit: usize) -> Result<Reply, SendError> {
    let failed = |error: reqwest::Error| SendError {
        cause: Cause::of_request(&error),
        detail: describe(&error),
    };
    let mut response = request.send().await.map_err(failed)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    let mut complete = true;
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > limit {
            body.extend_from_slice(&chunk[..limit - body.len()]);
            complete = false;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        retry_after,
        content_type,
        body,
        complete,
    })
}

/// A request error as a short sentence (reqwest's text names the URL, never the body).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "reply broken off"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// `fields` as the body, form-encoded or as a JSON object of strings.
fn with_body(
    request: reqwest::RequestBuilder,
    format: TokenRequestFormat,
    fields: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    match format {
        TokenRequestFormat::Form => request.form(fields),
        TokenRequestFormat::Json => {
            let body: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            request.json(&body)
        }
    }
}

/// The provider's extra headers (validated when the config was loaded).
fn provider_headers(provider: &Provider) -> HeaderMap {
    header_map(&provider.headers)
}

/// Validated header names and values as a map (anything invalid is skipped).
fn header_map(headers: &std::collections::BTreeMap<String, String>) -> HeaderMap {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_str(value).ok()?,
            ))
        })
        .collect()
}
