//! The fast path renders exactly what the long way (`decode`, then `render_line`) renders,
//! and takes nothing the long way would refuse: checked on daemon-written files, on every
//! prefix of one (a torn file), and on hand-damaged files.

use std::collections::BTreeMap;

use chrono::FixedOffset;

use super::*;
use crate::cache::{QuotaCache, SlotQuota};
use crate::cache_lines::{decode, encode};
use crate::statusline::attribute::Candidate;
use crate::statusline::{Template, render_line};

const SOURCE: &str = "1:2\t3\t4";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn slot(account: Option<&str>, state: SlotState, fetched: Option<&str>) -> SlotQuota {
    SlotQuota {
        account: account.map(str::to_owned),
        provider: Some("claude".into()),
        state,
        fetched_at: fetched.map(at),
        windows: BTreeMap::new(),
        error: None,
        extra_usage: None,
        claude_code: None,
    }
}

/// Fresh, stale, never fetched, inactive and degraded slots; unicode, long and empty texts;
/// junk and coloured utilizations; windows shown and not.
fn sample() -> QuotaCache {
    let window = |utilization, resets_at: Option<&str>| Window {
        utilization,
        resets_at: resets_at.map(at),
    };
    let mut work = slot(
        Some("me@work.com"),
        SlotState::Active,
        Some("2026-11-23T11:58:00Z"),
    );
    work.windows.insert(
        "five_hour".into(),
        window(16.4, Some("2026-11-23T14:05:00Z")),
    );
    work.windows.insert(
        "seven_day".into(),
        window(95.5, Some("2026-11-26T09:00:00Z")),
    );
    work.windows
        .insert("seven_day_opus".into(), window(77.0, None));
    work.claude_code = Some("/home/me/.claude-work".into());
    let mut odd = slot(Some(""), SlotState::Degraded, Some("2026-11-23T01:00:00Z"));
    odd.windows
        .insert("five_hour".into(), window(f64::NAN, None));
    odd.windows.insert(
        "seven_day".into(),
        window(1e308, Some("2026-11-23T11:00:00Z")),
    );
    let mut neg = slot(None, SlotState::Active, None);
    neg.windows.insert("seven_day".into(), window(-0.4, None));
    QuotaCache {
        updated_at: at("2026-11-23T11:59:00.5Z"),
        stale_after_secs: Some(900),
        slots: BTreeMap::from([
            ("work".to_owned(), work),
            ("odd".to_owned(), odd),
            ("neg".to_owned(), neg),
            ("gone".to_owned(), slot(None, SlotState::Inactive, None)),
            (
                "ünïcødé ✓".to_owned(),
                slot(Some("ü@x"), SlotState::Active, None),
            ),
            (
                "x".repeat(80),
                slot(Some(&"é".repeat(70)), SlotState::Active, None),
            ),
        ]),
    }
}

fn options() -> Vec<Options> {
    let with = |format: &str, ascii, color| Options {
        template: Template::parse(format).unwrap(),
        ascii,
        color,
        separator: " | ".into(),
        ..Options::default()
    };
    vec![
        Options::default(),
        with("{name} {windows} {stale}", true, true),
        with("{name} {windows} {stale} {current}", false, true),
        with(
            "{name}<{account}> {state} {5h} {7d} {window:seven_day_opus} {reset:5h} \
             {reset_in:7d} {reset:7d} {stale}",
            false,
            false,
        ),
    ]
}

/// The fast line, checking on the way that it is the long way's whenever it is given.
fn fast(text: &str, opts: &Options, now: DateTime<Utc>) -> Option<String> {
    let tz = FixedOffset::east_opt(3600).unwrap();
    let line = render(text, SOURCE, opts, now, &tz);
    if let Some(line) = &line {
        let cache = decode(text, SOURCE).expect("the fast path took a file decode refuses");
        assert_eq!(*line, render_line(&cache, opts, now, &tz), "for {text:?}");
    }
    line
}

#[test]
fn renders_what_the_long_way_renders() {
    let text = encode(&sample(), SOURCE);
    for now in [
        "2026-11-23T12:00:00Z",
        "2026-11-23T12:30:00Z",
        "2026-11-20T00:00:00Z",
    ] {
        for opts in options() {
            assert!(fast(&text, &opts, at(now)).is_some());
        }
    }
    let empty = QuotaCache {
        slots: BTreeMap::new(),
        ..sample()
    };
    let line = fast(
        &encode(&empty, SOURCE),
        &Options::default(),
        at("2026-11-23T12:00:00Z"),
    );
    assert_eq!(line.as_deref(), Some(crate::statusline::NO_SLOTS));
}

