//! The interactive login flows, built on the `oauth2` crate: the authorization URL with PKCE
//! (S256) and a CSRF `state`, the authorization-code exchange, and the RFC 8628 device
//! authorization grant (request, then polling that honours `interval`, adds 5 s on
//! `slow_down` and stops on `access_denied` or `expired_token`; all of that is oauth2's own
//! polling loop). HTTP goes through our reqwest client ([`super::http`]).
//!
//! Owns no state: the daemon keeps each pending flow's verifier and state. Nothing here
//! logs or formats a token, code or verifier.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationResponse,
    DeviceAuthorizationUrl, DeviceCodeErrorResponseType, EmptyExtraDeviceAuthorizationFields,
    EndpointNotSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::config::Provider;
use crate::secret::Secret;

use super::cause::Cause;
use super::classify::{PermanentReason, permanent_reason};
use super::http::{HttpError, OAuth2Http};
use super::{OAuthClient, TokenGrant};

/// The fields beyond RFC 6749 that name the account: the `id_token` (OpenID Connect) and
/// Claude's `account.email_address` and `account.uuid` (read as a refresh's are, classify.rs).
#[derive(Debug, Serialize, Deserialize)]
pub struct AccountFields {
    #[serde(default)]
    id_token: Option<Secret>,
    #[serde(default)]
    account: Option<AccountObject>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AccountObject {
    #[serde(default)]
    email_address: Option<String>,
    /// Claude's stable account id (kept as any JSON value: only a string is used).
    #[serde(default)]
    uuid: Option<serde_json::Value>,
}

impl oauth2::ExtraTokenFields for AccountFields {}

type FlowTokenResponse = StandardTokenResponse<AccountFields, BasicTokenType>;

/// An oauth2 client for one provider, with the endpoints `A` (authorize), `D` (device) and
/// `T` (token) set or not.
type FlowClient<A, D, T> = oauth2::Client<
    BasicErrorResponse,
    FlowTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    A,
    D,
    EndpointNotSet,
    EndpointNotSet,
    T,
>;

/// A device authorization as oauth2 returned it (holds the device code, a credential).
pub type DeviceDetails = DeviceAuthorizationResponse<EmptyExtraDeviceAuthorizationFields>;

/// The start of a code flow: the URL to open, and what the exchange will need.
pub struct AuthorizationStart {
    pub url: Url,
    /// The CSRF `state` the redirect must carry back.
    pub state: Secret,
    /// The PKCE verifier (sent only with the code exchange).
    pub verifier: Secret,
}

/// Why a flow ended without tokens.
#[derive(Debug)]
pub enum FlowFailure {
    /// The user refused (`access_denied`).
    Denied,
    /// The device code or the login expired before the user finished.
    Expired,
    /// The provider refused the code or the client (`invalid_grant`, `invalid_client`).
    Refused {
        reason: PermanentReason,
        error: String,
    },
    /// Anything else: network, a 5xx, a reply that does not parse, another OAuth error.
    /// `cause` classifies it; `error` is the detail for the log.
    Failed { cause: Cause, error: String },
}

/// Builds the authorization URL for `redirect_uri` with a fresh PKCE pair and state.
pub fn authorization_url(
    provider: &Provider,
    authorize_url: &Url,
    redirect_uri: &Url,
) -> AuthorizationStart {
    let client = base_client(provider)
        .set_auth_uri(AuthUrl::from_url(authorize_url.clone()))
        .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(scopes(provider))
        .set_pkce_challenge(challenge)
        .url();
    AuthorizationStart {
        url,
        state: Secret::new(state.secret().as_str()),
        verifier: Secret::new(verifier.secret().as_str()),
    }
}

impl OAuthClient {
    /// Exchanges an authorization code (with its PKCE verifier) for tokens. `state` goes in
    /// the body too: Claude's token endpoint expects it, and RFC 6749 servers ignore it.
    pub async fn exchange_code(
        &self,
        provider: &Provider,
        redirect_uri: &Url,
        code: &Secret,
        verifier: &Secret,
        state: &Secret,
    ) -> Result<TokenGrant, FlowFailure> {
        let client = base_client(provider)
            .set_token_uri(TokenUrl::from_url(provider.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
        let http = self.oauth2_http(provider);
        let reply = client
            .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()))
            .add_extra_param("state", state.expose().to_owned())
            .request_async(&http)
            .await;
        match reply {
            Ok(tokens) => Ok(grant(&tokens)),
            Err(RequestTokenError::ServerResponse(e)) => Err(refused(e.error().as_ref())),
            Err(RequestTokenError::Parse(e, body)) => {
                salvage(&body).ok_or_else(|| FlowFailure::Failed {
                    cause: Cause::Other,
                    error: format!("the provider's reply does not parse (at {})", e.path()),
                })
            }
            Err(e) => Err(failed(&e)),
        }
    }

    /// Asks the provider's device authorization endpoint for a user code.
    pub async fn device_authorization(
        &self,
        provider: &Provider,
        device_url: &Url,
    ) -> Result<DeviceDetails, FlowFailure> {
        let client = base_client(provider)
            .set_device_authorization_url(DeviceAuthorizationUrl::from_url(device_url.clone()));
        let http = self.oauth2_http(provider);
        match client
            .exchange_device_code()
            .add_scopes(scopes(provider))
            .request_async(&http)
            .await
        {
            Ok(details) => Ok(details),
            Err(RequestTokenError::ServerResponse(e)) => Err(refused(e.error().as_ref())),
            Err(e) => Err(failed(&e)),
        }
    }

