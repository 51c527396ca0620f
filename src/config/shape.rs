//! How a provider's requests are shaped beyond RFC 6749, one property per difference: the
//! loopback redirect's host name, the `scope` sent with a refresh, the revocation body's
//! encoding, which client headers token requests carry, and headers only the usage request
//! gets. A provider made in the config gets the RFC shapes ([`RequestShape::default`]); the
//! built-in `claude` gets Claude Code's own ([`RequestShape::claude_code`]), each field
//! overridable in the file. Never quotes a header value in an error.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::TokenRequestFormat;

/// The host name a browser login's loopback redirect names (the listener binds loopback
/// either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RedirectHost {
    /// `http://127.0.0.1:PORT/callback` (RFC 8252 §7.3's recommendation; the default).
    #[serde(rename = "127.0.0.1")]
    Ipv4Loopback,
    /// `http://localhost:PORT/callback`, the URI Claude Code registers and sends.
    #[serde(rename = "localhost")]
    Localhost,
}

impl RedirectHost {
    /// The host as written in the redirect URI.
    pub fn as_str(self) -> &'static str {
        match self {
            RedirectHost::Ipv4Loopback => "127.0.0.1",
            RedirectHost::Localhost => "localhost",
        }
    }
}

/// Which of the HTTP client's own headers token and revocation requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenHeaders {
    /// `User-Agent: sessctl/VERSION` and `Accept: application/json` (the default).
    Standard,
    /// Neither: the body's `Content-Type` is the only header sessctl sets, as Claude Code
    /// sends. What HTTP itself needs (`Host`, `Content-Length`) stays, and so does reqwest's
    /// `Accept: */*`, which it adds to every request that names none (and which means the
    /// same as no `Accept` at all, RFC 9110 §12.5.1).
    Minimal,
}

/// A provider's request shapes (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestShape {
    pub redirect_host: RedirectHost,
    /// Sent space-separated as `scope` with every refresh; empty: no `scope` parameter.
    pub refresh_scopes: Vec<String>,
    /// How the revocation body is encoded.
    pub revoke_request: TokenRequestFormat,
    pub token_headers: TokenHeaders,
    /// Headers sent with usage requests only (names lowercase), after `headers`.
    pub usage_headers: BTreeMap<String, String>,
}

impl Default for RequestShape {
    /// RFC 6749 / 7009 / 8252 shapes: what every configured provider got before these
    /// properties existed.
    fn default() -> Self {
        RequestShape {
            redirect_host: RedirectHost::Ipv4Loopback,
            refresh_scopes: Vec::new(),
            revoke_request: TokenRequestFormat::Form,
            token_headers: TokenHeaders::Standard,
            usage_headers: BTreeMap::new(),
        }
    }
}

/// The scopes Claude Code asks for at login.
pub const CLAUDE_CODE_LOGIN_SCOPES: [&str; 6] = [
    "org:create_api_key",
    "user:profile",
    "user:inference",
    "user:sessions:claude_code",
    "user:mcp_servers",
    "user:file_upload",
];

/// The one login scope Claude Code does not send again when it refreshes.
const NOT_REFRESHED: &str = "org:create_api_key";

impl RequestShape {
    /// Claude Code's shapes: `localhost` redirect, the login scopes but `org:create_api_key`
    /// in every refresh, a JSON revocation, no client headers on token requests, and
    /// `anthropic-beta: oauth-2025-04-20` on the usage request only.
    pub fn claude_code() -> Self {
        RequestShape {
            redirect_host: RedirectHost::Localhost,
            refresh_scopes: CLAUDE_CODE_LOGIN_SCOPES
                .iter()
                .filter(|s| **s != NOT_REFRESHED)
                .map(|s| (*s).to_owned())
                .collect(),
            revoke_request: TokenRequestFormat::Json,
            token_headers: TokenHeaders::Minimal,
            usage_headers: BTreeMap::from([(
                "anthropic-beta".to_owned(),
                "oauth-2025-04-20".to_owned(),
            )]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_codes_refresh_scopes_are_its_login_scopes_but_org_create_api_key() {
        let shape = RequestShape::claude_code();
        assert_eq!(
            shape.refresh_scopes.join(" "),
            "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
        );
        assert_eq!(RequestShape::default().refresh_scopes, Vec::<String>::new());
    }
}
