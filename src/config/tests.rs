//! Tests of the config: parsing, every refusal with its line and key, the example file.

use super::locate::key_line;
use super::values::parse_endpoint;
use super::*;

/// Parses `text` as a config file named `test.yaml`.
pub(crate) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.yaml"))
}

/// The (line, key, message) of an error that must be `Invalid`.
pub(crate) fn refused(text: &str) -> (usize, String, String) {
    match parse(text) {
        Err(ConfigError::Invalid {
            line, key, message, ..
        }) => (line, key, message),
        other => panic!("expected Invalid for {text:?}, got {other:?}"),
    }
}

const ACME: &str =
    "providers:\n  acme:\n    token_url: https://auth.example.com/t\n    client_id: id\n";

#[test]
fn empty_or_comment_only_files_give_the_defaults() {
    for text in ["", "\n\n", "# nothing\n  # here\n", "~\n", "---\n"] {
        let c = parse(text).unwrap();
        assert_eq!(c.refresh_before_expiry, Duration::from_secs(300));
        assert_eq!(c.quota_interval, Duration::from_secs(300));
        assert_eq!(c.stale_after, Duration::from_secs(900));
        assert_eq!(c.credential_store, CredentialStoreKind::Keychain);
        assert_eq!(c.providers.keys().collect::<Vec<_>>(), ["claude"]);
    }
}

#[test]
fn builtin_claude_has_the_documented_endpoints() {
    let c = Config::default();
    let p = &c.providers["claude"];
    assert_eq!(p.name, "claude");
    assert_eq!(
        p.token_url.as_str(),
        "https://platform.claude.com/v1/oauth/token"
    );
    assert_eq!(p.client_id, "9d1c250a-e61b-44d9-88ed-5944d1962f5e");
    assert_eq!(p.token_request, TokenRequestFormat::Json);
    assert_eq!(
        p.usage_url.as_ref().map(Url::as_str),
        Some("https://api.anthropic.com/api/oauth/usage")
    );
    assert!(
        p.headers.is_empty(),
        "token requests carry no anthropic-beta"
    );
    assert_eq!(p.shape.usage_headers["anthropic-beta"], "oauth-2025-04-20");
    assert_eq!(
        p.scopes.join(" "),
        "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
    );
    assert_eq!(
        p.authorize_url.as_ref().map(Url::as_str),
        Some("https://claude.com/cai/oauth/authorize?code=true")
    );
    assert_eq!(
        p.revoke_url.as_ref().map(Url::as_str),
        Some("https://platform.claude.com/v1/oauth/token/revoke")
    );
    assert_eq!(p.shape, crate::config::RequestShape::claude_code());
    assert_eq!(p.usage_min_interval, Duration::from_secs(180));
    assert!(p.userinfo_url.is_none() && p.client_secret.is_none());
}

#[test]
fn a_claude_entry_overrides_only_the_fields_it_gives() {
    let c = parse("providers:\n  claude:\n    token_url: http://127.0.0.1:8080/t\n    usage_min_interval: 10m\n").unwrap();
    let p = &c.providers["claude"];
    assert_eq!(p.token_url.as_str(), "http://127.0.0.1:8080/t");
    assert_eq!(p.usage_min_interval, Duration::from_secs(600));
    assert_eq!(p.client_id, "9d1c250a-e61b-44d9-88ed-5944d1962f5e");
    assert_eq!(p.token_request, TokenRequestFormat::Json);
    assert_eq!(p.shape.usage_headers.len(), 1);
    let c = parse("providers:\n  claude:\n").unwrap();
    assert_eq!(c.providers["claude"].scopes.len(), 6);
    let c = parse("providers:\n  claude:\n    redirect_host: 127.0.0.1\n    refresh_scopes: []\n")
        .unwrap();
    let p = &c.providers["claude"];
    assert_eq!(
        p.shape.redirect_host,
        crate::config::RedirectHost::Ipv4Loopback
    );
    assert!(p.shape.refresh_scopes.is_empty());
    assert_eq!(p.shape.revoke_request, TokenRequestFormat::Json);
}

