//! Rendering rules, each proved on a hand-built cache at a fixed time and time zone.

use chrono::FixedOffset;

use super::*;
use crate::cache::SlotQuota;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const NOW: &str = "2026-11-23T12:00:00Z";

fn window(utilization: f64, resets_at: Option<&str>) -> Window {
    Window {
        utilization,
        resets_at: resets_at.map(at),
    }
}

fn slot(state: SlotState, fetched_at: Option<&str>, windows: &[(&str, Window)]) -> SlotQuota {
    SlotQuota {
        account: Some("me@example.com".into()),
        provider: Some("claude".into()),
        state,
        fetched_at: fetched_at.map(at),
        windows: windows
            .iter()
            .map(|(n, w)| ((*n).to_owned(), w.clone()))
            .collect(),
        error: None,
        extra_usage: None,
        claude_code: None,
    }
}

fn fresh(windows: &[(&str, Window)]) -> SlotQuota {
    slot(SlotState::Active, Some("2026-11-23T11:58:00Z"), windows)
}

fn cache(updated_at: &str, slots: Vec<(&str, SlotQuota)>) -> QuotaCache {
    QuotaCache {
        updated_at: at(updated_at),
        stale_after_secs: None,
        slots: slots.into_iter().map(|(n, s)| (n.to_owned(), s)).collect(),
    }
}

fn work_and_personal() -> QuotaCache {
    cache(
        "2026-11-23T11:59:00Z",
        vec![
            (
                "work",
                fresh(&[
                    ("five_hour", window(16.4, Some("2026-11-23T14:05:00Z"))),
                    ("seven_day", window(41.6, Some("2026-11-26T09:00:00Z"))),
                ]),
            ),
            ("personal", fresh(&[("five_hour", window(3.0, None))])),
        ],
    )
}

fn render(cache: &QuotaCache, opts: &Options) -> String {
    render_line(cache, opts, at(NOW), &Utc)
}

fn with_format(format: &str) -> Options {
    Options {
        template: Template::parse(format).unwrap(),
        ..Options::default()
    }
}

#[test]
fn fresh_slots_render_as_the_issue_shows() {
    assert_eq!(
        render(&work_and_personal(), &Options::default()),
        "personal 5h 3%  work 5h 16% · 7d 42%"
    );
}

#[test]
fn a_stale_cache_puts_the_marker_first() {
    let mut c = work_and_personal();
    c.updated_at = at("2026-11-23T11:00:00Z");
    assert_eq!(
        render(&c, &Options::default()),
        "🔺 personal 5h 3%  work 5h 16% · 7d 42%"
    );
}

#[test]
fn the_caches_own_stale_after_wins_over_the_config() {
    let mut c = work_and_personal();
    c.updated_at = at("2026-11-23T11:50:00Z");
    assert!(!render(&c, &Options::default()).contains('🔺'), "10m < 15m");
    c.stale_after_secs = Some(300);
    assert!(
        render(&c, &Options::default()).starts_with("🔺 "),
        "10m > 5m"
    );
}

/// The incident: the cache was rewritten every few minutes while every slot's own data was
/// 11 hours old, so nothing looked wrong.
#[test]
fn a_fresh_cache_over_11_hour_old_slot_data_marks_every_slot() {
    let old = Some("2026-11-23T01:00:00Z");
    let c = cache(
        "2026-11-23T11:59:00Z",
        vec![
            (
                "a",
                slot(SlotState::Active, old, &[("five_hour", window(5.0, None))]),
            ),
            ("b", slot(SlotState::Degraded, old, &[])),
        ],
    );
    assert_eq!(render(&c, &Options::default()), "a 5h 5% 🔺  b 🔺");
}

#[test]
fn an_active_slot_never_fetched_is_stale_but_an_inactive_one_asks_for_login() {
    let c = cache(
        "2026-11-23T11:59:00Z",
        vec![
            ("new", slot(SlotState::Active, None, &[])),
            ("gone", slot(SlotState::Inactive, None, &[])),
        ],
    );
    assert_eq!(render(&c, &Options::default()), "⚠ re-login: gone  new 🔺");
}

#[test]
fn an_inactive_slot_renders_the_relogin_marker_whatever_the_template() {
    let c = cache(
        "2026-11-23T11:59:00Z",
        vec![(
            "work",
            slot(
                SlotState::Inactive,
                Some("2026-11-23T11:58:00Z"),
                &[("five_hour", window(99.0, None))],
            ),
        )],
    );
    assert_eq!(render(&c, &with_format("{5h}")), "⚠ re-login: work");
}

