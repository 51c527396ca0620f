//! A thousand slots on one daemon, measured (run by `scripts/bench.sh scale1000`, never by
//! CI): logins, a steady state, and a restart with every token expired, against the real
//! test server and keychain. Prints figures; asserts only what must hold at any speed (no
//! refresh token reused, every slot active again).
//!
//! With `SESSCTL_BENCH_BIN` set to a release `sessctl` (bench.sh does), the daemon and the
//! timed commands are that binary, so the figures are a release build's; otherwise the
//! test build's. `SLOTS` (default 1000) and `STEADY_SECS` (default 60) resize it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::flows::{Running, assert_success};
use crate::support::wait_for;

/// Logins run this many at a time, as a team's provisioning script might.
const LOGIN_THREADS: usize = 4;
/// Runs of each timed command (interleaved, medians).
const TIMED_RUNS: usize = 200;
/// Lifetime of the tokens issued just before the restart, so they have all expired when
/// it comes.
const SHORT_TTL: u64 = 120;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The `sessctl` to measure: `SESSCTL_BENCH_BIN`, else the test build's.
fn program() -> PathBuf {
    std::env::var_os("SESSCTL_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_sessctl")),
        PathBuf::from,
    )
}

fn run(t: &Running, args: &[&str], stdin: Option<&[u8]>) -> Output {
    t.env.run_cli(&program(), args, stdin)
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted
        .get((sorted.len().max(1) - 1) * p / 100)
        .copied()
        .unwrap_or(f64::NAN)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 50)
}

/// Logs in `n` slots with `--refresh-token-stdin`; each login's wall time in ms, by slot.
fn login_all(t: &Running, n: usize) -> Vec<f64> {
    let mut times = vec![0.0; n];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..LOGIN_THREADS)
            .map(|first| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in (first..n).step_by(LOGIN_THREADS) {
                        let account = format!("acct{i:04}");
                        let grant = t.server.grant(&account, &format!("{account}@example.com"));
                        let started = Instant::now();
                        let out = run(
                            t,
                            &[
                                "login",
                                &format!("s{i:04}"),
                                "--provider",
                                "test",
                                "--refresh-token-stdin",
                            ],
                            Some(grant.refresh_token.as_bytes()),
                        );
                        assert_success(&out, "login");
                        mine.push((i, started.elapsed().as_secs_f64() * 1000.0));
                    }
                    mine
                })
            })
            .collect();
        for worker in workers {
            for (i, ms) in worker.join().unwrap() {
                times[i] = ms;
            }
        }
    });
    times
}

