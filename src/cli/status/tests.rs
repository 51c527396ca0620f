//! The status table and its advice, on hand-built replies at a fixed clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::advice::Advisor;
use super::table::{self, shorten};
use crate::cache::Window;
use crate::config::CredentialStoreKind;
use crate::protocol::{CacheStatus, QuotaStatus, SlotStatus, StatusReport};
use crate::slot_reason::SlotReason;
use crate::state::SlotState;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const NOW: &str = "2026-11-23T21:00:00Z";

fn login(name: &str, provider: &str) -> String {
    format!("sessctl login {name} --provider {provider} --device")
}

fn advisor() -> Advisor<'static> {
    Advisor {
        now: at(NOW),
        config_file: Path::new("/c/config.yaml"),
        state_file: Path::new("/s/state.json"),
        credentials_file: Path::new("/s/credentials.json"),
        login_command: &login,
    }
}

fn quota(five: f64, seven: f64, fetched: &str, stale: bool) -> QuotaStatus {
    let window = |u| Window {
        utilization: u,
        resets_at: None,
    };
    QuotaStatus {
        windows: BTreeMap::from([
            ("five_hour".to_owned(), window(five)),
            ("seven_day".to_owned(), window(seven)),
        ]),
        fetched_at: Some(at(fetched)),
        stale,
        error: None,
        extra_usage: None,
    }
}

fn active(name: &str) -> SlotStatus {
    SlotStatus {
        name: name.to_owned(),
        provider: "claude".to_owned(),
        account: Some(format!("{name}@example.com")),
        state: SlotState::Active,
        reason: None,
        access_token_expires_at: Some(at("2026-11-23T21:42:00Z")),
        last_refresh_at: Some(at("2026-11-23T20:56:00Z")),
        last_refresh_error: None,
        next_refresh_at: Some(at("2026-11-23T21:37:00Z")),
        refreshes: 3,
        quota: Some(quota(42.0, 10.0, "2026-11-23T20:59:00Z", false)),
        claude_code_store: None,
        claude_code_dir: None,
    }
}

fn report(slots: Vec<SlotStatus>) -> StatusReport {
    StatusReport {
        version: "0.1.0".to_owned(),
        pid: 42,
        all_inactive: false,
        credential_store: CredentialStoreKind::Keychain,
        credential_store_error: None,
        state_file_error: None,
        pending_revocations: Vec::new(),
        cache: CacheStatus {
            path: PathBuf::from("/k/quota.json"),
            updated_at: Some(at("2026-11-23T20:59:30Z")),
            stale: false,
            error: None,
        },
        slots,
        unplaced_credentials: Vec::new(),
        moving: None,
    }
}

#[test]
fn a_healthy_slot_is_one_row_with_relative_times_and_quota() {
    let text = table::render(&report(vec![active("work")]), &advisor());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "sessctl 0.1.0 (pid 42), credentials in the keychain"
    );
    assert_eq!(
        lines[1],
        "SLOT  STATE   ACCOUNT           EXPIRES  REFRESHED  QUOTA"
    );
    assert_eq!(
        lines[2],
        "work  active  work@example.com  in 42m   4m ago     5h 42% 7d 10%"
    );
    assert_eq!(lines.len(), 3, "{text}");
}

#[test]
fn an_inactive_slot_shows_why_and_the_login_command() {
    let mut slot = active("home");
    slot.state = SlotState::Inactive;
    slot.reason = Some(SlotReason::SessionExpired);
    slot.last_refresh_error = Some("invalid_grant: grant request is invalid".to_owned());
    slot.access_token_expires_at = Some(at("2026-11-23T18:00:00Z"));
    slot.next_refresh_at = None;
    let text = table::render(&report(vec![active("work"), slot]), &advisor());
    assert!(
        text.contains("home  inactive  home@example.com  3h ago"),
        "{text}"
    );
    assert!(
        text.contains("\n  inactive: the provider ended this login"),
        "{text}"
    );
    assert!(
        text.contains("\n  error: invalid_grant: grant request is invalid\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  next: log in again: sessctl login home --provider claude --device\n"),
        "{text}"
    );
    // The healthy slot gets no advice.
    assert_eq!(text.matches("next:").count(), 1, "{text}");
}

