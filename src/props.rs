//! Property tests of the two readers of untrusted text: the socket's request line parser
//! ([`crate::protocol::parse_request`]) and the config loader ([`crate::config::Config`]).
//! On any input they must return, never panic, and an input they refuse must get a clear
//! error: a typed code and a message for a request; a `file:line: key: message` for a
//! config, with a line inside the file. Case counts are bounded so the suite runs in
//! seconds; the failing case proptest prints is the reproduction.

use std::path::Path;

use proptest::prelude::*;

use crate::config::{Config, ConfigError};
use crate::protocol::{ErrorCode, parse_request};

/// Enough cases to cover the generators' shapes, few enough for a couple of seconds.
const CASES: u32 = 256;

/// Request types the daemon knows, and some it does not, for JSON-shaped requests.
const TYPES: &[&str] = &[
    "ping",
    "status",
    "token",
    "refresh",
    "login",
    "login_begin",
    "login_complete",
    "login_wait",
    "login_cancel",
    "logout",
    "shutdown",
    "launch",
    "",
];

/// A JSON value of a few shapes, for request fields.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request-shaped object: a version, a type and some fields, any of them wrong.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    let version = prop_oneof![Just(serde_json::json!(1)), json_value()];
    let fields = prop::collection::btree_map(
        prop::sample::select(
            &[
                "name",
                "provider",
                "refresh_token",
                "flow",
                "flow_id",
                "code",
                "state",
                "timeout_secs",
                "kind",
                "redirect_uri",
                "extra",
            ][..],
        ),
        json_value(),
        0..5,
    );
    (version, prop::sample::select(TYPES), fields).prop_map(|(v, kind, fields)| {
        let mut object = serde_json::Map::new();
        object.insert("v".into(), v);
        object.insert("type".into(), kind.into());
        for (key, value) in fields {
            object.insert(key.into(), value);
        }
        serde_json::to_vec(&object).expect("a JSON object serializes")
    })
}

/// The refusal of a request must be typed and say something.
fn assert_clear_refusal(line: &[u8]) -> Result<(), TestCaseError> {
    if let Err(error) = parse_request(line) {
        prop_assert!(
            matches!(
                error.code,
                ErrorCode::BadRequest | ErrorCode::VersionMismatch
            ),
            "{error:?}"
        );
        prop_assert!(!error.message.trim().is_empty(), "{error:?}");
    }
    Ok(())
}

/// Config keys (top level and nested) and values of many kinds, as YAML lines.
fn yaml_like() -> impl Strategy<Value = String> {
    let key = prop::sample::select(
        &[
            "refresh_before_expiry",
            "quota_interval",
            "stale_after",
            "credential_store",
            "providers",
            "statusline",
            "notifications",
            "alert_command",
            "alerts",
            "remind_every",
            "command_timeout",
            "log_rotation",
            "log_retention",
            "acme",
            "claude",
            "token_url",
            "client_id",
            "usage_url",
            "usage_min_interval",
            "scopes",
            "headers",
            "usage_windows",
            "utilization",
            "bogus",
        ][..],
    );
    let value = prop_oneof![
        Just(String::new()),
        "[0-9]{1,20}(ms|s|m|h|d)?".prop_map(|s| s),
        Just("https://auth.example.com/t".to_owned()),
        Just("[a, b]".to_owned()),
        Just("{}".to_owned()),
        Just("off".to_owned()),
        Just("keychain".to_owned()),
        ".{0,30}".prop_map(|s| s),
    ];
    let line = (0usize..4, key, value)
        .prop_map(|(depth, key, value)| format!("{}{key}: {value}", "  ".repeat(depth)));
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

/// A config either loads or is refused as `file:line: key: message`, the line in the file.
fn assert_clear_config_error(text: &str) -> Result<(), TestCaseError> {
    match Config::parse(text, Path::new("prop.yaml")) {
        Ok(_) => {}
        Err(ConfigError::Invalid {
            line, key, message, ..
        }) => {
            // YAML breaks lines at `\r\n`, `\n` and a bare `\r`; `str::lines` knows only
            // the first two, so count the way the parser does.
            let lines = text
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .lines()
                .count()
                .max(1);
            prop_assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}");
            prop_assert!(!key.is_empty());
            prop_assert!(!message.trim().is_empty());
        }
        Err(other) => prop_assert!(false, "parsing text gave {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_bytes_as_a_request_line_get_an_answer(line in prop::collection::vec(any::<u8>(), 0..256)) {
        assert_clear_refusal(&line)?;
    }

    #[test]
    fn request_shaped_json_gets_a_request_or_a_typed_refusal(line in request_like()) {
        assert_clear_refusal(&line)?;
    }

    #[test]
    fn any_text_as_a_config_loads_or_is_refused_with_its_line(text in ".{0,200}") {
        assert_clear_config_error(&text)?;
    }

    #[test]
    fn yaml_shaped_configs_load_or_are_refused_with_their_line(text in yaml_like()) {
        assert_clear_config_error(&text)?;
    }
}

/// Found by the property above (input `"\r\r`): YAML counts a bare `\r` as a line break,
/// so the error's line may be past what `str::lines` counts. The check counts as YAML does.
#[test]
fn a_bare_carriage_return_counts_as_a_line_break() {
    assert_clear_config_error("\"\r\r").expect("the error names a line of the text");
}

/// Found by the property above (input `?`, a YAML key with no name): the error named an
/// empty key (`prop.yaml:1: : unknown field ...`). It now says which key: one with no name.
#[test]
fn a_lone_question_mark_is_refused_with_its_line() {
    assert_clear_config_error("?").expect("a clear error");
}