#[test]
fn a_torn_file_is_never_taken() {
    let text = encode(&sample(), SOURCE);
    let now = at("2026-11-23T12:00:00Z");
    for (cut, _) in text.char_indices() {
        assert_eq!(
            fast(&text[..cut], &Options::default(), now),
            None,
            "cut at {cut}"
        );
    }
}

#[test]
fn files_the_daemon_never_writes_go_the_long_way() {
    let text = encode(&sample(), SOURCE);
    let now = at("2026-11-23T12:00:00Z");
    let opts = Options::default();
    let gone = "slot\tgone\t-\t=claude\tinactive\t-\n";
    let damaged = [
        // Another quota.json, another version.
        text.replace("\t3\t4\n", "\t3\t5\n"),
        text.replace("sessctl-quota-lines\t1", "sessctl-quota-lines\t2"),
        // Out of order, and a name twice (`decode` sorts and keeps one).
        text.replace(gone, "")
            .replace("end\t", &format!("{gone}end\t")),
        text.replacen(gone, &format!("{gone}{gone}"), 1),
        // An escape (the fast path borrows texts as they stand), at a field's start and end.
        text.replace("me@work.com", "me\\\\work"),
        text.replace("me@work.com", "\\\\me"),
        text.replace("me@work.com", "me\\\\"),
        // Junk fields, a count that does not match, a window before any slot.
        text.replace("inactive", "asleep"),
        text.replace("five_hour\t16.4", "five_hour\tlots"),
        text.replace("\t=claude\t", "\tclaude\t"),
        text.replace("end\t6", "end\t7"),
        text.replacen("slot\t", "window\tfive_hour\t1.0\t-\nslot\t", 1),
        text.replace(
            "gone\t-\t=claude\tinactive\t-",
            "gone\t-\t=claude\tinactive\t-\textra",
        ),
    ];
    for text in &damaged {
        assert_eq!(fast(text, &opts, now), None, "took {text:?}");
    }
    // The long way still reads the out-of-order file, so the caller's fallback renders it.
    assert!(decode(&damaged[2], SOURCE).is_some());
}

#[test]
fn the_percent_digits_match_format() {
    let mut out = String::new();
    for tenths in 0..=10_000u32 {
        out.clear();
        let u = f64::from(tenths) / 10.0;
        crate::statusline::push_percent(&mut out, u);
        let expected = if u > 999.0 {
            ">999%".to_owned()
        } else {
            format!("{}%", u.round())
        };
        assert_eq!(out, expected);
    }
}

#[test]
fn every_time_form_decode_takes_renders_the_same() {
    let text = encode(&sample(), SOURCE);
    // A slot's fetched_at and a window's resets_at.
    for time in ["2026-11-23T11:58:00Z", "2026-11-23T14:05:00Z"] {
        let secs = at(time).timestamp();
        let plain = format!("\t{secs}.000000000\n");
        assert_eq!(text.matches(&plain).count(), 1);
        let forms = [
            format!("+{secs}.000000000"),
            format!("0{secs}.000000000"),
            format!("{secs}.+00000000"),
            "-1.000000000".to_owned(),
            "99999999999.999999999".to_owned(),
            "999999999999999.000000000".to_owned(),
            format!("{secs}.5"),
            format!("{secs}.1000000000"),
            format!("{secs}000000000"),
            ".000000000".to_owned(),
        ];
        for opts in options() {
            for form in &forms {
                let text = text.replace(&plain, &format!("\t{form}\n"));
                let now = at("2026-11-23T12:00:00Z");
                let long_way = decode(&text, SOURCE).is_some();
                assert_eq!(fast(&text, &opts, now).is_some(), long_way, "{form}");
            }
        }
    }
}