#[test]
fn an_inactive_claude_code_slot_is_told_both_ways_back_into_its_dir() {
    let mut slot = active("work");
    slot.state = SlotState::Inactive;
    slot.reason = Some(SlotReason::SessionExpired);
    slot.claude_code_dir = Some("/h/.claude-work".into());
    let text = table::render(&report(vec![slot.clone()]), &advisor());
    assert!(
        text.contains("\n  next: log in again: sessctl login work --provider claude --device (the login goes into /h/.claude-work), or log in with Claude Code itself: CLAUDE_CONFIG_DIR='/h/.claude-work' claude, then /login\n"),
        "{text}"
    );
    // A provider with no interactive login: only Claude Code's own.
    let piped = |name: &str, provider: &str| {
        format!("sessctl login {name} --provider {provider} --refresh-token-stdin")
    };
    let advisor = Advisor {
        login_command: &piped,
        ..advisor()
    };
    let text = table::render(&report(vec![slot]), &advisor);
    assert!(
        text.contains(
            "\n  next: log in again: CLAUDE_CONFIG_DIR='/h/.claude-work' claude, then /login\n"
        ),
        "{text}"
    );
}

#[test]
fn each_inactive_reason_gets_its_own_fix() {
    let advisor = advisor();
    let lines = |reason: SlotReason| {
        let mut slot = active("w");
        slot.state = SlotState::Inactive;
        slot.reason = Some(reason);
        advisor
            .slot(&slot, CredentialStoreKind::Keychain)
            .join("\n")
    };
    let unknown = lines(SlotReason::UnknownProvider);
    assert!(
        unknown.contains("provider claude is not in the config"),
        "{unknown}"
    );
    assert!(
        unknown.contains("add providers.claude to /c/config.yaml"),
        "{unknown}"
    );
    assert!(unknown.contains("sessctl logout w"), "{unknown}");
    let client = lines(SlotReason::ClientRejected);
    assert!(client.contains("providers.claude.client_id"), "{client}");
    assert!(
        client.contains("sessctl login w --provider claude"),
        "{client}"
    );
    let stale = lines(SlotReason::StaleCredentials);
    assert!(stale.contains("an older copy of its item"), "{stale}");
    assert!(stale.contains("put the newer item back"), "{stale}");
    for reason in [
        SlotReason::CredentialsMissing,
        SlotReason::CredentialsUnreadable,
        SlotReason::SessionExpired,
        // A reason from another sessctl version gets the general advice.
        SlotReason::Other("quota_exhausted".to_owned()),
    ] {
        assert!(lines(reason).contains("next: log in again: sessctl login w"));
    }
}

#[test]
fn a_degraded_slot_says_when_it_retries_and_where_to_look() {
    let mut slot = active("work");
    slot.state = SlotState::Degraded;
    slot.reason = Some(SlotReason::RefreshFailed);
    slot.last_refresh_error = Some("token endpoint unreachable: connection refused".to_owned());
    slot.next_refresh_at = Some(at("2026-11-23T21:00:42Z"));
    let lines = advisor().slot(&slot, CredentialStoreKind::Keychain);
    assert_eq!(
        lines,
        [
            "error: token endpoint unreachable: connection refused",
            "next: retrying in 42s; see why with `sessctl logs`"
        ]
    );
    slot.next_refresh_at = Some(at("2026-11-23T20:59:00Z"));
    assert!(
        advisor().slot(&slot, CredentialStoreKind::Keychain)[1].starts_with("next: retrying now")
    );
}

