//! Format tests: round trips keep every unknown field, each kind of bad input has its own
//! result, and nothing prints a token.

use super::*;
use serde_json::json;

/// A document shaped like Claude Code 2.1.332's, with fields sessctl does not know.
fn full_document() -> Value {
    json!({
        "claudeAiOauth": {
            "accessToken": "at-old",
            "refreshToken": "rt-old",
            "expiresAt": 1_900_000_000_123_i64,
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": "max",
            "rateLimitTier": "default_claude_max_20x",
            "clientId": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
            "refreshTokenExpiresAt": 1_950_000_000_000_i64,
            "accountUuid": "a-1",
            "futureNested": {"deep": [1, 2, {"x": null}]}
        },
        "mcpOAuth": {"server": {"accessToken": "mcp-secret"}},
        "someFutureTopLevel": 3.5
    })
}

fn present(bytes: &[u8]) -> (StoreDocument, OAuthTokens) {
    match parse(bytes).unwrap() {
        StoreContents::Present { document, tokens } => (document, tokens),
        other => panic!("expected a usable login, got {other:?}"),
    }
}

#[test]
fn reads_the_tokens_claude_code_writes() {
    let (_, tokens) = present(&serde_json::to_vec(&full_document()).unwrap());
    assert_eq!(tokens.access_token.expose(), "at-old");
    assert_eq!(tokens.refresh_token.expose(), "rt-old");
    assert_eq!(tokens.expires_at_ms, Some(1_900_000_000_123));
    assert_eq!(
        tokens.scopes.as_deref(),
        Some(&["user:inference".to_owned(), "user:profile".to_owned()][..])
    );
}

#[test]
fn a_rewrite_changes_only_the_tokens_and_keeps_every_unknown_field() {
    let (mut document, _) = present(&serde_json::to_vec(&full_document()).unwrap());
    document.set_tokens(&OAuthTokens {
        access_token: Secret::new("at-new"),
        refresh_token: Secret::new("rt-new"),
        expires_at_ms: Some(1_900_000_999_000),
        scopes: None,
    });
    let written: Value = serde_json::from_slice(&document.to_bytes()).unwrap();

    let mut expected = full_document();
    let oauth = expected["claudeAiOauth"].as_object_mut().unwrap();
    oauth.insert("accessToken".into(), json!("at-new"));
    oauth.insert("refreshToken".into(), json!("rt-new"));
    oauth.insert("expiresAt".into(), json!(1_900_000_999_000_i64));
    assert_eq!(written, expected);
}

#[test]
fn setting_tokens_in_a_new_document_creates_claude_ai_oauth() {
    let mut document = StoreDocument::new();
    document.set_tokens(&OAuthTokens {
        access_token: Secret::new("a"),
        refresh_token: Secret::new("r"),
        expires_at_ms: Some(5),
        scopes: Some(vec!["user:inference".into()]),
    });
    let written: Value = serde_json::from_slice(&document.to_bytes()).unwrap();
    assert_eq!(
        written,
        json!({"claudeAiOauth": {"accessToken": "a", "refreshToken": "r", "expiresAt": 5,
            "scopes": ["user:inference"]}})
    );
}

#[test]
fn empty_and_whitespace_files_are_empty_not_corrupt() {
    assert!(matches!(parse(b"").unwrap(), StoreContents::Empty));
    assert!(matches!(parse(b" \n\t").unwrap(), StoreContents::Empty));
}

