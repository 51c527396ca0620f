//! Many slots on one daemon against the real test server and keychain: replies bigger than
//! the 64 KiB request bound reach `status`, `status --json` and the statusline whole, and the
//! statusline's `quota.lines` renders what `quota.json` does.

use std::time::Duration;

use serde_json::Value;

use crate::flows::{Running, assert_success};
use crate::support::wait_for;

/// More slots than a 64 KiB reply holds (a slot with quota data is about 500 bytes).
const SLOTS: usize = 200;
/// Logins run this many at a time, to keep the test short without flooding 2 cores.
const LOGIN_THREADS: usize = 4;

fn name(i: usize) -> String {
    format!("s{i:03}")
}

/// Logs in `SLOTS` slots with `--refresh-token-stdin`, a few at a time.
fn login_all(t: &Running) {
    std::thread::scope(|scope| {
        for first in 0..LOGIN_THREADS {
            scope.spawn(move || {
                for i in (first..SLOTS).step_by(LOGIN_THREADS) {
                    t.login(&name(i), &format!("acct{i:03}"));
                }
            });
        }
    });
}

/// Slots in the quota cache file that have usage windows.
fn cached_slots_with_windows(path: &str) -> usize {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    let cache: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    cache["slots"].as_object().map_or(0, |slots| {
        slots
            .values()
            .filter(|s| s["windows"]["five_hour"].is_object())
            .count()
    })
}

#[test]
fn status_and_statusline_work_with_more_slots_than_fit_in_64_kib() {
    let t = Running::start("");
    login_all(&t);
    let cache = t.env.cache_dir().join("sessctl/quota.json");
    let cache = cache.to_string_lossy().into_owned();
    wait_for(
        "every slot's usage in the cache",
        Duration::from_secs(120),
        || cached_slots_with_windows(&cache) == SLOTS,
    );

    let out = t.env.sessctl(&["status", "--json"]);
    assert_success(&out, "status --json");
    let status: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    let slots = status["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), SLOTS);
    let compact = serde_json::to_vec(&status).unwrap();
    assert!(
        compact.len() > 64 * 1024,
        "the reply must exceed the request bound: {} bytes",
        compact.len()
    );
    assert!(slots.iter().all(|s| s["state"] == "active"), "{status}");

    let table = t.env.sessctl(&["status"]);
    assert_success(&table, "status");
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains(&name(0)) && table.contains(&name(SLOTS - 1)));

    let line = t.env.sessctl(&["statusline", "--no-stdin"]);
    assert_success(&line, "statusline");
    let line = String::from_utf8(line.stdout).unwrap();
    assert!(
        !line.starts_with("sessctl:"),
        "a marker, not the slots: {line}"
    );
    assert!(line.contains(&name(SLOTS - 1)), "{line}");

    // The daemon also wrote the statusline's read-optimised quota.lines, and it renders
    // exactly what quota.json does.
    let lines = sessctl::cache_lines::path_beside(std::path::Path::new(&cache));
    assert!(lines.exists(), "{} written", lines.display());
    std::fs::remove_file(&lines).unwrap();
    let from_json = t.env.sessctl(&["statusline", "--no-stdin"]);
    assert_eq!(String::from_utf8(from_json.stdout).unwrap(), line);
}