#[test]
fn an_unreachable_store_names_the_fix_for_that_store() {
    let mut slot = active("work");
    slot.state = SlotState::Degraded;
    slot.reason = Some(SlotReason::CredentialStoreUnavailable);
    let keychain = advisor()
        .slot(&slot, CredentialStoreKind::Keychain)
        .join("\n");
    assert!(keychain.contains("held in memory"), "{keychain}");
    if cfg!(target_os = "linux") {
        assert!(keychain.contains("gnome-keyring-daemon"), "{keychain}");
        // `--start` cannot autolaunch a bus without X11 and leaves a stray process.
        assert!(!keychain.contains("--start"), "{keychain}");
        assert!(keychain.contains("credential_store: file"), "{keychain}");
    }
    let file = advisor().slot(&slot, CredentialStoreKind::File).join("\n");
    assert!(file.contains("/s/credentials.json"), "{file}");

    let mut whole = report(vec![slot]);
    whole.credential_store_error = Some("keychain is locked".to_owned());
    whole.state_file_error = Some("state file changed behind the daemon".to_owned());
    let header = advisor().report(&whole);
    assert_eq!(header[0], "credential store problem: keychain is locked");
    assert!(header[1].starts_with("  next: "), "{header:?}");
    assert_eq!(
        header[2],
        "state file problem: state file changed behind the daemon"
    );
    assert!(header[3].contains("/s/state.json"), "{header:?}");
}

#[test]
fn other_windows_show_by_label_and_enabled_spend_after_them() {
    let mut slot = active("work");
    let q = slot.quota.as_mut().unwrap();
    q.windows.insert(
        "seven_day_opus".to_owned(),
        Window {
            utilization: 3.0,
            resets_at: None,
        },
    );
    q.extra_usage = Some(crate::cache::ExtraUsage {
        is_enabled: Some(true),
        monthly_limit: Some(5000.0),
        used_credits: Some(1234.0),
        utilization: Some(24.68),
        currency: Some("EUR".into()),
    });
    assert_eq!(
        table::quota(&slot),
        "5h 42% 7d 10% 7d-opus 3% extra 12.34/50.00 EUR"
    );
    let json = serde_json::to_value(&slot).unwrap();
    assert_eq!(json["quota"]["extra_usage"]["used_credits"], 1234.0);
    assert!(json["quota"]["windows"].get("extra_usage").is_none());
    slot.quota.as_mut().unwrap().extra_usage = None;
    let json = serde_json::to_value(&slot).unwrap();
    assert!(
        json["quota"].get("extra_usage").is_none(),
        "added only when known"
    );
}

#[test]
fn stale_quota_says_what_is_wrong_and_what_to_do() {
    let advisor = advisor();
    let mut slot = active("work");
    slot.quota = Some(quota(42.0, 10.0, "2026-11-23T17:00:00Z", true));
    assert_eq!(table::quota(&slot), "5h 42% 7d 10% STALE");
    let silent = advisor.slot(&slot, CredentialStoreKind::Keychain);
    assert_eq!(
        silent[0],
        "quota stale (last fetched 4h ago) and no fetch since"
    );
    assert!(silent[1].contains("sessctl logs"), "{silent:?}");

    slot.quota.as_mut().unwrap().error = Some("usage endpoint answered HTTP 429".to_owned());
    let failing = advisor.slot(&slot, CredentialStoreKind::Keychain);
    assert_eq!(
        failing[0],
        "quota stale (last fetched 4h ago): usage endpoint answered HTTP 429"
    );

    slot.quota.as_mut().unwrap().error = None;
    slot.quota.as_mut().unwrap().fetched_at = None;
    assert_eq!(
        advisor.slot(&slot, CredentialStoreKind::Keychain)[0],
        "quota: no figures yet"
    );

    // An inactive slot's quota is stale by nature: its login advice is enough.
    slot.state = SlotState::Inactive;
    let inactive = advisor
        .slot(&slot, CredentialStoreKind::Keychain)
        .join("\n");
    assert!(!inactive.contains("quota"), "{inactive}");
}

