//! Learning which account a slot belongs to, from an `id_token`'s claims or a userinfo reply.
//! The `id_token` is only decoded, not verified: the account is a label shown in `status` and
//! the key that finds an account's slot again at its next login, never an access decision
//! (the tokens themselves are what the provider checks).

use base64::Engine;

use crate::account::Identity;
use crate::secret::Secret;

/// Both the `email` and the `sub` claim of an `id_token`, each if it can be read.
pub fn identity_from_id_token(id_token: &Secret) -> Identity {
    id_token_claims(id_token)
        .map(|claims| identity_from_claims(&claims))
        .unwrap_or_default()
}

/// Both the `email` and the `sub` of a claims object (an `id_token`'s payload or a userinfo
/// reply); only short printable strings are kept.
pub fn identity_from_claims(claims: &serde_json::Value) -> Identity {
    Identity {
        email: claim(claims, "email"),
        subject: claim(claims, "sub"),
    }
}

/// One string claim, if it is a plausible identifier: non-empty, at most 320 bytes (the
/// longest e-mail address), no control characters.
fn claim(claims: &serde_json::Value, key: &str) -> Option<String> {
    claims
        .get(key)?
        .as_str()
        .filter(|v| !v.trim().is_empty() && v.len() <= 320 && !v.chars().any(char::is_control))
        .map(str::to_owned)
}

/// The `email` (else `sub`) claim of an `id_token`, if it can be read.
pub fn account_from_id_token(id_token: &Secret) -> Option<String> {
    account_from_claims(&id_token_claims(id_token)?)
}

/// The `email` claim of an `id_token`, if it has one.
pub fn email_from_id_token(id_token: &Secret) -> Option<String> {
    let claims = id_token_claims(id_token)?;
    let email = account_from_claims(&claims)?;
    (claims.get("email").and_then(|e| e.as_str()) == Some(email.as_str())).then_some(email)
}

/// The decoded (unverified) payload of a JWT.
fn id_token_claims(id_token: &Secret) -> Option<serde_json::Value> {
    let payload = id_token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `email`, else `sub`, from a claims object; only short printable strings are kept.
pub fn account_from_claims(claims: &serde_json::Value) -> Option<String> {
    identity_from_claims(claims).label()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> Secret {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Secret::new(format!(
            "{}.{}.sig",
            engine.encode(r#"{"alg":"none"}"#),
            engine.encode(claims)
        ))
    }

    #[test]
    fn email_is_preferred_then_subject() {
        assert_eq!(
            account_from_id_token(&jwt(r#"{"sub":"u1","email":"a@b.c"}"#)).as_deref(),
            Some("a@b.c")
        );
        assert_eq!(
            account_from_id_token(&jwt(r#"{"sub":"u1"}"#)).as_deref(),
            Some("u1")
        );
    }

    #[test]
    fn only_an_email_claim_counts_as_an_email() {
        assert_eq!(
            email_from_id_token(&jwt(r#"{"sub":"u1","email":"a@b.c"}"#)).as_deref(),
            Some("a@b.c")
        );
        assert_eq!(email_from_id_token(&jwt(r#"{"sub":"u1"}"#)), None);
    }

    #[test]
    fn an_identity_has_both_the_email_and_the_subject() {
        let identity = identity_from_id_token(&jwt(r#"{"sub":"u1","email":"A@b.c"}"#));
        assert_eq!(identity.email.as_deref(), Some("A@b.c"));
        assert_eq!(identity.subject.as_deref(), Some("u1"));
        let blank = identity_from_claims(&serde_json::json!({"sub": "  ", "email": 7}));
        assert_eq!(blank, Identity::default());
    }

    #[test]
    fn junk_tokens_give_no_account() {
        for junk in ["", "a", "a.b", "a.!!!.c", "a.e30.c"] {
            assert_eq!(account_from_id_token(&Secret::new(junk)), None, "{junk}");
        }
        assert_eq!(account_from_id_token(&jwt(r#"{"email":"a\nb"}"#)), None);
    }
}
