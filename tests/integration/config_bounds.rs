//! What a config may hold, checked where it matters: the daemon refuses, with exit 78 and
//! `file:line: key`, the durations that used to make it panic on time arithmetic once a slot
//! had quota (`DateTime + TimeDelta overflowed`), a usage interval that keeps quota STALE, a
//! file too large and too many providers.

use std::fmt::Write as _;
use std::time::Duration;

use crate::flows::{Running, assert_daemon_refuses_config, code_and_stderr, config_yaml};
use crate::support::TestEnv;
use crate::support::process::output_with_deadline;

/// A refused daemon exits at once; one that accepted the config would run until killed.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn durations_too_long_to_add_to_a_date_are_refused_not_a_panic() {
    // A slot with quota, so a daemon that accepted these would reach the arithmetic.
    let mut t = Running::start("");
    t.login("work", "alice");
    t.daemon.terminate(REFUSAL_DEADLINE);
    for (top, provider, key) in [
        (
            "",
            "usage_min_interval: 100000000d",
            ":10: providers.test.usage_min_interval",
        ),
        ("stale_after: 100000000d", "", ":1: stale_after"),
        ("quota_interval: 100000000d", "", ":1: quota_interval"),
        (
            "alerts:\n  remind_every: 200000000d",
            "",
            ":2: alerts.remind_every",
        ),
    ] {
        t.env.write_config(&config_yaml(&t.server, top, provider));
        let out = output_with_deadline(
            t.env.sessctl_command(&["daemon"]),
            None,
            REFUSAL_DEADLINE,
            "sessctl daemon with a huge duration",
        );
        let (code, stderr) = code_and_stderr(&out);
        assert!(!stderr.contains("panicked"), "{top}{provider}: {stderr}");
        assert_eq!(code, Some(78), "{top}{provider}: {stderr}");
        assert!(stderr.contains(key), "{top}{provider}: {stderr}");
        assert!(stderr.contains("at most 365d"), "{stderr}");
    }
}

#[test]
fn a_usage_interval_that_keeps_quota_stale_is_refused_naming_the_key() {
    let env = TestEnv::new();
    let yaml = "stale_after: 2m\nproviders:\n  acme:\n    token_url: https://a.example/t\n    client_id: c\n    usage_url: https://a.example/u\n    usage_min_interval: 5m\n";
    assert_daemon_refuses_config(&env, yaml, ":7: providers.acme.usage_min_interval");
    let out = env.sessctl(&["daemon"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shorter than 2m"),
        "{out:?}"
    );
}

#[test]
fn a_huge_config_or_too_many_providers_is_refused() {
    let env = TestEnv::new();
    let mut many = String::from("providers:\n");
    for i in 0..1000 {
        let _ = write!(
            many,
            "  p{i}:\n    token_url: https://a.example/t\n    client_id: c\n"
        );
    }
    assert_daemon_refuses_config(&env, &many, ":1: providers: 1000 providers");
    let huge = format!("# {}\n", "x".repeat(2 * 1024 * 1024));
    assert_daemon_refuses_config(&env, &huge, "larger than 1024 KiB");
}
