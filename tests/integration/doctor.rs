//! `sessctl doctor` against the real daemon, OAuth server and keyring: every check passes
//! on a healthy setup, and each broken component fails its own check with the fix. Also
//! the `status` table's advice for an inactive slot.

use std::process::Output;

use crate::alerts::NotificationListener;
use crate::flows::{Running, config_yaml, token_works};
use crate::support::{OAuthServer, TestEnv};

/// Every check doctor runs, in the order it reports them.
const CHECKS: [&str; 8] = [
    "config",
    "daemon",
    "credential store",
    "token endpoint",
    "clock",
    "notifications",
    "alert command",
    "service",
];

/// The doctor's report as text, and its exit code.
fn doctor(env: &TestEnv) -> (Option<i32>, String) {
    let out = env.sessctl(&["doctor"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

/// The report's line for `check` (the first one), or a panic showing the report.
fn line<'a>(report: &'a str, check: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(check)))
        .unwrap_or_else(|| panic!("no {check} line in:\n{report}"))
}

fn outcome<'a>(report: &'a str, check: &str) -> &'a str {
    &line(report, check)[..4]
}

fn secret_tool_search(env: &TestEnv) -> String {
    let out: Output = env.run_cli(
        std::path::Path::new("secret-tool"),
        &["search", "--all", "--unlock", "service", "sessctl"],
        None,
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_healthy_setup_passes_every_check_without_spending_a_token() {
    let t = Running::start("");
    let listener = NotificationListener::start(&t.env);
    let grant = t.login("work", "alice");
    let item_before = t.env.secret_lookup("sessctl", "work").unwrap();
    let grants_before = t.server.stats().grant_type("refresh_token");

    let (code, report) = doctor(&t.env);
    assert_eq!(code, Some(0), "{report}");
    for check in CHECKS.iter().filter(|c| **c != "service") {
        assert_eq!(outcome(&report, check), "pass", "{check}:\n{report}");
    }
    // No systemd user instance in the test environment: it does not apply.
    assert_eq!(outcome(&report, "service"), "warn", "{report}");
    assert!(
        line(&report, "service").contains("started by hand"),
        "{report}"
    );
    assert!(
        line(&report, "token endpoint").contains("test: "),
        "{report}"
    );
    assert!(line(&report, "daemon").contains(&format!("pid {}", t.daemon.pid())));
    assert_eq!(report.lines().count(), CHECKS.len(), "{report}");

    // Nothing was spent or changed: no refresh-token grant (the endpoint probe is a plain
    // GET), the slot's item and tokens intact, and the probe item gone from the keyring.
    assert_eq!(t.server.stats().grant_type("refresh_token"), grants_before);
    assert_eq!(t.env.secret_lookup("sessctl", "work").unwrap(), item_before);
    let items = secret_tool_search(&t.env);
    assert!(!items.contains("doctor-probe"), "{items}");
    // One slot item; sessctl's reserved items (accounts starting with a dot, such as the
    // journal key) are not slots. Only the account names are shown, never a secret.
    let accounts: Vec<&str> = items
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("attribute.username = "))
        .collect();
    let slots = accounts.iter().filter(|a| !a.starts_with('.')).count();
    assert_eq!(slots, 1, "{accounts:?}");
    assert!(token_works(&t.server, &t.token("work")));
    assert!(t.server.grant_exists(&grant.grant_id));
    drop(listener);
}

#[test]
fn the_json_report_lists_every_check() {
    let t = Running::start("");
    t.login("work", "alice");
    let out = t.env.sessctl(&["doctor", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{json}");
    assert_eq!(json["ok"], true);
    let checks = json["checks"].as_array().unwrap();
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS);
    for check in checks {
        match check["status"].as_str().unwrap() {
            "pass" => assert!(check["fix"].is_null(), "{check}"),
            _ => assert!(check["fix"].is_string(), "{check}"),
        }
    }
}

#[test]
fn no_daemon_fails_with_how_to_start_it() {
    let env = TestEnv::new();
    let server = OAuthServer::start();
    env.write_config(&config_yaml(&server, "", ""));
    let (code, report) = doctor(&env);
    assert_eq!(code, Some(1), "{report}");
    let daemon = line(&report, "daemon");
    assert!(daemon.starts_with("fail"), "{report}");
    assert!(daemon.contains("not running"), "{daemon}");
    assert!(
        daemon.contains("fix: start it: `sessctl daemon &`"),
        "{daemon}"
    );
    // The rest still ran.
    assert_eq!(outcome(&report, "config"), "pass", "{report}");
    assert_eq!(outcome(&report, "credential store"), "pass", "{report}");
}

#[test]
fn an_unreachable_keychain_fails_the_credential_store_check() {
    let mut t = Running::start("");
    t.login("work", "alice");
    t.env.session_bus_mut().stop_keyring();
    let (code, report) = doctor(&t.env);
    assert_eq!(code, Some(1), "{report}");
    let store = line(&report, "credential store");
    assert!(
        store.starts_with("fail  credential store  keychain: "),
        "{store}"
    );
    assert!(store.contains("fix: start or unlock"), "{store}");
    assert_eq!(outcome(&report, "daemon"), "pass", "{report}");
}

#[test]
fn a_token_endpoint_that_is_down_fails_its_check() {
    let mut t = Running::start("");
    t.login("work", "alice");
    t.server.stop();
    let (code, report) = doctor(&t.env);
    assert_eq!(code, Some(1), "{report}");
    let endpoint = line(&report, "token endpoint");
    assert!(endpoint.starts_with("fail"), "{report}");
    assert!(
        endpoint.contains("test: ") && endpoint.contains("unreachable"),
        "{endpoint}"
    );
    assert!(endpoint.contains("providers.test.token_url"), "{endpoint}");
    // With no reply there is no Date header to compare the clock with.
    assert_eq!(outcome(&report, "clock"), "warn", "{report}");
}

#[test]
fn a_bad_config_fails_with_its_file_and_line() {
    let env = TestEnv::new();
    env.write_config("stale_after: 15m\nrefresh_befor_expiry: 5m\n");
    let (code, report) = doctor(&env);
    assert_eq!(code, Some(1), "{report}");
    let config = line(&report, "config");
    assert!(config.starts_with("fail"), "{report}");
    assert!(
        config.contains("config.yaml:2: refresh_befor_expiry"),
        "{config}"
    );
}

#[test]
fn the_file_store_is_probed_beside_the_file_without_writing_it() {
    let t = Running::start("credential_store: file");
    t.login("work", "alice");
    let file = t.env.state_dir().join("sessctl/credentials.json");
    let before = std::fs::read(&file).unwrap();
    let (code, report) = doctor(&t.env);
    assert_eq!(code, Some(0), "{report}");
    let store = line(&report, "credential store");
    assert!(store.starts_with("pass"), "{report}");
    assert!(store.contains("is private and parses"), "{store}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("doctor")), "{names:?}");
}

#[test]
fn status_shows_times_and_the_login_command_for_an_inactive_slot() {
    let t = Running::start("");
    t.login("work", "alice");
    let home = t.login("home", "bob");
    t.server.revoke_grant(&home.grant_id);
    assert_eq!(t.env.sessctl(&["refresh", "home"]).status.code(), Some(4));

    let out = t.env.sessctl(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8(out.stdout).unwrap();
    let work = table
        .lines()
        .find(|l| l.starts_with("work "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        work.contains("active") && work.contains("alice@example.com"),
        "{work}"
    );
    assert!(work.contains(" in "), "expiry as 'in ...': {work}");
    // Just logged in: the last refresh is "now" (or a second or two ago on a slow machine).
    assert!(
        work.contains(" now ") || work.contains(" ago "),
        "last refresh as 'now' or '... ago': {work}"
    );
    assert!(table.contains("\nhome  inactive"), "{table}");
    assert!(
        table.contains("\n  inactive: the provider ended this login"),
        "{table}"
    );
    // The test provider has no interactive flow: the piped refresh token it is.
    assert!(
        table.contains(
            "\n  next: log in again: sessctl login home --provider test --refresh-token-stdin\n"
        ),
        "{table}"
    );
    assert_eq!(table.matches("next:").count(), 1, "{table}");
}