#[test]
fn ascii_mode_has_no_byte_above_127() {
    let mut c = work_and_personal();
    c.updated_at = at("2026-11-23T01:00:00Z");
    c.slots
        .insert("gone".into(), slot(SlotState::Inactive, None, &[]));
    c.slots.insert("ünï".into(), fresh(&[]));
    let opts = Options {
        ascii: true,
        ..Options::default()
    };
    let line = render(&c, &opts);
    assert_eq!(
        line,
        "[stale] ! re-login: gone  personal 5h 3%  work 5h 16% / 7d 42%  ?n?"
    );
    assert!(line.is_ascii());
}

#[test]
fn colour_marks_high_utilization_only_when_asked() {
    let c = cache(
        "2026-11-23T11:59:00Z",
        vec![(
            "w",
            fresh(&[
                ("five_hour", window(95.0, None)),
                ("seven_day", window(80.0, None)),
                ("other", window(10.0, None)),
            ]),
        )],
    );
    let mut opts = with_format("{5h} {7d} {window:other}");
    assert_eq!(render(&c, &opts), "95% 80% 10%");
    opts.color = true;
    assert_eq!(
        render(&c, &opts),
        "\x1b[31m95%\x1b[0m \x1b[33m80%\x1b[0m 10%"
    );
}

#[test]
fn no_color_beats_every_colour_choice() {
    for choice in [ColorChoice::Auto, ColorChoice::Always, ColorChoice::Never] {
        assert!(!choice.resolve(true, true), "{choice:?}");
    }
    assert!(ColorChoice::Auto.resolve(true, false));
    assert!(
        !ColorChoice::Auto.resolve(false, false),
        "tmux/prompt: plain"
    );
    assert!(ColorChoice::Always.resolve(false, false));
    assert!(!ColorChoice::Never.resolve(true, false));
}

#[test]
fn placeholders_render_and_empty_ones_leave_no_gaps() {
    let c = work_and_personal();
    let opts = with_format("[{name}|{account}|{state}] {7d} {stale}{{x}}");
    assert_eq!(
        render(&c, &opts),
        "[personal|me@example.com|active] {x}  [work|me@example.com|active] 42% {x}"
    );
    let opts = Options {
        separator: " / ".into(),
        ..with_format("{name}:{window:seven_day}")
    };
    assert_eq!(render(&c, &opts), "personal: / work:42%");
}

#[test]
fn reset_times_show_in_the_given_time_zone() {
    let c = work_and_personal();
    let opts = with_format("{name} {reset:5h} {reset:7d} {reset_in:5h} {reset_in:7d}");
    let paris = FixedOffset::east_opt(3600).unwrap();
    assert_eq!(
        render_line(&c, &opts, at(NOW), &paris),
        "personal  work 15:05 Thu 10:00 2h5m 2d21h"
    );
    let tokyo = FixedOffset::east_opt(9 * 3600).unwrap();
    assert!(render_line(&c, &opts, at(NOW), &tokyo).contains("23:05 Thu 18:00"));
}

#[test]
fn a_passed_reset_shows_zero_time_left() {
    let c = cache(
        "2026-11-23T11:59:00Z",
        vec![(
            "w",
            fresh(&[("five_hour", window(5.0, Some("2026-11-23T11:00:00Z")))]),
        )],
    );
    assert_eq!(
        render(&c, &with_format("{reset_in:5h} {reset:5h}")),
        "0m 11:00"
    );
}

#[test]
fn claude_code_figures_replace_the_cached_ones_and_count_as_fresh() {
    let mut c = cache(
        "2026-11-23T11:59:00Z",
        vec![(
            "work",
            slot(
                SlotState::Active,
                Some("2026-11-23T01:00:00Z"),
                &[
                    ("five_hour", window(10.0, None)),
                    ("seven_day", window(20.0, None)),
                ],
            ),
        )],
    );
    assert_eq!(render(&c, &Options::default()), "work 5h 10% · 7d 20% 🔺");
    let stdin = br#"{"rate_limits":{"five_hour":{"used_percentage":55.2,"resets_at":1795000000}}}"#;
    let windows = claude_code::parse_rate_limits(stdin).unwrap();
    claude_code::apply(&mut c, "work", windows, at(NOW));
    assert_eq!(render(&c, &Options::default()), "work 5h 55% · 7d 20%");
}