#[test]
fn a_new_provider_gets_form_requests_and_a_60s_usage_interval() {
    let c = parse(ACME).unwrap();
    let p = &c.providers["acme"];
    assert_eq!(p.name, "acme");
    assert_eq!(p.token_request, TokenRequestFormat::Form);
    assert_eq!(p.usage_min_interval, Duration::from_secs(60));
    assert!(p.scopes.is_empty() && p.headers.is_empty());
    assert_eq!(p.shape, crate::config::RequestShape::default());
    assert!(c.providers.contains_key("claude"));
}

#[test]
fn a_new_provider_without_token_url_or_client_id_is_refused_at_its_name() {
    let (line, key, message) = refused("providers:\n  acme:\n    client_id: x\n");
    assert_eq!((line, key.as_str()), (2, "providers.acme"));
    assert!(message.contains("token_url is required"), "{message}");
    let (_, _, message) = refused("providers:\n  acme:\n    token_url: https://a/t\n");
    assert!(message.contains("client_id is required"), "{message}");
    let (line, _, _) = refused("providers:\n  acme:\n");
    assert_eq!(line, 2);
}

#[test]
fn every_key_is_read() {
    let text = "refresh_before_expiry: 0s\nquota_interval: 1h30m\nstale_after: 2d\n\
        credential_store: file\nstatusline:\n  format: '{name}'\n\
        providers:\n  acme:\n    token_url: https://a.example/t\n    client_id: id\n\
        \x20   client_secret: 12345\n    scopes: [openid, 'user:inference']\n\
        \x20   revoke_url: https://a.example/r\n    usage_url: https://a.example/u\n\
        \x20   userinfo_url: https://a.example/i\n    token_request: json\n\
        \x20   headers:\n      X-Client: sessctl\n    usage_min_interval: 500ms\n";
    let c = parse(text).unwrap();
    assert_eq!(c.refresh_before_expiry, Duration::ZERO);
    assert_eq!(c.quota_interval, Duration::from_secs(5400));
    assert_eq!(c.stale_after, Duration::from_secs(2 * 86400));
    assert_eq!(c.credential_store, CredentialStoreKind::File);
    let p = &c.providers["acme"];
    assert_eq!(p.client_secret.as_ref().map(Secret::expose), Some("12345"));
    assert_eq!(p.scopes, ["openid", "user:inference"]);
    assert_eq!(
        p.revoke_url.as_ref().unwrap().as_str(),
        "https://a.example/r"
    );
    assert_eq!(
        p.usage_url.as_ref().unwrap().as_str(),
        "https://a.example/u"
    );
    assert_eq!(
        p.userinfo_url.as_ref().unwrap().as_str(),
        "https://a.example/i"
    );
    assert_eq!(p.token_request, TokenRequestFormat::Json);
    assert_eq!(
        p.headers["x-client"], "sessctl",
        "header names are lowercased"
    );
    assert_eq!(p.usage_min_interval, Duration::from_millis(500));
}

#[test]
fn durations_need_units_in_descending_order() {
    let ok = [
        ("90s", 90_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("2d", 172_800_000),
        ("1h30m", 5_400_000),
        ("1d2h3m4s5ms", 93_784_005),
        ("500ms", 500),
        (" 0s ", 0),
    ];
    for (text, ms) in ok {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(ms)),
            "{text}"
        );
    }
    let err = parse_duration("300").unwrap_err();
    assert!(err.contains("add one") && err.contains("300s"), "{err}");
    for bad in [
        "", "m", "5", "5M", "5 m", "1.5h", "-5m", "30m1h", "1m1m", "5min", "1e3s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
    }
    let err = parse_duration("99999999999999999999d").unwrap_err();
    assert!(err.contains("too large"), "{err}");
    assert!(
        parse_duration("213503982334601d").is_err(),
        "u64 ms overflow"
    );
}

#[test]
fn zero_is_refused_for_intervals_but_not_for_refresh_margin() {
    assert!(parse("refresh_before_expiry: 0s\n").is_ok());
    for key in ["quota_interval", "stale_after"] {
        let (line, k, message) = refused(&format!("# c\n{key}: 0ms\n"));
        assert_eq!((line, k.as_str()), (2, key));
        assert!(message.contains("greater than zero"), "{message}");
    }
}

