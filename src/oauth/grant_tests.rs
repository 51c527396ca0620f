//! Unit and property tests of [`super`]: lifetimes are clamped, and a 200 reply's
//! refresh token is kept whatever else is wrong with the reply.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn parse(body: &str) -> TokenOutcome {
    parse_grant(body.as_bytes(), true)
}

fn grant(body: &str) -> TokenGrant {
    match parse(body) {
        TokenOutcome::Refreshed(grant) => grant,
        other => panic!("expected a grant from {body}, got {other:?}"),
    }
}

fn kept(outcome: &TokenOutcome) -> Option<&str> {
    match outcome {
        TokenOutcome::Refreshed(grant) => grant.refresh_token.as_ref().map(Secret::expose),
        _ => None,
    }
}

const YEAR: u64 = 365 * 24 * 3600;

#[test]
fn lifetimes_over_a_year_are_capped_without_overflow() {
    for expires_in in [
        "1000000000000",
        "10000000000000",
        "18446744073709551615",
        "1e300",
        "\"1e13\"",
    ] {
        let g = grant(&format!(
            r#"{{"access_token":"a","refresh_token":"r","expires_in":{expires_in}}}"#
        ));
        assert_eq!(g.expires_in, Some(MAX_LIFETIME), "{expires_in}");
        assert!(g.note.unwrap().contains("capped"));
        assert!(g.defect.is_none());
    }
    assert_eq!(MAX_LIFETIME.as_secs(), YEAR);
}

#[test]
fn short_and_exact_lifetimes_are_kept_as_said() {
    for (expires_in, secs) in [("0", 0), ("1", 1), ("3600", 3600), ("\"60\"", 60)] {
        let g = grant(&format!(
            r#"{{"access_token":"a","expires_in":{expires_in}}}"#
        ));
        assert_eq!(
            g.expires_in,
            Some(Duration::from_secs(secs)),
            "{expires_in}"
        );
        assert!(g.note.is_none());
    }
    let at_cap = format!(r#"{{"access_token":"a","expires_in":{YEAR}}}"#);
    assert_eq!(grant(&at_cap).expires_in, Some(MAX_LIFETIME));
}

#[test]
fn unreadable_lifetimes_are_assumed_short_and_the_tokens_kept() {
    for expires_in in [
        "-1", "-1e300", "\"soon\"", "true", "[1]", "{}", "\"NaN\"", "\"-5\"",
    ] {
        let g = grant(&format!(
            r#"{{"access_token":"a","refresh_token":"r2","expires_in":{expires_in}}}"#
        ));
        assert_eq!(g.expires_in, Some(UNREADABLE_LIFETIME), "{expires_in}");
        assert_eq!(g.refresh_token.unwrap().expose(), "r2");
        assert!(g.defect.is_none());
    }
}

#[test]
fn a_reply_without_a_usable_access_token_keeps_its_refresh_token() {
    for body in [
        r#"{"refresh_token":"r2"}"#,
        r#"{"refresh_token":"r2","access_token":""}"#,
        r#"{"refresh_token":"r2","access_token":42}"#,
        r#"{"refresh_token":"r2","access_token":"a""#,
        r#"<html>{"refresh_token": "r2"}"#,
    ] {
        let g = grant(body);
        assert_eq!(g.refresh_token.unwrap().expose(), "r2", "{body}");
        assert!(g.defect.is_some(), "{body}");
        assert!(g.access_token.is_empty());
        assert_eq!(g.expires_in, Some(Duration::ZERO));
    }
}

#[test]
fn fields_of_the_wrong_type_do_not_lose_the_grant() {
    let g = grant(
        r#"{"access_token":"a","refresh_token":"r2","scope":7,"id_token":[],"account":{"uuid":1,"email_address":{}}}"#,
    );
    assert_eq!(g.refresh_token.unwrap().expose(), "r2");
    assert!(g.scope.is_none() && g.id_token.is_none() && g.account_email.is_none());
}

#[test]
fn an_oversized_body_is_not_parsed_but_its_refresh_token_is_kept() {
    let padding = "x".repeat(MAX_PARSED_BODY);
    let body =
        json!({"access_token": "a", "pad": padding, "refresh_token": "r2", "expires_in": 3600})
            .to_string();
    let outcome = parse_grant(body.as_bytes(), true);
    assert_eq!(kept(&outcome), Some("r2"));
    let TokenOutcome::Refreshed(g) = outcome else {
        unreachable!()
    };
    assert!(g.defect.unwrap().contains("over"));
    // Cut off before its end: the refresh token is found in the part that was read.
    let body = format!(r#"{{"refresh_token" : "r\"3","pad":"{padding}"#);
    assert_eq!(kept(&parse_grant(body.as_bytes(), false)), Some("r\"3"));
    // Nothing to keep: a transient failure, as before.
    let body = format!(r#"{{"access_token":"a","pad":"{padding}"}}"#);
    assert!(matches!(
        parse_grant(body.as_bytes(), true),
        TokenOutcome::Transient { .. }
    ));
}

#[test]
fn the_scan_skips_a_key_inside_another_string() {
    let body = br#"{"note":"\"refresh_token\":\"fake\"","refresh_token":"real""#;
    assert_eq!(kept(&parse_grant(body, false)), Some("real"));
}

/// Any JSON value, a few levels deep (strings, numbers of every kind, nested objects).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A token-reply-like object: the known fields with arbitrary values, and extra fields.
fn reply_object() -> impl Strategy<Value = Map<String, Value>> {
    let field = prop_oneof![
        Just("access_token".to_owned()),
        Just("refresh_token".to_owned()),
        Just("expires_in".to_owned()),
        Just("scope".to_owned()),
        Just("id_token".to_owned()),
        Just("account".to_owned()),
        ".{0,8}",
    ];
    prop::collection::vec((field, any_json()), 0..8).prop_map(|f| f.into_iter().collect())
}

proptest! {
    // Bounded so the three properties run in a few seconds in CI.
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512),
                                   complete: bool) {
        let _ = parse_grant(&body, complete);
        let _ = crate::oauth::classify_reply(200, Some("1e400"), &body, complete, chrono::Utc::now());
    }

    #[test]
    fn a_string_refresh_token_in_a_json_reply_is_always_kept(
        mut object in reply_object(),
        token in "[ -~]{1,40}",
        with_token: bool,
    ) {
        if with_token {
            object.insert("refresh_token".into(), Value::from(token.clone()));
        }
        let body = serde_json::to_vec(&Value::Object(object.clone())).unwrap();
        let outcome = parse_grant(&body, true);
        let expected = object.get("refresh_token").and_then(Value::as_str).filter(|s| !s.is_empty());
        if let Some(expected) = expected {
            prop_assert_eq!(kept(&outcome), Some(expected));
        }
        if let TokenOutcome::Refreshed(grant) = &outcome {
            prop_assert!(grant.expires_in.is_none_or(|d| d <= MAX_LIFETIME));
        }
    }

    #[test]
    fn arbitrary_json_values_never_panic_and_keep_a_top_level_refresh_token(value in any_json()) {
        let body = serde_json::to_vec(&value).unwrap();
        let outcome = parse_grant(&body, true);
        if let Some(token) = value.get("refresh_token").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            prop_assert_eq!(kept(&outcome), Some(token));
        }
    }
}