#[test]
fn a_stale_cache_and_no_slots_are_said_plainly() {
    let mut empty = report(Vec::new());
    empty.cache.stale = true;
    let text = table::render(&empty, &advisor());
    assert!(text.ends_with("no slots; add one with: sessctl login NAME --provider PROVIDER\n"));
    assert!(!text.contains("stale"), "{text}");

    let mut stale = report(vec![active("work")]);
    stale.cache.stale = true;
    stale.cache.updated_at = Some(at("2026-11-23T20:00:00Z"));
    let text = table::render(&stale, &advisor());
    assert!(
        text.contains("quota cache /k/quota.json is stale (written 1h ago)"),
        "{text}"
    );
}

#[test]
fn rows_stay_narrow() {
    assert_eq!(shorten("short@example.com", 24), "short@example.com");
    let long = shorten("a-very-long-account-name@some-company.example.com", 24);
    assert_eq!(long.chars().count(), 24);
    assert!(long.ends_with('…'));
    let mut slot = active("personal");
    slot.account = Some("a-very-long-account-name@some-company.example.com".to_owned());
    let text = table::render(&report(vec![slot]), &advisor());
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }
}

#[test]
fn the_login_command_follows_the_configured_provider() {
    let config = crate::config::Config::default();
    let known = super::login_command(Some(&config), "work", "claude");
    assert!(
        known.starts_with("sessctl login work --provider claude"),
        "{known}"
    );
    assert_eq!(
        super::login_command(Some(&config), "work", "gone"),
        "sessctl login work --provider gone"
    );
    assert_eq!(
        super::login_command(None, "work", "claude"),
        "sessctl login work --provider claude"
    );
}

#[test]
fn a_pending_revocation_is_listed_with_its_attempts_and_next_try() {
    let mut whole = report(Vec::new());
    whole
        .pending_revocations
        .push(crate::revocation::PendingRevocation {
            id: "00ff".to_owned(),
            slot: "old".to_owned(),
            provider: "claude".to_owned(),
            why: "logout".to_owned(),
            since: at("2026-11-23T20:57:00Z"),
            attempts: 2,
            last_error: Some("revocation endpoint answered HTTP 503".to_owned()),
            next_attempt_at: at("2026-11-23T21:01:00Z"),
        });
    let lines = advisor().report(&whole);
    assert_eq!(
        lines[0],
        "refresh token of slot old (logout) not revoked yet: 2 attempt(s), the first 3m ago, last error: revocation endpoint answered HTTP 503; next try in 1m"
    );
    assert!(
        lines[1].starts_with("  next: nothing, the daemon retries"),
        "{lines:?}"
    );
}

#[test]
fn a_use_in_progress_says_what_moves_where_and_when_it_is_tried_again() {
    let mut whole = report(Vec::new());
    whole.moving = Some(crate::protocol::UseInProgress {
        slot: "own".to_owned(),
        dir: PathBuf::from("/h/.claude"),
        outgoing: Some("cc".to_owned()),
        resumed: false,
        attempts: 0,
        next_attempt_at: None,
    });
    let lines = advisor().report(&whole);
    assert_eq!(
        lines,
        [
            "use in progress: slot own's login moving into Claude Code's store in /h/.claude, slot cc's login out of it into sessctl's store",
            "  next: the daemon finishes it; until then neither slot refreshes",
        ]
    );
    whole.moving = Some(crate::protocol::UseInProgress {
        outgoing: None,
        resumed: true,
        attempts: 2,
        next_attempt_at: Some(at("2026-11-23T21:01:00Z")),
        ..whole.moving.unwrap()
    });
    let lines = advisor().report(&whole);
    assert_eq!(
        lines,
        [
            "use in progress: slot own's login moving into Claude Code's store in /h/.claude",
            "  next: not finished after 2 attempt(s); the daemon tries again in 1m (see why with `sessctl logs`)",
        ]
    );
}