#[test]
fn corrupt_json_names_a_position_and_never_the_content() {
    let err = parse(br#"{"claudeAiOauth": {"refreshToken": "rt-secret"#).unwrap_err();
    assert!(
        matches!(err, FormatError::Corrupt { line: 1, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("rt-secret"));
    assert_eq!(parse(b"[1,2]").unwrap_err(), FormatError::NotAnObject);
}

#[test]
fn a_document_without_claude_ai_oauth_is_not_logged_in() {
    let contents = parse(br#"{"mcpOAuth": {}}"#).unwrap();
    assert!(
        matches!(contents, StoreContents::NoOAuth(_)),
        "{contents:?}"
    );
}

#[test]
fn blanked_tokens_are_reported_with_the_login_ended_reason() {
    // What Claude Code writes when a refresh token died under it.
    let bytes = br#"{"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0,
        "loginEnded": "time_limit", "subscriptionType": "pro"}}"#;
    match parse(bytes).unwrap() {
        StoreContents::Blanked { login_ended, .. } => {
            assert_eq!(login_ended.as_deref(), Some("time_limit"));
        }
        other => panic!("expected blanked, got {other:?}"),
    }
    let no_reason =
        br#"{"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0}}"#;
    assert!(matches!(
        parse(no_reason).unwrap(),
        StoreContents::Blanked {
            login_ended: None,
            ..
        }
    ));
}

#[test]
fn wrong_field_types_name_the_field() {
    let err = parse(br#"{"claudeAiOauth": "x"}"#).unwrap_err();
    assert_eq!(
        err,
        FormatError::BadField {
            field: "claudeAiOauth",
            expected: "an object"
        }
    );
    let err =
        parse(br#"{"claudeAiOauth": {"refreshToken": "r", "expiresAt": "soon"}}"#).unwrap_err();
    assert!(matches!(
        err,
        FormatError::BadField {
            field: "expiresAt",
            ..
        }
    ));
    let err = parse(br#"{"claudeAiOauth": {"refreshToken": 7}}"#).unwrap_err();
    assert!(matches!(
        err,
        FormatError::BadField {
            field: "refreshToken",
            ..
        }
    ));
}

#[test]
fn debug_output_shows_no_token() {
    let contents = parse(&serde_json::to_vec(&full_document()).unwrap()).unwrap();
    let shown = format!("{contents:?}");
    for secret in ["at-old", "rt-old", "mcp-secret"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn remove_oauth_keeps_the_other_logins() {
    let (mut document, _) = present(&serde_json::to_vec(&full_document()).unwrap());
    document.remove_oauth();
    let contents = parse(&document.to_bytes()).unwrap();
    let StoreContents::NoOAuth(rest) = contents else {
        panic!("expected no OAuth login");
    };
    assert!(rest.field("mcpOAuth").is_some());
}

#[test]
fn a_new_login_replaces_claude_ai_oauth_whole_and_keeps_the_top_level() {
    let (mut document, _) = present(&serde_json::to_vec(&full_document()).unwrap());
    document.set_login(&OAuthTokens {
        access_token: Secret::new("at-new"),
        refresh_token: Secret::new("rt-new"),
        expires_at_ms: Some(7),
        scopes: Some(vec!["user:inference".into()]),
    });
    let written: Value = serde_json::from_slice(&document.to_bytes()).unwrap();
    let mut expected = full_document();
    expected["claudeAiOauth"] = json!({"accessToken": "at-new", "refreshToken": "rt-new",
        "expiresAt": 7, "scopes": ["user:inference"], "subscriptionType": null,
        "rateLimitTier": null});
    assert_eq!(written, expected);
}

#[test]
fn account_fields_leave_the_tokens_behind_and_come_back_with_their_account() {
    let (document, _) = present(&serde_json::to_vec(&full_document()).unwrap());
    let mut fields = document.account_fields();
    fields.insert("idToken".into(), json!("a-token-by-another-name"));
    let kept: Vec<&str> = fields.keys().map(String::as_str).collect();
    for gone in ["accessToken", "refreshToken"] {
        assert!(!kept.contains(&gone), "{kept:?}");
    }
    for stays in [
        "subscriptionType",
        "rateLimitTier",
        "refreshTokenExpiresAt",
        "scopes",
    ] {
        assert!(kept.contains(&stays), "{kept:?}");
    }
    // Another store, holding another account: it takes this account with its fields.
    let other = json!({
        "claudeAiOauth": {"accessToken": "at-b", "refreshToken": "rt-b", "subscriptionType": "pro", "organizationUuid": "org-b"},
        "mcpOAuth": {"server": {}}
    });
    let (mut target, _) = present(&serde_json::to_vec(&other).unwrap());
    let tokens = OAuthTokens {
        access_token: Secret::new("at-a"),
        refresh_token: Secret::new("rt-a"),
        expires_at_ms: Some(5),
        scopes: None,
    };
    target.replace_account(&fields, &tokens);
    let written: Value = serde_json::from_slice(&target.to_bytes()).unwrap();
    let oauth = &written["claudeAiOauth"];
    assert_eq!(oauth["subscriptionType"], "max");
    assert_eq!(oauth["rateLimitTier"], "default_claude_max_20x");
    assert_eq!(oauth["refreshToken"], "rt-a");
    assert_eq!(oauth["expiresAt"], 5);
    assert!(oauth.get("organizationUuid").is_none(), "{oauth}");
    assert!(oauth.get("idToken").is_none(), "{oauth}");
    assert!(written.get("mcpOAuth").is_some());
}
