//! An idle daemon's wakeups, measured (run by `scripts/bench.sh`): a daemon with one slot
//! in the real keychain, its token fresh and its usage fetched, then left alone; every
//! thread's voluntary context switches over `IDLE_SECS` (default 60) are counted from
//! /proc and printed per minute, thread by thread.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::flows::Running;
use crate::support::wait_for;

/// Voluntary context switches by thread (name and id) of process `pid`, from /proc.
fn switches(pid: u32) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let id = task.file_name().to_string_lossy().into_owned();
        let count = field("voluntary_ctxt_switches:").parse().unwrap_or(0);
        out.insert((field("Name:"), id), count);
    }
    out
}

#[test]
#[ignore = "a measurement: scripts/bench.sh runs it"]
fn measure_idle_wakeups() {
    let secs: u64 = std::env::var("IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let t = Running::start("");
    t.login("work", "alice");
    wait_for("the first usage fetch", Duration::from_secs(30), || {
        !t.slot_status("work")["quota"]["fetched_at"].is_null()
    });
    let pid = t.daemon.pid();
    let before = switches(pid);
    let started = Instant::now();
    // A measurement over a fixed span: nothing to wait for but the time itself.
    std::thread::sleep(Duration::from_secs(secs));
    let after = switches(pid);
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let mut total = 0.0;
    for ((name, id), count) in &after {
        let was = before
            .get(&(name.clone(), id.clone()))
            .copied()
            .unwrap_or(0);
        #[allow(
            clippy::cast_precision_loss,
            reason = "a thread's wakeup count is far below 2^52"
        )]
        let per_minute = count.saturating_sub(was) as f64 / minutes;
        total += per_minute;
        println!("idle thread {name} ({id}): {per_minute:.1} wakeups/min");
    }
    println!(
        "idle daemon: {total:.1} voluntary wakeups/min over {secs} s, {} threads",
        after.len()
    );
}
