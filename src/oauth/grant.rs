//! Reads a token endpoint's 200 reply into a [`TokenGrant`]. Pure: no I/O, no clock.
//!
//! The rule this module exists for: **a 200 reply that carries a `refresh_token` has already
//! rotated the grant at the server.** Whatever else is wrong with it (no access token, an
//! `expires_in` that is negative, not a number or absurdly large, a body over the parse
//! limit, fields of the wrong type), its refresh token is kept, never dropped; the grant
//! then says what was wrong in [`TokenGrant::defect`] and the caller re-refreshes soon.
//!
//! Times from the server are never trusted into overflow: a lifetime is clamped to
//! [`MAX_LIFETIME`], and one that cannot be read is taken as [`UNREADABLE_LIFETIME`].
//! A lifetime that is merely short (even 0) is kept as said: raising it would make sessctl
//! hand out tokens the server already considers expired. What stops a refresh loop is the
//! daemon's minimum interval between requests (`daemon::pacing`), not this parser.
//!
//! Never echoes the body: errors and notes name fields, never values.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::classify::{TokenGrant, TokenOutcome};
use crate::secret::Secret;

/// Longest access-token lifetime believed. A provider saying more (1e12 s is the year
/// 33715) gets this, so the slot is still refreshed within a year.
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Lifetime assumed when `expires_in` is present but negative or not a number: short, so
/// the token is replaced soon, but long enough to be used meanwhile.
pub const UNREADABLE_LIFETIME: Duration = Duration::from_secs(60);

/// Largest body parsed as a whole. A token response is a few KiB; a larger body is only
/// searched for its `refresh_token` ([`salvage_refresh_token`]).
pub const MAX_PARSED_BODY: usize = 256 * 1024;

/// Reads a 200 body. `complete` is false when the body was cut off at the read limit (only
/// its beginning is here).
pub fn parse_grant(body: &[u8], complete: bool) -> TokenOutcome {
    if !complete || body.len() > MAX_PARSED_BODY {
        return rotated_only(
            salvage_refresh_token(body, complete),
            format!("the token response is over {MAX_PARSED_BODY} bytes"),
        );
    }
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return rotated_only(None, "the token response is not a JSON object".into());
        }
        Err(_) => {
            return rotated_only(
                salvage_refresh_token(body, false),
                "the token response is not valid JSON".into(),
            );
        }
    };
    grant_from(&object)
}

/// A grant from a JSON object, each field read loosely: a field of the wrong type is as if
/// absent, and never makes the refresh token unreadable.
fn grant_from(object: &Map<String, Value>) -> TokenOutcome {
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let refresh_token = text("refresh_token").map(Secret::new);
    let Some(access_token) = text("access_token") else {
        return rotated_only(
            refresh_token,
            "the token response has no access_token".into(),
        );
    };
    let (expires_in, note) = lifetime(object.get("expires_in"));
    let account = object.get("account").and_then(Value::as_object);
    TokenOutcome::Refreshed(TokenGrant {
        access_token: Secret::new(access_token),
        refresh_token,
        expires_in,
        scope: text("scope").map(|s| s.split_whitespace().map(str::to_owned).collect()),
        id_token: text("id_token").map(Secret::new),
        account_email: account
            .and_then(|a| a.get("email_address"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        account_subject: account
            .and_then(|a| a.get("uuid"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        defect: None,
        note,
    })
}

/// A 200 whose access token cannot be used: kept as a grant with a [`TokenGrant::defect`]
/// when it rotated a refresh token, a transient failure when it did not.
fn rotated_only(refresh_token: Option<Secret>, what: String) -> TokenOutcome {
    match refresh_token {
        Some(refresh_token) => TokenOutcome::Refreshed(TokenGrant::defective(refresh_token, what)),
        None => TokenOutcome::Transient {
            error: format!("HTTP 200 but {what}"),
            cause: super::Cause::Other,
            retry_after: None,
        },
    }
}

/// `expires_in` as a lifetime within bounds, and a note when it was adjusted. Absent or
/// `null` is unknown (`None`); a number or numeric string is clamped to [`MAX_LIFETIME`];
/// anything else is [`UNREADABLE_LIFETIME`].
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "seconds as f64 only to be clamped; the guard keeps the cast back in range"
)]
pub fn lifetime(value: Option<&Value>) -> (Option<Duration>, Option<String>) {
    let seconds = match value {
        None | Some(Value::Null) => return (None, None),
        Some(Value::Number(n)) => n.as_u64().map(|s| s as f64).or_else(|| n.as_f64()),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match seconds {
        // `as` saturates; the cap keeps the value far from u64::MAX.
        Some(s) if s.is_finite() && s >= 0.0 => clamp_lifetime(Duration::from_secs(
            s.min(MAX_LIFETIME.as_secs_f64() + 1.0) as u64,
        )),
        _ => (
            Some(UNREADABLE_LIFETIME),
            Some(format!(
                "the provider's expires_in is not a non-negative number; assumed {} s",
                UNREADABLE_LIFETIME.as_secs()
            )),
        ),
    }
}

/// A lifetime capped at [`MAX_LIFETIME`], with a note when it was capped.
pub fn clamp_lifetime(lifetime: Duration) -> (Option<Duration>, Option<String>) {
    if lifetime > MAX_LIFETIME {
        let note = format!(
            "the provider's expires_in is over a year; capped at {} s",
            MAX_LIFETIME.as_secs()
        );
        (Some(MAX_LIFETIME), Some(note))
    } else {
        (Some(lifetime), None)
    }
}

/// The one field read from an oversized body; serde skips every other field unread.
#[derive(Deserialize)]
struct OnlyRefreshToken {
    refresh_token: Option<Value>,
}

/// The `refresh_token` of a body too large (or too broken) to be parsed as a grant: a
/// complete JSON body is walked without keeping anything else; otherwise the text is
/// searched for `"refresh_token"` followed by `:` and a JSON string.
pub fn salvage_refresh_token(body: &[u8], complete: bool) -> Option<Secret> {
    if complete && let Ok(found) = serde_json::from_slice::<OnlyRefreshToken>(body) {
        return found
            .refresh_token
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .map(Secret::new);
    }
    scan_refresh_token(body)
}

/// The first `"refresh_token": "..."` in `body` whose key is not inside another string
/// (not preceded by a backslash), decoded as a JSON string.
fn scan_refresh_token(body: &[u8]) -> Option<Secret> {
    const KEY: &[u8] = b"\"refresh_token\"";
    let mut from = 0;
    while let Some(at) = find(&body[from..], KEY).map(|i| i + from) {
        from = at + KEY.len();
        if at > 0 && body[at - 1] == b'\\' {
            continue;
        }
        let rest = skip_space(&body[from..]);
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        let rest = skip_space(rest);
        if let Some(literal) = string_literal(rest)
            && let Ok(value) = serde_json::from_slice::<String>(literal)
            && !value.is_empty()
        {
            return Some(Secret::new(value));
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn skip_space(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b" \t\r\n".contains(b))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// The JSON string literal at the start of `bytes`, quotes included, if it is complete.
fn string_literal(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut escaped = false;
    for (i, b) in bytes.iter().enumerate().skip(1) {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'"') => return Some(&bytes[..=i]),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
#[path = "grant_tests.rs"]
mod tests;