    /// Polls the token endpoint until the user approves, refuses, or `deadline` (or the
    /// device code's own expiry) passes. Transient replies (5xx, 429, network) back off.
    /// Between two polls it waits with `sleep` (the caller's: a stopping daemon's never
    /// ends, so no poll is sent once it stops).
    pub async fn poll_device<S, F>(
        &self,
        provider: &Provider,
        details: &DeviceDetails,
        deadline: DateTime<Utc>,
        sleep: S,
    ) -> Result<TokenGrant, FlowFailure>
    where
        S: Fn(Duration) -> F,
        F: std::future::Future<Output = ()>,
    {
        let client = base_client(provider)
            .set_token_uri(TokenUrl::from_url(provider.token_url.clone()))
            .set_device_authorization_url(DeviceAuthorizationUrl::from_url(
                // Not requested again; oauth2's typestate wants the endpoint set.
                provider
                    .device_authorization_url
                    .clone()
                    .unwrap_or_else(|| provider.token_url.clone()),
            ));
        let http = self.oauth2_http(provider);
        let timeout = (deadline - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(details.expires_in());
        let reply = client
            .exchange_device_access_token(details)
            .set_max_backoff_interval(MAX_POLL_BACKOFF)
            .request_async(&http, sleep, Some(timeout))
            .await;
        match reply {
            Ok(tokens) => Ok(grant(&tokens)),
            Err(RequestTokenError::Parse(e, body)) => {
                salvage(&body).ok_or_else(|| FlowFailure::Failed {
                    cause: Cause::Other,
                    error: format!("the provider's reply does not parse (at {})", e.path()),
                })
            }
            Err(RequestTokenError::ServerResponse(e)) => Err(match e.error() {
                DeviceCodeErrorResponseType::AccessDenied => FlowFailure::Denied,
                DeviceCodeErrorResponseType::ExpiredToken => FlowFailure::Expired,
                other => refused(other.as_ref()),
            }),
            Err(e) => Err(failed(&e)),
        }
    }

    fn oauth2_http(&self, provider: &Provider) -> OAuth2Http<'_> {
        OAuth2Http {
            http: &self.http,
            format: provider.token_request,
            headers: super::provider_headers(provider),
        }
    }
}

/// Longest wait between two polls after network errors or 5xx replies.
const MAX_POLL_BACKOFF: Duration = Duration::from_secs(30);

fn base_client(provider: &Provider) -> FlowClient<EndpointNotSet, EndpointNotSet, EndpointNotSet> {
    let client = FlowClient::new(ClientId::new(provider.client_id.clone()))
        .set_auth_type(oauth2::AuthType::RequestBody);
    match &provider.client_secret {
        Some(secret) => client.set_client_secret(ClientSecret::new(secret.expose().to_owned())),
        None => client,
    }
}

fn scopes(provider: &Provider) -> Vec<Scope> {
    provider.scopes.iter().cloned().map(Scope::new).collect()
}

/// An OAuth error code from the token endpoint, classified like a refresh's.
fn refused(code: &str) -> FlowFailure {
    let code: String = code
        .chars()
        .filter(char::is_ascii_graphic)
        .take(64)
        .collect();
    match permanent_reason(&code) {
        Some(reason) => FlowFailure::Refused {
            reason,
            error: code,
        },
        None if code == "access_denied" => FlowFailure::Denied,
        None => FlowFailure::Failed {
            cause: Cause::Other,
            error: format!("the provider answered {code}"),
        },
    }
}

/// A request error as a classified failure; never the reply body.
fn failed<T: oauth2::ErrorResponse>(error: &RequestTokenError<HttpError, T>) -> FlowFailure {
    let cause = match error {
        RequestTokenError::Request(HttpError::Send(e)) => e.cause.clone(),
        RequestTokenError::Request(HttpError::Unavailable {
            status,
            retry_after,
        }) => Cause::of_status(*status, *retry_after),
        _ => Cause::Other,
    };
    FlowFailure::Failed {
        cause,
        error: describe(error),
    }
}

/// A request error as a sentence; never the reply body (oauth2 keeps it in `Parse`).
fn describe<T: oauth2::ErrorResponse>(error: &RequestTokenError<HttpError, T>) -> String {
    match error {
        RequestTokenError::Request(e) => e.to_string(),
        // The path only: serde's message may quote a value from the reply.
        RequestTokenError::Parse(e, _) => {
            format!("the provider's reply does not parse (at {})", e.path())
        }
        RequestTokenError::Other(text) => text.clone(),
        RequestTokenError::ServerResponse(_) => "the provider refused the request".to_owned(),
    }
}

/// A successful reply that oauth2 could not parse (an `expires_in` that is negative or
/// fractional, a field of the wrong type, no access token): read again by our own, more
/// lenient parser, so that a refresh token it carries is kept. `None` when it has none.
fn salvage(body: &[u8]) -> Option<TokenGrant> {
    match super::grant::parse_grant(body, true) {
        super::TokenOutcome::Refreshed(grant) if grant.refresh_token.is_some() => Some(grant),
        _ => None,
    }
}

fn grant(tokens: &FlowTokenResponse) -> TokenGrant {
    let extra = tokens.extra_fields();
    let (expires_in, note) = match tokens.expires_in() {
        Some(lifetime) => super::grant::clamp_lifetime(lifetime),
        None => (None, None),
    };
    TokenGrant {
        access_token: Secret::new(tokens.access_token().secret().as_str()),
        refresh_token: tokens
            .refresh_token()
            .map(|t| Secret::new(t.secret().as_str()))
            .filter(|t| !t.is_empty()),
        expires_in,
        scope: tokens
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect()),
        id_token: extra.id_token.clone(),
        account_email: extra.account.as_ref().and_then(|a| a.email_address.clone()),
        account_subject: extra
            .account
            .as_ref()
            .and_then(|a| a.uuid.as_ref())
            .and_then(|u| u.as_str().map(str::to_owned)),
        defect: None,
        note,
    }
}