/// Slots in the quota cache with usage windows.
fn cached_with_windows(cache: &Path) -> usize {
    let Ok(bytes) = std::fs::read(cache) else {
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

/// Voluntary context switches by thread (id and name), CPU ticks, and RSS in KiB of process
/// `pid`.
/// (Threads come and go, so wakeups are summed thread by thread, not as one total.)
fn process_figures(pid: u32) -> (BTreeMap<String, u64>, u64, u64) {
    let mut switches = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let count = status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let tid = task.file_name().to_string_lossy().into_owned();
            switches.insert(format!("{tid} {}", name.trim()), count);
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of /proc/PID/stat; here 0-based after the name.
    let ticks = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (switches, ticks, rss)
}

/// Median wall times in ms of `/bin/true`, `status --json` and `statusline`, interleaved.
fn timed_commands(t: &Running) -> [f64; 3] {
    let time = |cmd: &mut Command| {
        let started = Instant::now();
        let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        status.expect("run a timed command");
        started.elapsed().as_secs_f64() * 1000.0
    };
    let mut runs: [Vec<f64>; 3] = Default::default();
    for _ in 0..TIMED_RUNS {
        runs[0].push(time(&mut t.env.command("/bin/true")));
        runs[1].push(time(t.env.command(program()).args(["status", "--json"])));
        let mut statusline = t.env.command(program());
        runs[2].push(time(
            statusline
                .args(["statusline", "--no-stdin"])
                .stdin(Stdio::null()),
        ));
    }
    runs.map(median)
}

/// Every slot's `last_refresh_at`, by name.
fn last_refreshes(t: &Running) -> Vec<Option<DateTime<Utc>>> {
    let out = run(t, &["status", "--json"], None);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    status["slots"].as_array().map_or_else(Vec::new, |slots| {
        slots
            .iter()
            .map(|s| {
                s["last_refresh_at"]
                    .as_str()
                    .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                    .map(|at| at.with_timezone(&Utc))
            })
            .collect()
    })
}

/// The numbers after `field=` on every log line containing `marker`, sorted.
fn field_values(log: &str, marker: &str, field: &str) -> Vec<f64> {
    let mut values: Vec<f64> = log
        .lines()
        .filter(|line| line.contains(marker))
        .filter_map(|line| line.split(&format!("{field}=")).nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|n| n.trim_matches('"').parse().ok())
        .collect();
    values.sort_by(f64::total_cmp);
    values
}

/// Starts the measured daemon (at info level, as a user runs it, plus the journal's debug
/// line that carries each reply's time to durable) after the current one has stopped.
fn start_daemon(t: &mut Running) {
    if t.daemon.is_running() {
        assert!(t.daemon.terminate(Duration::from_secs(120)).success());
    }
    t.daemon =
        t.env
            .start_daemon_logging(&program(), &[], "info,sessctl::daemon::jobs::journal=debug");
}

#[test]
#[ignore = "a measurement: scripts/bench.sh scale1000 runs it"]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario, measured step by step in the order the report prints"
)]
fn measure_a_thousand_slots() {
    let n = usize::try_from(env_number("SLOTS", 1000)).unwrap();
    let steady = env_number("STEADY_SECS", 60);
    let load_at_start = load_average();
    let mut t = Running::start("");
    start_daemon(&mut t);

    // Logins.
    let logins = login_all(&t, n);
    let hundred = n.min(100);
    println!(
        "scale logins: {n} slots, median {:.0} ms for the first {hundred}, {:.0} ms for the last {hundred}",
        median(logins[..hundred].to_vec()),
        median(logins[n - hundred..].to_vec())
    );

    // Logins are answered once journaled; the keychain, which rewrites its whole file per
    // item, takes their tokens at its own pace behind them.
    let answered = Instant::now();
    wait_for(
        "every login's keychain write",
        Duration::from_secs(900),
        || t.daemon.log().matches("tokens stored").count() >= n,
    );
    println!(
        "scale logins: the keychain had every login's tokens {:.1} s after the last answer",
        answered.elapsed().as_secs_f64()
    );

    // Steady state: every slot's usage cached, then left alone.
    let cache = t.env.cache_dir().join("sessctl/quota.json");
    wait_for(
        "every slot's usage in the cache",
        Duration::from_secs(900),
        || cached_with_windows(&cache) == n,
    );
    let pid = t.daemon.pid();
    let (switches0, ticks0, _) = process_figures(pid);
    let usage0 = t.server.stats().usage_requests;
    let started = Instant::now();
    // A measurement over a fixed span: nothing to wait for but the time itself.
    std::thread::sleep(Duration::from_secs(steady));
    let (switches1, ticks1, rss) = process_figures(pid);
    let secs = started.elapsed().as_secs_f64();
    let usage = t.server.stats().usage_requests - usage0;
    let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
    for (thread, n) in &switches1 {
        let name = thread.split_once(' ').map_or("", |(_, name)| name);
        *by_name.entry(name).or_default() +=
            n.saturating_sub(switches0.get(thread).copied().unwrap_or(0));
    }
    let woke: u64 = by_name.values().sum();
    #[allow(clippy::cast_precision_loss)]
    let (per_min, cpu) = (
        woke as f64 * 60.0 / secs,
        ticks1.saturating_sub(ticks0) as f64 / 100.0 / secs * 100.0,
    );
    #[allow(clippy::cast_precision_loss)]
    let rss_mb = rss as f64 / 1024.0;
    println!(
        "scale steady: {per_min:.0} voluntary wakeups/min, CPU {cpu:.1}% of a core, RSS {rss_mb:.1} MB, {usage} usage fetches in {secs:.0} s"
    );
    #[allow(clippy::cast_precision_loss)]
    let threads: Vec<String> = (by_name.iter())
        .map(|(name, n)| format!("{name} {:.0}", *n as f64 * 60.0 / secs))
        .collect();
    println!("scale steady wakeups/min by thread: {}", threads.join(", "));
    let [floor, status, statusline] = timed_commands(&t);
    println!(
        "scale commands: /bin/true {floor:.2} ms, status --json {status:.2} ms ({:.1}x), statusline {statusline:.2} ms ({:.1}x)",
        status / floor,
        statusline / floor
    );

    // Restart with every token expired: reissue short-lived tokens, stop, let them expire.
    t.server.set_access_token_ttl(SHORT_TTL);
    let reissued = Utc::now();
    // Left running: at this size it outlasts the CLI helpers' deadline; the slots' records
    // say when it is done.
    let mut refresh_all = t
        .env
        .command(program())
        .args(["refresh", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start refresh --all");
    wait_for(
        "every slot refreshed with a short-lived token",
        Duration::from_secs(900),
        || {
            let all = last_refreshes(&t);
            all.len() == n && all.iter().all(|at| at.is_some_and(|at| at > reissued))
        },
    );
    let _ = refresh_all.kill();
    let _ = refresh_all.wait();
    assert!(t.daemon.terminate(Duration::from_secs(120)).success());
    let stopped = Utc::now();
    wait_for(
        "every access token to expire",
        Duration::from_secs(SHORT_TTL + 30),
        || Utc::now() > stopped + chrono::Duration::seconds(SHORT_TTL.try_into().unwrap()),
    );
    t.server.set_access_token_ttl(3600);
    t.server.reset_stats();
    let restarted = Utc::now();
    let clock = Instant::now();
    start_daemon(&mut t);
    wait_for(
        "every slot refreshed after the restart",
        Duration::from_secs(900),
        || {
            let all = last_refreshes(&t);
            all.len() == n && all.iter().all(|at| at.is_some_and(|at| at > restarted))
        },
    );
    let took = clock.elapsed().as_secs_f64();
    let server_stats = t.server.stats();
    let in_flight = server_stats
        .in_flight_max
        .get("token")
        .copied()
        .unwrap_or(0);
    assert_eq!(t.invalid_grants(), 0, "a refresh token was reused");
    let log = t.daemon.log();
    let journal = field_values(&log, "rotated tokens journaled", "durable_us");
    let store = field_values(&log, "outcome=\"refreshed\"", "store_ms");
    println!(
        "scale restart: {n} expired slots refreshed in {took:.1} s, {} token requests, at most {in_flight} in flight",
        server_stats.token_requests
    );
    println!(
        "scale reply to durable: journal fsync p50 {:.1} ms p99 {:.1} ms ({} replies); keychain write p50 {} ms p99 {} ms",
        percentile(&journal, 50) / 1000.0,
        percentile(&journal, 99) / 1000.0,
        journal.len(),
        percentile(&store, 50),
        percentile(&store, 99)
    );
    println!(
        "scale load average (1, 5, 15 min): {load_at_start} at the start, {} at the end",
        load_average()
    );
}

/// The machine's load averages over 1, 5 and 15 minutes: the figures above are only
/// comparable between runs on a similarly loaded machine.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
