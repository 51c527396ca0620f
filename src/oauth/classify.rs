//! Turns a token endpoint's reply into a typed outcome. Pure: no I/O, so every rule is
//! unit-tested. The rules (RFC 6749 §5.2 plus what real providers do):
//! - 200 with a JSON body holding a non-empty `access_token`: refreshed (read by
//!   [`super::grant`]). A 200 with a readable `refresh_token` but no usable access token is
//!   refreshed too, with a `defect`: the grant has rotated and its refresh token is kept.
//! - 400/401 with `error=invalid_grant`: the server-side session is gone (permanent).
//! - 400/401 with `error=invalid_client` or `unauthorized_client`: the client is refused
//!   (permanent).
//! - everything else (5xx, 429, other 4xx, a 200 without a refresh token that does not
//!   parse, network errors):
//!   transient. A transient outcome never deactivates a slot.
//!
//! Error texts never contain the reply body: a provider may echo a token back.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::cause::Cause;
use super::grant::parse_grant;
use crate::secret::Secret;

/// Longest `Retry-After` honoured; a provider asking for more is capped so a slot is never
/// parked for days by one header.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// What a token request came to.
#[derive(Debug)]
pub enum TokenOutcome {
    Refreshed(TokenGrant),
    /// May pass: retry later (`retry_after` from the server, if it said).
    Transient {
        error: String,
        /// What kind of failure, for advice to a person (a login's reply).
        cause: Cause,
        retry_after: Option<Duration>,
    },
    /// Will not pass by retrying: the slot needs a new login.
    Permanent {
        reason: PermanentReason,
        error: String,
    },
}

/// Why a slot cannot be refreshed any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermanentReason {
    /// `invalid_grant`: the refresh token or its grant was revoked or expired.
    SessionExpired,
    /// `invalid_client` / `unauthorized_client`: the provider refuses our client.
    ClientRejected,
}

impl PermanentReason {
    /// The `reason` string of `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            PermanentReason::SessionExpired => "session_expired",
            PermanentReason::ClientRejected => "client_rejected",
        }
    }
}

/// The permanent meaning of an OAuth `error` code from a token endpoint, if it has one.
pub fn permanent_reason(code: &str) -> Option<PermanentReason> {
    match code {
        "invalid_grant" => Some(PermanentReason::SessionExpired),
        "invalid_client" | "unauthorized_client" => Some(PermanentReason::ClientRejected),
        _ => None,
    }
}

/// A successful token response.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub access_token: Secret,
    /// A rotated refresh token, when the provider sent one.
    pub refresh_token: Option<Secret>,
    pub expires_in: Option<Duration>,
    pub scope: Option<Vec<String>>,
    pub id_token: Option<Secret>,
    /// The account's e-mail when the token response itself names it (Claude does, under
    /// `account.email_address`).
    pub account_email: Option<String>,
    /// The account's stable id when the token response names it (Claude's `account.uuid`).
    pub account_subject: Option<String>,
    /// Set when the reply rotated the refresh token but its access token cannot be used
    /// (missing, or the body unreadable or over the parse limit): what was wrong. Then
    /// `access_token` is empty and `expires_in` zero; only `refresh_token` counts, and it
    /// must be stored all the same (the server has already retired the one we sent).
    pub defect: Option<String>,
    /// Set when the reply's `expires_in` was adjusted (capped, or unreadable and assumed):
    /// what was done, for the log. Never holds a value from the reply.
    pub note: Option<String>,
}

impl TokenGrant {
    /// A grant of which only the rotated refresh token could be read (see [`Self::defect`]).
    pub fn defective(refresh_token: Secret, defect: String) -> Self {
        TokenGrant {
            access_token: Secret::new(""),
            refresh_token: Some(refresh_token),
            expires_in: Some(Duration::ZERO),
            scope: None,
            id_token: None,
            account_email: None,
            account_subject: None,
            defect: Some(defect),
            note: None,
        }
    }
}

#[derive(Deserialize)]
struct RawError {
    error: Option<String>,
}

