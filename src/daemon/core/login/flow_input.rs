//! Checks on what a client sends for an interactive login: the loopback redirect URI a
//! browser login names, the `state` it brings back (compared in constant time), and the
//! ids pending logins are known by. Pure functions, no state.

use reqwest::Url;

use crate::protocol::{ErrorCode, ErrorReply};

/// A fresh login id: 128 bits from a CSPRNG (oauth2's, the one its `state` and PKCE
/// verifier come from), base64url. Only the socket's own user can use it, and completing a
/// login also needs the code and its `state`; still, an id must not be guessable.
pub(in crate::daemon) fn new_flow_id() -> String {
    oauth2::CsrfToken::new_random().into_secret()
}

/// The CLI's loopback redirect: `http://127.0.0.1:PORT/...` or `http://[::1]:PORT/...`
/// with an explicit port (RFC 8252 §7.3). Anything else could send the code elsewhere.
pub(in crate::daemon) fn loopback_redirect(text: &str) -> Result<Url, ErrorReply> {
    let bad = |why: &str| {
        ErrorReply::new(
            ErrorCode::BadRequest,
            format!(
                "redirect_uri {text:?} {why}; the browser flow redirects to http://127.0.0.1:PORT/callback"
            ),
        )
    };
    let url = Url::parse(text).map_err(|_| bad("is not a URL"))?;
    if url.scheme() != "http" {
        return Err(bad("is not http"));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    if !loopback || url.port().is_none() {
        return Err(bad("is not a loopback address with a port"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("has a query, fragment or user"));
    }
    Ok(url)
}

/// Compares two byte strings in time that depends only on their lengths.
pub(in crate::daemon) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_redirects_with_a_port_are_taken() {
        for good in [
            "http://127.0.0.1:4242/callback",
            "http://[::1]:8080/callback",
            "http://127.0.0.9:1/",
        ] {
            assert!(loopback_redirect(good).is_ok(), "{good}");
        }
        for bad in [
            "https://127.0.0.1:4242/callback",
            "http://127.0.0.1/callback",
            "http://localhost:4242/callback",
            "http://evil.example:4242/callback",
            "http://10.0.0.1:4242/callback",
            "http://127.0.0.1:4242/callback?x=1",
            "http://u@127.0.0.1:4242/callback",
            "not a url",
            "",
        ] {
            let err = loopback_redirect(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadRequest, "{bad}");
        }
    }

    #[test]
    fn states_compare_by_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn flow_ids_are_unique_base64url() {
        let a = new_flow_id();
        assert_eq!(a.len(), 22, "16 bytes in unpadded base64url: {a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{a}"
        );
        assert_ne!(a, new_flow_id());
    }
}