#[test]
fn a_bare_number_duration_says_to_add_a_unit_at_its_line() {
    let (line, key, message) = refused("stale_after: 5m\nquota_interval: 300\n");
    assert_eq!((line, key.as_str()), (2, "quota_interval"));
    assert!(message.contains("add one"), "{message}");
}

#[test]
fn unknown_keys_are_refused_by_name_and_line() {
    let (line, key, message) = refused("quota_interval: 5m\nquota_intervall: 5m\n");
    assert_eq!((line, key.as_str()), (2, "quota_intervall"));
    assert!(message.contains("unknown field"), "{message}");
    let (line, key, _) = refused(&format!("{ACME}    tokn_url: https://a/t\n"));
    assert_eq!((line, key.as_str()), (5, "providers.acme.tokn_url"));
}

#[test]
fn urls_must_be_https_unless_loopback() {
    for url in [
        "http://localhost:9/t",
        "http://127.0.0.1/t",
        "http://127.8.9.10/t",
        "http://[::1]:80/t",
        "https://auth.example.com/t",
    ] {
        assert!(parse_endpoint(url).is_ok(), "{url}");
    }
    for url in [
        "http://example.com/t",
        "http://10.0.0.1/t",
        "ftp://x/t",
        "file:///t",
    ] {
        assert!(parse_endpoint(url).is_err(), "{url}");
    }
    let text = "providers:\n  acme:\n    token_url: https://a/t\n    client_id: x\n    revoke_url: http://evil.example/r\n";
    let (line, key, message) = refused(text);
    assert_eq!((line, key.as_str()), (5, "providers.acme.revoke_url"));
    assert!(message.contains("https"), "{message}");
    let (line, key, message) = refused("providers:\n  claude:\n    usage_url: not a url\n");
    assert_eq!((line, key.as_str()), (3, "providers.claude.usage_url"));
    assert!(message.contains("not a valid URL"), "{message}");
}

