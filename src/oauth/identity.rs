//! Learning which account a slot belongs to, from an id_token's claims or a userinfo reply.
//! The id_token is only decoded, not verified: the account name is a label shown in
//! `status`, never used for an access decision.

use base64::Engine;

use crate::secret::Secret;

/// The `email` (else `sub`) claim of an id_token, if it can be read.
pub fn account_from_id_token(id_token: &Secret) -> Option<String> {
    account_from_claims(&id_token_claims(id_token)?)
}

/// The `email` claim of an id_token, if it has one.
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
    ["email", "sub"].iter().find_map(|key| {
        claims
            .get(key)?
            .as_str()
            .filter(|v| !v.is_empty() && v.len() <= 320 && !v.chars().any(char::is_control))
            .map(str::to_owned)
    })
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
    fn junk_tokens_give_no_account() {
        for junk in ["", "a", "a.b", "a.!!!.c", "a.e30.c"] {
            assert_eq!(account_from_id_token(&Secret::new(junk)), None, "{junk}");
        }
        assert_eq!(account_from_id_token(&jwt(r#"{"email":"a\nb"}"#)), None);
    }
}