/// Classifies a token endpoint reply. `retry_after` is the raw `Retry-After` header;
/// `complete` is false when `body` is only the beginning of a longer reply. Never panics,
/// whatever the reply.
pub fn classify_reply(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    complete: bool,
    now: DateTime<Utc>,
) -> TokenOutcome {
    let retry_after = retry_after.and_then(|v| parse_retry_after(v, now));
    match status {
        200 => parse_grant(body, complete),
        400 | 401 => {
            let code = serde_json::from_slice::<RawError>(body)
                .ok()
                .and_then(|e| e.error);
            match (code.as_deref(), code.as_deref().and_then(permanent_reason)) {
                (_, Some(reason @ PermanentReason::SessionExpired)) => TokenOutcome::Permanent {
                    reason,
                    error: format!(
                        "HTTP {status}: invalid_grant (the server-side session is gone)"
                    ),
                },
                (Some(c), Some(reason @ PermanentReason::ClientRejected)) => {
                    TokenOutcome::Permanent {
                        reason,
                        error: format!("HTTP {status}: {c} (the provider refuses this client)"),
                    }
                }
                (Some(other), _) => TokenOutcome::Transient {
                    error: format!("HTTP {status}: {}", printable_code(other)),
                    cause: Cause::Other,
                    retry_after,
                },
                (None, _) => TokenOutcome::Transient {
                    error: format!("HTTP {status} without an OAuth error code"),
                    cause: Cause::Other,
                    retry_after,
                },
            }
        }
        429 => TokenOutcome::Transient {
            error: "HTTP 429: rate limited".into(),
            cause: Cause::of_status(429, retry_after),
            retry_after,
        },
        _ => TokenOutcome::Transient {
            error: format!("HTTP {status}"),
            cause: Cause::of_status(status, retry_after),
            retry_after,
        },
    }
}

/// `Retry-After`: delta seconds or an HTTP date (RFC 9110 §10.2.3), capped.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An error code from the wire, trimmed to something safe to log.
pub(super) fn printable_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_graphic)
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn classify(status: u16, body: &str) -> TokenOutcome {
        classify_reply(status, None, body.as_bytes(), true, now())
    }

    #[test]
    fn a_full_token_response_is_refreshed() {
        let body = r#"{"access_token":"at","refresh_token":"rt2","expires_in":3600,"scope":"a b","token_type":"Bearer","account":{"email_address":"a@b.c"}}"#;
        let TokenOutcome::Refreshed(grant) = classify(200, body) else {
            panic!("expected refreshed")
        };
        assert_eq!(grant.access_token.expose(), "at");
        assert_eq!(grant.refresh_token.unwrap().expose(), "rt2");
        assert_eq!(grant.expires_in, Some(Duration::from_secs(3600)));
        assert_eq!(grant.scope.unwrap(), vec!["a", "b"]);
        assert_eq!(grant.account_email.as_deref(), Some("a@b.c"));
    }

    #[test]
    fn expires_in_as_a_string_is_accepted_and_absent_is_unknown() {
        let TokenOutcome::Refreshed(g) = classify(200, r#"{"access_token":"a","expires_in":"60"}"#)
        else {
            panic!()
        };
        assert_eq!(g.expires_in, Some(Duration::from_secs(60)));
        let TokenOutcome::Refreshed(g) = classify(200, r#"{"access_token":"a"}"#) else {
            panic!()
        };
        assert_eq!(g.expires_in, None);
        assert!(g.refresh_token.is_none());
    }

    #[test]
    fn invalid_grant_means_the_session_expired() {
        for status in [400, 401] {
            let outcome = classify(
                status,
                r#"{"error":"invalid_grant","error_description":"x"}"#,
            );
            assert!(matches!(
                outcome,
                TokenOutcome::Permanent {
                    reason: PermanentReason::SessionExpired,
                    ..
                }
            ));
        }
    }

    #[test]
    fn a_refused_client_is_permanent() {
        for code in ["invalid_client", "unauthorized_client"] {
            let outcome = classify(401, &format!(r#"{{"error":"{code}"}}"#));
            assert!(matches!(
                outcome,
                TokenOutcome::Permanent {
                    reason: PermanentReason::ClientRejected,
                    ..
                }
            ));
        }
    }

    #[test]
    fn server_errors_rate_limits_and_junk_are_transient() {
        for (status, body) in [
            (500, "oops"),
            (502, ""),
            (503, r#"{"error":"invalid_grant"}"#),
            (429, ""),
            (400, "<html>proxy error</html>"),
            (400, r#"{"error":"invalid_request"}"#),
            (403, "forbidden"),
            (200, "not json"),
            (200, r#"{"token_type":"Bearer"}"#),
            (200, r#"{"access_token":""}"#),
            (200, r#"["access_token"]"#),
            (302, ""),
        ] {
            let outcome = classify(status, body);
            assert!(
                matches!(outcome, TokenOutcome::Transient { .. }),
                "{status} {body:?} gave {outcome:?}"
            );
        }
    }

    #[test]
    fn errors_never_echo_the_body() {
        let TokenOutcome::Transient { error, .. } =
            classify(200, r#"{"access_token":"SECRET-AT","expires_in":1,"#)
        else {
            panic!()
        };
        assert!(!error.contains("SECRET-AT"), "{error}");
        let TokenOutcome::Transient { error, .. } =
            classify(400, r#"{"error":"x\u0000y\nSECRET"}"#)
        else {
            panic!()
        };
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date_and_capped() {
        let outcome = classify_reply(429, Some("7"), b"", true, now());
        let TokenOutcome::Transient { retry_after, .. } = outcome else {
            panic!()
        };
        assert_eq!(retry_after, Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 12:01:00 GMT", now()),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("99999999", now()), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now()), None);
    }
}