#[test]
fn credentials_in_a_url_are_refused_without_echoing_them() {
    let (_, _, message) = refused("providers:\n  claude:\n    token_url: https://u:hunter2@a/t\n");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn provider_names_follow_the_slot_name_rule() {
    let (line, key, message) =
        refused("# x\nproviders:\n  Acme:\n    token_url: https://a/t\n    client_id: x\n");
    assert_eq!((line, key.as_str()), (3, "providers.Acme"));
    assert!(message.starts_with("provider name"), "{message}");
}

#[test]
fn bad_headers_are_refused_without_showing_the_value() {
    let (line, key, _) = refused(&format!("{ACME}    headers:\n      'bad name': x\n"));
    assert_eq!((line, key.as_str()), (6, "providers.acme.headers.bad name"));
    let text = format!("{ACME}    headers:\n      authorization: \"Bearer hunter2\\n\"\n");
    let (line, key, message) = refused(&text);
    assert_eq!(
        (line, key.as_str()),
        (6, "providers.acme.headers.authorization")
    );
    assert!(!message.contains("hunter2"), "{message}");
    let (_, _, message) = refused(&format!("{ACME}    headers:\n      X-A: 1\n      x-a: 2\n"));
    assert!(message.contains("twice"), "{message}");
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let text = format!("{ACME}    client_secret: hunter2\n    scopes: 5\n");
    let err = parse(&text).unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
    let text = format!("{ACME}    client_secret: hunter2\n    headers: {{x-key: hunter3}}\n");
    let c = parse(&text).unwrap();
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("hunter3"),
        "{debug}"
    );
    assert!(debug.contains("x-key"), "{debug}");
    let (_, key, message) = refused(&format!("{ACME}    client_secret: ''\n"));
    assert_eq!(key, "providers.acme.client_secret");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn scopes_must_be_single_tokens() {
    let (line, key, _) = refused(&format!("{ACME}    scopes: ['a b']\n"));
    assert_eq!((line, key.as_str()), (5, "providers.acme.scopes"));
    assert!(parse(&format!("{ACME}    scopes: ['']\n")).is_err());
}

#[test]
fn type_and_syntax_errors_carry_the_parsers_line() {
    let (line, key, message) = refused(&format!("{ACME}    scopes: 5\n"));
    assert_eq!((line, key.as_str()), (5, "providers.acme.scopes"));
    assert!(message.contains("invalid type"), "{message}");
    let (line, key, message) = refused("quota_interval: 5m\ncredential_store: vault\n");
    assert_eq!((line, key.as_str()), (2, "credential_store"));
    assert!(message.contains("keychain"), "{message}");
    let (line, key, _) = refused("quota_interval: 5m\nstale_after: [\n");
    assert_eq!(key, SYNTAX_KEY);
    assert!(line >= 2, "{line}");
    let (_, key, message) = refused("- a\n- b\n");
    assert_eq!(key, TOP_LEVEL_KEY);
    assert!(!message.contains("Raw"), "internal names leak: {message}");
}

#[test]
fn duplicate_keys_are_refused_at_the_second_occurrence() {
    let (line, key, _) = refused("quota_interval: 5m\n\nquota_interval: 6m\n");
    assert_eq!((line, key.as_str()), (3, "quota_interval"));
    let (line, key, _) = refused("providers:\n  claude: {}\n  claude: {}\n");
    assert_eq!((line, key.as_str()), (3, "providers.claude"));
}

#[test]
fn flow_style_and_anchors_work() {
    let c = parse("providers: {acme: {token_url: &u 'https://a/t', client_id: x, usage_url: *u}}")
        .unwrap();
    assert_eq!(
        c.providers["acme"].usage_url.as_ref().unwrap().as_str(),
        "https://a/t"
    );
    let (line, key, _) = refused("providers: {acme: {token_url: 'ftp://a', client_id: x}}");
    assert_eq!((line, key.as_str()), (1, "providers.acme.token_url"));
}

#[test]
fn nasty_inputs_are_refused_without_panicking() {
    let laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    let deep = "[".repeat(10_000);
    let nasty = [
        "\tquota_interval: 5m\n",
        "quota_interval:\t5m\n\t\n",
        "a: &x 1\nb: *x\n",
        "quota_interval: *nowhere\n",
        "- 1\n- 2\n",
        "just a string",
        "42",
        "\0\x01\x02\u{7f}\u{feff}junk: \u{fffd}",
        "quota_interval: 999999999999999999999999999999999999999999999s\n",
        "quota_interval: 1e400\n",
        "quota_interval: 5m\nquota_interval: 5m\n",
        "providers:\n  acme: {}\n  acme: {}\n",
        "---\na: 1\n---\nb: 2\n",
        "? [complex, key]\n: value\n",
        "providers:\n  ? [a]\n  : x\n",
        "<<: {quota_interval: 5m}\n",
        "providers: {claude: {headers: {'': ''}}}\n",
        "providers:\n  \"ünïcödé\":\n    token_url: https://a/t\n",
        "!!binary aGVsbG8=\n",
        "quota_interval: !!int 5\n",
        laughs,
        &deep,
        &format!("{}{}", "[".repeat(1000), "]".repeat(1000)),
        &"a:\n ".repeat(500),
    ];
    for text in nasty {
        match parse(text) {
            Err(ConfigError::Invalid { line, .. }) => assert!(line >= 1),
            other => panic!("{text:?} should be refused, got {other:?}"),
        }
    }
}

#[test]
fn key_line_follows_indentation_and_falls_back_to_the_ancestor() {
    let text = "# top\nproviders:\n  # c\n  acme:\n    headers:\n      x: 1\n  other:\n    headers:\n      'x': 2\n";
    assert_eq!(key_line(text, &["providers", "acme", "headers", "x"]), 6);
    assert_eq!(key_line(text, &["providers", "other", "headers", "x"]), 9);
    assert_eq!(key_line(text, &["providers", "other", "nope"]), 7);
    assert_eq!(key_line(text, &["nope"]), 1);
    assert_eq!(key_line("", &["a"]), 1);
    assert_eq!(
        key_line("a:\n  b: 1\nb: 2\n", &["b"]),
        3,
        "nested b is not top-level b"
    );
}

#[test]
fn load_distinguishes_a_missing_file_from_an_unreadable_one() {
    let dir = crate::test_dirs::fresh("config-test");
    let missing = dir.join("missing.yaml");
    assert!(Config::load(&missing, false).is_ok());
    assert!(matches!(
        Config::load(&missing, true),
        Err(ConfigError::Read { .. })
    ));
    assert!(matches!(
        Config::load(&dir, false),
        Err(ConfigError::Read { .. })
    ));
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, b"quota_interval: 5m\n\xff\xfe\n").unwrap();
    match Config::load(&bad, false) {
        Err(ConfigError::Invalid { line, path, .. }) => assert_eq!((line, path), (2, bad)),
        other => panic!("{other:?}"),
    }
    let good = dir.join("good.yaml");
    std::fs::write(&good, "stale_after: 1h\n").unwrap();
    assert_eq!(
        Config::load(&good, true).unwrap().stale_after,
        Duration::from_secs(3600)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

const EXAMPLE: &str = include_str!("../../config/config.yaml");

/// The lines between `# BEGIN name` and `# END name`, uncommented.
fn example_block(name: &str) -> String {
    let lines = EXAMPLE.lines();
    let inside = lines
        .skip_while(|l| *l != format!("# BEGIN {name}"))
        .skip(1)
        .take_while(|l| *l != format!("# END {name}"));
    inside.fold(String::new(), |mut out, l| {
        out.push_str(l.strip_prefix("# ").unwrap_or(""));
        out.push('\n');
        out
    })
}

#[test]
fn the_example_config_parses_to_the_defaults() {
    let c = parse(EXAMPLE).unwrap();
    let d = Config::default();
    assert_eq!(c.refresh_before_expiry, d.refresh_before_expiry);
    assert_eq!(c.quota_interval, d.quota_interval);
    assert_eq!(c.stale_after, d.stale_after);
    assert_eq!(c.credential_store, d.credential_store);
    assert_eq!(c.log_rotation, d.log_rotation);
    assert_eq!(c.log_retention, d.log_retention);
    assert!(
        EXAMPLE.contains("\nlog_retention: 14\n") && EXAMPLE.contains("\nlog_rotation: daily\n")
    );
    assert_eq!(c.providers.keys().collect::<Vec<_>>(), ["claude"]);
}

#[test]
fn the_documented_statusline_block_parses_to_the_defaults_but_the_slot() {
    let c = parse(&example_block("statusline")).unwrap();
    let (doc, default) = (&c.statusline, StatuslineConfig::default());
    assert_eq!(doc.format, default.format);
    assert_eq!(doc.separator, default.separator);
    assert_eq!((doc.ascii, doc.color), (default.ascii, default.color));
    assert_eq!(
        doc.stale_marker.as_deref(),
        Some(crate::statusline::STALE_MARKER)
    );
    assert_eq!(doc.claude_code_slot.as_deref(), Some("work"));
    assert_eq!(parse(EXAMPLE).unwrap().statusline, default);
}

#[test]
fn the_commented_example_provider_parses() {
    let block = example_block("example provider");
    let c = parse(&block).unwrap();
    let p = &c.providers["acme"];
    assert!(p.client_secret.is_some() && p.revoke_url.is_some() && p.userinfo_url.is_some());
    assert_eq!(p.headers.len(), 1);
    assert_eq!(p.shape.usage_headers.len(), 1);
    assert_eq!(p.shape.refresh_scopes, ["openid"]);
}

#[test]
fn request_shape_fields_are_checked() {
    let base = "providers:\n  acme:\n    token_url: https://a.example/t\n    client_id: x\n";
    for (extra, key) in [
        (
            "    redirect_host: example.com\n",
            "providers.acme.redirect_host",
        ),
        ("    token_headers: none\n", "providers.acme.token_headers"),
        ("    revoke_request: xml\n", "providers.acme.revoke_request"),
        (
            "    refresh_scopes: ['a b']\n",
            "providers.acme.refresh_scopes",
        ),
        (
            "    usage_headers: {'bad name': x}\n",
            "providers.acme.usage_headers",
        ),
    ] {
        let err = parse(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(err.contains(key), "{extra}: {err}");
    }
}

#[test]
fn the_documented_claude_block_matches_the_builtin() {
    let c = parse(&example_block("built-in claude")).unwrap();
    let (doc, builtin) = (&c.providers["claude"], builtin_claude());
    assert_eq!(format!("{doc:?}"), format!("{builtin:?}"));
    assert_eq!(doc.headers, builtin.headers, "Debug hides header values");
}

#[test]
fn usage_windows_map_names_to_json_pointers() {
    let base = "providers:\n  acme:\n    token_url: https://a.example/t\n    client_id: x\n    usage_windows:\n";
    let c = parse(&format!(
        "{base}      daily:\n        utilization: /limits/0/pct\n        resets_at: /limits/0/reset\n"
    ))
    .unwrap();
    let w = &c.providers["acme"].usage_windows["daily"];
    assert_eq!(w.utilization, "/limits/0/pct");
    assert_eq!(w.resets_at.as_deref(), Some("/limits/0/reset"));
    assert!(c.providers["claude"].usage_windows.is_empty());
    let err = parse(&format!(
        "{base}      daily:\n        utilization: limits.pct\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("providers.acme.usage_windows.daily"), "{err}");
    assert!(err.contains("JSON pointer"), "{err}");
    let err = parse(&format!("{base}      Daily:\n        utilization: /a\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("window name"), "{err}");
}

#[test]
fn the_example_alerting_keys_are_the_defaults_and_the_command_block_parses() {
    let c = parse(EXAMPLE).unwrap();
    assert_eq!(c.notifications, Notifications::default());
    assert_eq!(c.alerts, AlertsConfig::default());
    assert_eq!(c.alert_command, None);
    let block = example_block("alert_command");
    let command = parse(&block).unwrap().alert_command.unwrap();
    assert_eq!(command.program, "/usr/local/bin/sessctl-alert");
    assert_eq!(command.args, ["--to", "ops@example.com"]);
}

#[test]
fn log_rotation_and_retention_default_to_daily_and_14_files() {
    let c = parse("").unwrap();
    assert_eq!(c.log_rotation, LogRotation::Daily);
    assert_eq!(c.log_retention, 14);
    let c = parse("log_rotation: minutely\nlog_retention: 3\n").unwrap();
    assert_eq!(
        (c.log_rotation, c.log_retention),
        (LogRotation::Minutely, 3)
    );
    for (text, rotation) in [
        ("hourly", LogRotation::Hourly),
        ("never", LogRotation::Never),
        ("daily", LogRotation::Daily),
    ] {
        assert_eq!(
            parse(&format!("log_rotation: {text}\n"))
                .unwrap()
                .log_rotation,
            rotation
        );
    }
    assert_eq!(parse("log_retention: 1\n").unwrap().log_retention, 1);
}

#[test]
fn a_log_retention_below_one_or_not_a_whole_number_is_refused_at_its_line() {
    for (value, says) in [
        ("0", "at least 1"),
        ("-3", "negative"),
        ("2.5", "whole number"),
        ("many", "whole number"),
        ("\"14\"", "whole number"),
        ("[]", "whole number"),
    ] {
        let (line, key, message) =
            refused(&format!("log_rotation: daily\nlog_retention: {value}\n"));
        assert_eq!(
            (line, key.as_str()),
            (2, "log_retention"),
            "{value}: {message}"
        );
        assert!(message.contains(says), "{value}: {message}");
    }
    // Beyond 64 bits the YAML parser itself refuses it, still naming the key and line.
    let (line, _, message) = refused("\nlog_retention: 99999999999999999999999\n");
    assert_eq!(line, 2);
    assert!(message.contains("log_retention"), "{message}");
}

#[test]
fn an_unknown_log_rotation_is_refused_naming_the_choices() {
    for value in ["weekly", "Daily", "1h", "[daily]", "7"] {
        let (line, key, message) = refused(&format!("# logs\nlog_rotation: {value}\n"));
        assert_eq!(
            (line, key.as_str()),
            (2, "log_rotation"),
            "{value}: {message}"
        );
        assert!(message.contains("minutely"), "{value}: {message}");
    }
}
