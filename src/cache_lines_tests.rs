//! The lines file: exact round trip, every damaged form refused, and a file made from an
//! older `quota.json` ignored.

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn window(utilization: f64, resets_at: Option<&str>) -> Window {
    Window {
        utilization,
        resets_at: resets_at.map(at),
    }
}

/// Everything the format must carry: odd names, absent fields, sub-second and far times,
/// extreme floats, every state.
fn sample() -> QuotaCache {
    let slot =
        |account: Option<&str>, provider: Option<&str>, state, fetched: Option<&str>| SlotQuota {
            account: account.map(str::to_owned),
            provider: provider.map(str::to_owned),
            state,
            fetched_at: fetched.map(at),
            windows: BTreeMap::new(),
            error: None,
            extra_usage: None,
            claude_code: None,
        };
    let mut work = slot(
        Some("me@work.com"),
        Some("claude"),
        SlotState::Active,
        Some("2026-11-23T11:58:00.123456789Z"),
    );
    work.windows.insert(
        "five_hour".into(),
        window(16.4, Some("2026-11-23T14:05:00Z")),
    );
    work.windows
        .insert("seven_day".into(), window(0.1 + 0.2, None));
    work.windows.insert("huge".into(), window(1e308, None));
    work.claude_code = Some("/home/me/.claude work\t2".into());
    let far = Window {
        utilization: -3.0,
        resets_at: Some(DateTime::<Utc>::MAX_UTC),
    };
    work.windows.insert("tab\there".into(), far);
    work.windows.insert(
        "ancient".into(),
        Window {
            utilization: 0.0,
            resets_at: Some(DateTime::<Utc>::MIN_UTC),
        },
    );
    QuotaCache {
        updated_at: at("2026-11-23T11:59:00.5Z"),
        stale_after_secs: Some(900),
        slots: BTreeMap::from([
            ("work".to_owned(), work),
            (
                "ctl\n\x1b[2J\\x\r=-".to_owned(),
                slot(Some("-"), None, SlotState::Degraded, None),
            ),
            (
                "gone".to_owned(),
                slot(None, Some("=x"), SlotState::Inactive, None),
            ),
            (
                "ünï".to_owned(),
                slot(Some(""), Some("acme"), SlotState::Active, None),
            ),
        ]),
    }
}

const SOURCE: &str = "1:2\t3\t4";

#[test]
fn a_cache_round_trips_exactly() {
    let cache = sample();
    let text = encode(&cache, SOURCE);
    assert_eq!(decode(&text, SOURCE), Some(cache));
    let empty = QuotaCache {
        updated_at: at("1970-01-01T00:00:00Z"),
        stale_after_secs: None,
        slots: BTreeMap::new(),
    };
    assert_eq!(decode(&encode(&empty, SOURCE), SOURCE), Some(empty));
}

#[test]
fn non_finite_utilizations_round_trip() {
    let mut cache = sample();
    let windows = &mut cache.slots.get_mut("work").unwrap().windows;
    windows.insert("nan".into(), window(f64::NAN, None));
    windows.insert("inf".into(), window(f64::NEG_INFINITY, None));
    let back = decode(&encode(&cache, SOURCE), SOURCE).unwrap();
    let windows = &back.slots["work"].windows;
    assert!(windows["nan"].utilization.is_nan());
    assert!(windows["inf"].utilization.is_infinite() && windows["inf"].utilization < 0.0);
}

#[test]
fn a_file_cut_anywhere_is_refused() {
    let text = encode(&sample(), SOURCE);
    for end in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
        assert_eq!(decode(&text[..end], SOURCE), None, "cut at {end}");
    }
}

#[test]
fn corrupt_files_are_refused_never_panic() {
    let good = encode(&sample(), SOURCE);
    let mut corrupt = vec![
        String::new(),
        "\n".to_owned(),
        good.replace("sessctl-quota-lines\t1", "sessctl-quota-lines\t2"),
        good.replace("\tactive\t", "\tsleepy\t"),
        good.replace("cache\t", "cache\tx"),
        good.replace("end\t4", "end\t3"),
        good.replace("end\t4", "end\tfour"),
        good.replace("window\tfive_hour\t16.4", "window\tfive_hour\tsixteen"),
        good.replace(".123456789", ".1234"),
        good.replace("\\t", "\\q"),
        good.replace("slot\twork", "slat\twork"),
        good.replace("\t=me@work.com", "\tme@work.com"),
        format!("{MAGIC}\nsource\t{SOURCE}\ncache\t0.000000000\t-\nwindow\tw\t1.0\t-\nend\t0\n"),
        good.replace("\t-\n", "\t-\textra\n"),
        format!("{MAGIC}\nsource\t{SOURCE}\ncache\t99999999999999999.000000000\t-\nend\t0\n"),
    ];
    for i in (0..good.len()).step_by(7) {
        let mut bytes = good.clone().into_bytes();
        bytes[i] ^= 0x55;
        corrupt.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    for (i, text) in corrupt.iter().enumerate().take(15) {
        assert_eq!(decode(text, SOURCE), None, "case {i}: {text:?}");
    }
    for text in &corrupt[15..] {
        let _ = decode(text, SOURCE);
    }
}

#[test]
fn a_file_made_from_another_json_file_is_ignored() {
    let dir = crate::test_dirs::fresh("cache-lines");
    let json = dir.join("quota.json");
    let cache = sample();
    cache.write(&json).unwrap();
    write(&json, &cache).unwrap();
    let meta = std::fs::metadata(&json).unwrap();
    assert_eq!(read_current(&json, &meta), Some(cache.clone()));

    // quota.json replaced afterwards (an older sessctl, a restore): the lines file is stale.
    let mut newer = cache;
    newer.stale_after_secs = Some(60);
    newer.write(&json).unwrap();
    let meta = std::fs::metadata(&json).unwrap();
    assert_eq!(read_current(&json, &meta), None);
    write(&json, &newer).unwrap();
    assert_eq!(read_current(&json, &meta), Some(newer));

    std::fs::write(path_beside(&json), "sessctl-quota-lines\t1\nsource").unwrap();
    assert_eq!(read_current(&json, &meta), None);
    std::fs::remove_file(path_beside(&json)).unwrap();
    assert_eq!(read_current(&json, &meta), None);
    std::fs::remove_dir_all(&dir).unwrap();
}
