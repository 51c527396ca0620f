//! `sessctl statusline` run as the real binary against a temporary HOME: the printed line,
//! the markers for a missing or corrupt cache (always exit 0), and Claude Code's stdin.
//! Self-contained: its helpers live here.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sessctl::cache::{QuotaCache, SlotQuota, Window};
use sessctl::state::SlotState;

/// A temporary HOME with XDG directories under it, removed on drop.
struct Home {
    dir: PathBuf,
}

impl Home {
    fn new(test: &str) -> Home {
        let dir = std::env::temp_dir().join(format!(
            "sessctl-it-statusline-{test}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Home { dir }
    }

    fn cache_file(&self) -> PathBuf {
        self.dir.join("cache/sessctl/quota.json")
    }

    fn config_file(&self) -> PathBuf {
        self.dir.join("config/sessctl/config.yaml")
    }

    fn write_config(&self, text: &str) {
        let path = self.config_file();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessctl"));
        cmd.arg("statusline")
            .args(args)
            .env("HOME", &self.dir)
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env_remove("SESSCTL_CONFIG")
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs with stdin at end of file (as from tmux or a prompt).
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs with `input` on stdin (as from Claude Code).
    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self.command(args).stdin(Stdio::piped()).spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        wait(child, Duration::from_secs(10))
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits for `child` with a deadline, killing it when the deadline passes.
fn wait(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sessctl statusline still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// The one printed line, after checking the exit code is 0.
fn line(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(stdout.matches('\n').count(), 1, "one line: {stdout:?}");
    stdout.trim_end_matches('\n').to_owned()
}

fn ago(minutes: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::minutes(minutes)
}

fn slot(account: &str, fetched_minutes_ago: i64, five_hour: f64, seven_day: f64) -> SlotQuota {
    SlotQuota {
        account: Some(account.to_owned()),
        provider: Some("claude".to_owned()),
        state: SlotState::Active,
        fetched_at: Some(ago(fetched_minutes_ago)),
        windows: BTreeMap::from([
            ("five_hour".to_owned(), window(five_hour)),
            ("seven_day".to_owned(), window(seven_day)),
        ]),
        error: None,
        extra_usage: None,
        claude_code: None,
    }
}

fn window(utilization: f64) -> Window {
    Window {
        utilization,
        resets_at: Some(Utc::now() + chrono::Duration::hours(2)),
    }
}

fn write_cache(path: &Path, updated_minutes_ago: i64, slots: Vec<(&str, SlotQuota)>) {
    let cache = QuotaCache {
        updated_at: ago(updated_minutes_ago),
        stale_after_secs: None,
        slots: slots.into_iter().map(|(n, s)| (n.to_owned(), s)).collect(),
    };
    cache.write(path).unwrap();
}

#[test]
fn statusline_without_a_cache_prints_no_data_and_exits_0() {
    let home = Home::new("missing");
    assert_eq!(line(&home.run(&[])), "sessctl: no data");
}

#[test]
fn statusline_with_a_corrupt_cache_prints_a_marker_and_exits_0() {
    let home = Home::new("corrupt");
    std::fs::create_dir_all(home.cache_file().parent().unwrap()).unwrap();
    std::fs::write(home.cache_file(), "{\"updated_at\": tru").unwrap();
    assert_eq!(line(&home.run(&[])), "sessctl: cache unreadable");
}

#[test]
fn statusline_with_a_bad_config_prints_a_marker_and_exits_0() {
    let home = Home::new("badconfig");
    home.write_config("statusline:\n  format: '{nope}'\n");
    let out = home.run(&[]);
    assert_eq!(line(&out), "sessctl: config error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("statusline.format"), "{stderr}");
    home.write_config("");
    assert_eq!(
        line(&home.run(&["--format", "{5h"])),
        "sessctl: bad --format"
    );
}

#[test]
fn statusline_prints_fresh_slots_and_marks_the_11_hour_old_one() {
    let home = Home::new("render");
    write_cache(
        &home.cache_file(),
        1,
        vec![
            ("personal", slot("me@home.org", 11 * 60, 3.0, 9.0)),
            ("work", slot("me@work.com", 2, 16.0, 42.0)),
        ],
    );
    assert_eq!(
        line(&home.run(&[])),
        "personal 5h 3% · 7d 9% 🔺  work 5h 16% · 7d 42%"
    );
    assert_eq!(
        line(&home.run(&[
            "--ascii",
            "--format",
            "{name}={5h}{stale}",
            "--separator",
            ","
        ])),
        "personal=3%[stale],work=16%"
    );
}

#[test]
fn statusline_follows_the_config_and_no_color() {
    let home = Home::new("config");
    write_cache(
        &home.cache_file(),
        60,
        vec![("work", slot("a@b.c", 2, 95.0, 1.0))],
    );
    home.write_config("statusline:\n  format: '{name} {5h}'\n  color: always\n");
    assert_eq!(line(&home.run(&[])), "🔺 work \x1b[31m95%\x1b[0m");
    let out = home
        .command(&[])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output();
    assert_eq!(line(&out.unwrap()), "🔺 work 95%");
}

#[test]
fn claude_codes_stdin_figures_replace_the_named_slots() {
    let home = Home::new("stdin");
    write_cache(
        &home.cache_file(),
        1,
        vec![
            ("personal", slot("me@home.org", 2, 3.0, 9.0)),
            ("work", slot("me@work.com", 2, 16.0, 42.0)),
        ],
    );
    let json = r#"{"session_id":"s","model":{"display_name":"Opus"},"rate_limits":{
        "five_hour":{"used_percentage":61.4,"resets_at":4102444800},
        "seven_day":{"used_percentage":50,"resets_at":4102444800}}}"#;
    assert_eq!(
        line(&home.run_with_stdin(&["--slot", "work"], json)),
        "personal 5h 3% · 7d 9%  ▸ work 5h 61% · 7d 50%"
    );
    // No --slot and two claude slots: the account Claude Code is logged in with decides.
    std::fs::write(
        home.dir.join(".claude.json"),
        r#"{"oauthAccount":{"emailAddress":"me@home.org"}}"#,
    )
    .unwrap();
    assert_eq!(
        line(&home.run_with_stdin(&[], json)),
        "▸ personal 5h 61% · 7d 50%  work 5h 16% · 7d 42%"
    );
    // Not Claude Code's JSON: the cache alone.
    assert_eq!(
        line(&home.run_with_stdin(&[], "hello")),
        "personal 5h 3% · 7d 9%  work 5h 16% · 7d 42%"
    );
}

#[test]
fn claude_codes_figures_show_even_without_a_cache_but_flagged_stale() {
    let home = Home::new("stdin-nocache");
    home.write_config("statusline:\n  claude_code_slot: work\n");
    let json = r#"{"rate_limits":{"five_hour":{"used_percentage":7}}}"#;
    assert_eq!(line(&home.run_with_stdin(&[], json)), "🔺 ▸ work 5h 7%");
}

#[test]
fn an_open_stdin_pipe_with_no_data_never_hangs_the_prompt() {
    let home = Home::new("silent");
    write_cache(
        &home.cache_file(),
        1,
        vec![("work", slot("a@b.c", 2, 16.0, 42.0))],
    );
    let mut child = home.command(&[]).stdin(Stdio::piped()).spawn().unwrap();
    let stdin = child.stdin.take();
    let started = Instant::now();
    let out = wait(child, Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(stdin);
    assert_eq!(line(&out), "work 5h 16% · 7d 42%");
}

#[test]
fn statusline_with_bad_flags_prints_a_marker_and_exits_0() {
    let home = Home::new("badflags");
    for args in [
        &["--frobnicate"][..],
        &["--color", "sometimes"],
        &["--format"],
    ] {
        let out = home.run(args);
        assert_eq!(line(&out), "sessctl: bad arguments", "{args:?}");
        assert!(!out.stderr.is_empty(), "clap explains on stderr: {args:?}");
    }
    let out = home.run(&["--format", "{nope}"]);
    assert_eq!(line(&out), "sessctl: bad --format");
}

/// The read-optimised `quota.lines` (`src/cache_lines.rs`) the daemon writes beside the JSON.
fn lines_file(home: &Home) -> PathBuf {
    sessctl::cache_lines::path_beside(&home.cache_file())
}

/// Writes the JSON cache and, like the daemon's writer, the lines file made from it.
fn write_both(home: &Home, updated_minutes_ago: i64, slots: Vec<(&str, SlotQuota)>) {
    write_cache(&home.cache_file(), updated_minutes_ago, slots);
    let cache = QuotaCache::read(&home.cache_file()).unwrap();
    sessctl::cache_lines::write(&home.cache_file(), &cache).unwrap();
}

fn mixed_slots() -> Vec<(&'static str, SlotQuota)> {
    let mut gone = slot("gone@x.y", 2, 1.0, 2.0);
    gone.state = SlotState::Inactive;
    vec![
        ("personal", slot("me@home.org", 11 * 60, 3.0, 9.0)),
        ("work", slot("me@work.com", 2, 95.5, 42.0)),
        ("gone", gone),
    ]
}

#[test]
fn the_lines_file_renders_exactly_what_the_json_cache_does() {
    let home = Home::new("lines-same");
    write_both(&home, 30, mixed_slots());
    let formats: [&[&str]; 3] = [
        &[],
        &["--ascii", "--color", "always"],
        &[
            "--format",
            "{name} {account} {state} {7d} {reset_in:5h} {reset:7d} {stale}",
        ],
    ];
    let from_lines: Vec<String> = formats.iter().map(|a| line(&home.run(a))).collect();
    assert!(from_lines[0].starts_with("🔺 "), "{}", from_lines[0]);
    std::fs::remove_file(lines_file(&home)).unwrap();
    let from_json: Vec<String> = formats.iter().map(|a| line(&home.run(a))).collect();
    assert_eq!(from_lines, from_json);

    // And the statusline does read the lines file when it matches the JSON file on disk.
    let mut other = QuotaCache::read(&home.cache_file()).unwrap();
    other.slots.retain(|name, _| name == "work");
    sessctl::cache_lines::write(&home.cache_file(), &other).unwrap();
    assert_eq!(line(&home.run(&[])), "🔺 work 5h 96% · 7d 42%");
}

#[test]
fn a_corrupt_or_truncated_lines_file_falls_back_to_the_json_cache() {
    let home = Home::new("lines-corrupt");
    write_both(&home, 1, mixed_slots());
    let expected = "⚠ re-login: gone  personal 5h 3% · 7d 9% 🔺  work 5h 96% · 7d 42%";
    assert_eq!(line(&home.run(&[])), expected);
    let good = std::fs::read(lines_file(&home)).unwrap();
    for damaged in [
        good[..good.len() / 2].to_vec(),
        good[..good.len() - 1].to_vec(),
        b"\xff\xfe garbage".to_vec(),
        Vec::new(),
    ] {
        std::fs::write(lines_file(&home), &damaged).unwrap();
        assert_eq!(line(&home.run(&[])), expected);
    }
}

#[test]
fn a_lines_file_older_than_the_json_cache_is_ignored() {
    let home = Home::new("lines-older");
    write_both(&home, 1, vec![("work", slot("me@work.com", 2, 16.0, 42.0))]);
    assert_eq!(line(&home.run(&[])), "work 5h 16% · 7d 42%");
    // quota.json rewritten by a writer that knows nothing of quota.lines (an older sessctl).
    write_cache(
        &home.cache_file(),
        1,
        vec![("work", slot("me@work.com", 2, 77.0, 42.0))],
    );
    assert!(lines_file(&home).exists());
    assert_eq!(line(&home.run(&[])), "work 5h 77% · 7d 42%");
}