#[test]
fn the_word_at_a_time_search_finds_the_first_delimiter() {
    let naive = |b: &[u8]| (b.iter()).position(|&c| matches!(c, b'\t' | b'\n' | b'\\'));
    // Bytes next to the delimiters in value, and high bytes (UTF-8), around every position.
    let fill = [b'a', 0x08, 0x0b, 0x89, 0x8a, 0xff, 0x00, b'\r'];
    for len in 0..40 {
        for &f in &fill {
            let mut bytes = vec![f; len];
            assert_eq!(delimiter(&bytes), naive(&bytes));
            for first in 0..len {
                for second in first..len {
                    bytes.fill(f);
                    bytes[second] = b'\t';
                    bytes[first] = b'\n';
                    assert_eq!(delimiter(&bytes), Some(first), "{bytes:?}");
                    bytes[first] = b'\t';
                    bytes[second] = b'\n';
                    assert_eq!(delimiter(&bytes), naive(&bytes));
                    bytes[first] = b'\\';
                    assert_eq!(delimiter(&bytes), Some(first));
                }
            }
        }
    }
}

/// The fast line with Claude Code's `windows` laid over `slot`, checking on the way that it
/// is the long way's (`decode`, `apply`, `render_line_marked`) whenever it is given.
fn fast_attributed(
    text: &str,
    slot: &str,
    windows: &BTreeMap<String, Window>,
    opts: &Options,
    now: DateTime<Utc>,
) -> Option<String> {
    let tz = FixedOffset::east_opt(3600).unwrap();
    let choose = |_: &[Candidate<'_>]| Some(slot.to_owned());
    let line = render_attributed(text, SOURCE, windows, choose, opts, now, &tz);
    if let Some(line) = &line {
        let mut cache = decode(text, SOURCE).expect("the fast path took a file decode refuses");
        crate::statusline::claude_code::apply(&mut cache, slot, windows.clone(), now);
        let long_way = crate::statusline::render_line_marked(&cache, Some(slot), opts, now, &tz);
        assert_eq!(*line, long_way, "{slot} {windows:?}");
    }
    line
}

#[test]
fn claude_codes_figures_render_what_the_long_way_renders() {
    let text = encode(&sample(), SOURCE);
    let now = at("2026-11-23T12:00:00Z");
    let figures = |utilization, resets_at: Option<&str>| {
        let w = Window {
            utilization,
            resets_at: resets_at.map(at),
        };
        BTreeMap::from([("five_hour".to_owned(), w.clone()), ("other".to_owned(), w)])
    };
    let cases = [
        // The cached window at a higher and a lower figure, a later and an earlier window,
        // and no reset time.
        figures(20.0, Some("2026-11-23T14:05:00Z")),
        figures(3.0, Some("2026-11-23T14:05:30Z")),
        figures(1.0, Some("2026-11-23T19:00:00Z")),
        figures(99.0, Some("2026-11-23T09:00:00Z")),
        figures(50.0, None),
    ];
    for opts in options() {
        for windows in &cases {
            for slot in sample().slots.keys() {
                let line = fast_attributed(&text, slot, windows, &opts, now);
                assert!(line.is_some(), "{slot}");
            }
            // A slot the file lacks: the long way adds it.
            assert_eq!(fast_attributed(&text, "new", windows, &opts, now), None);
        }
    }
    let line = fast_attributed(&text, "work", &cases[0], &Options::default(), now).unwrap();
    assert!(line.contains("▸ work 5h 20%"), "{line}");
}

/// A slot as the choice sees it: name, account, provider, Claude Code dir.
type Row = (String, Option<String>, Option<String>, Option<String>);

#[test]
fn the_choice_sees_every_slot_with_its_claude_code_dir_and_may_choose_none() {
    let text = encode(&sample(), SOURCE);
    let now = at("2026-11-23T12:00:00Z");
    let tz = FixedOffset::east_opt(3600).unwrap();
    let mut seen: Vec<Row> = Vec::new();
    let choose = |slots: &[Candidate<'_>]| {
        let owned = |s: Option<&str>| s.map(str::to_owned);
        seen.extend(slots.iter().map(|c| {
            let provider = owned(c.provider);
            (
                c.name.to_owned(),
                owned(c.account),
                provider,
                owned(c.claude_code),
            )
        }));
        None
    };
    let windows = BTreeMap::new();
    let opts = Options::default();
    let line = render_attributed(&text, SOURCE, &windows, choose, &opts, now, &tz);
    // No slot chosen: the plain line.
    assert_eq!(line, render(&text, SOURCE, &opts, now, &tz));
    let cache = sample();
    let expected: Vec<_> = (cache.slots.iter())
        .map(|(name, s)| {
            let dir = s.claude_code.clone();
            (name.clone(), s.account.clone(), s.provider.clone(), dir)
        })
        .collect();
    assert_eq!(seen, expected);
    assert!(expected.iter().any(|(_, _, _, dir)| dir.is_some()));
}