#[test]
fn an_empty_cache_says_so() {
    let c = cache("2026-11-23T11:59:00Z", vec![]);
    assert_eq!(render(&c, &Options::default()), NO_SLOTS);
}

#[test]
fn junk_figures_never_panic_nor_flood_the_line() {
    let huge_name = "x".repeat(10_000);
    let c = cache(
        "2026-11-23T11:59:00Z",
        vec![
            ("neg", fresh(&[("five_hour", window(-3.0, None))])),
            ("big", fresh(&[("five_hour", window(f64::MAX, None))])),
            ("nan", fresh(&[("five_hour", window(f64::NAN, None))])),
            ("inf", fresh(&[("five_hour", window(f64::INFINITY, None))])),
            ("ctl\n\x1b[2J", fresh(&[])),
            (&huge_name, fresh(&[])),
        ],
    );
    let opts = with_format("{name} {5h}");
    let line = render(&c, &opts);
    assert!(
        line.contains("neg ?%") && line.contains("big >999%"),
        "{line}"
    );
    assert!(
        line.contains("nan ?%") && line.contains("inf >999%"),
        "{line}"
    );
    assert!(line.contains("ctl??[2J") && !line.contains('\n'), "{line}");
    assert!(line.len() < 300, "{}", line.len());
}

#[test]
fn junk_cache_files_parse_or_fail_but_never_panic() {
    let far_dates = r#"{"updated_at":"+262142-12-31T23:59:59Z","stale_after_secs":18446744073709551615,
        "slots":{"a":{"account":null,"state":"active","fetched_at":"-262143-01-01T00:00:00Z",
        "windows":{"five_hour":{"utilization":1e308,"resets_at":"+262142-01-01T00:00:00Z"}},
        "error":null}}}"#;
    let junk = [
        "",
        "null",
        "{}",
        "[]",
        r#"{"updated_at":"yesterday","slots":{}}"#,
        r#"{"updated_at":"2026-11-23T11:59:00Z","slots":{"a":{"state":"sleepy"}}}"#,
        r#"{"updated_at":"2026-11-23T11:59:00Z","slots":{"a":{"account":null,"state":"active",
            "fetched_at":null,"windows":{"x":{"utilization":"NaN"}},"error":null}}}"#,
        r#"{"updated_at":"2026-11-23T11:59:00Z","slots":[]}"#,
        far_dates,
    ];
    let opts = with_format("{name} {account} {state} {stale} {windows} {reset:5h} {reset_in:5h}");
    for text in junk {
        if let Ok(c) = serde_json::from_str::<QuotaCache>(text) {
            let line = render_line(&c, &opts, at(NOW), &FixedOffset::east_opt(0).unwrap());
            assert!(!line.contains('\n'), "{line}");
        }
    }
    assert!(
        serde_json::from_str::<QuotaCache>(far_dates).is_ok(),
        "exercised"
    );
}

#[test]
fn the_template_language_refuses_typos_with_a_position() {
    assert_eq!(
        Template::parse(DEFAULT_FORMAT).unwrap(),
        Template::default()
    );
    let pieces = Template::parse("{{{5h}}}").unwrap();
    assert_eq!(
        pieces.pieces(),
        [
            Piece::Literal("{".into()),
            Piece::Percent("five_hour".into()),
            Piece::Literal("}".into()),
        ]
    );
    for (bad, position, words) in [
        ("{nmae}", 0, "unknown placeholder"),
        ("ab{5h", 2, "not closed"),
        ("a}b", 1, "lone"),
        ("{window:}", 0, "window"),
        ("{reset:Five Hour}", 0, "window"),
        ("{bogus:5h}", 0, "unknown"),
        ("é{x}", 1, "unknown"),
    ] {
        let e = Template::parse(bad).unwrap_err();
        assert_eq!(e.position, position, "{bad}");
        assert!(e.message.contains(words), "{bad}: {e}");
    }
    assert!(Template::parse("{reset:7d}").unwrap().uses_local_time());
    assert!(!Template::parse("{reset_in:7d}").unwrap().uses_local_time());
}

#[test]
fn collapsing_spaces_keeps_every_word_once_spaced() {
    let words = ["", " ", "  ", "a", "é", "ab cd", " x ", "🔺"];
    for a in words {
        for b in words {
            for c in words {
                let text = format!("{a} {b}  {c} ");
                let mut line = String::from(">");
                push_collapsed(&mut line, &text);
                let expected: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
                assert_eq!(line, format!(">{}", expected.join(" ")), "{text:?}");
            }
        }
    }
}
