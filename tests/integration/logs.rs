//! The daemon's log files and `sessctl logs`: retention prunes only sessctl's own old files
//! (at start-up and at each rotation), minutely rotation starts a new file, `logs -n` prints
//! the last lines across files, `logs -f` shows what the daemon writes later (across a
//! rotation too), and bad input or no log files get clear errors and distinct exit codes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;

use crate::flows::{Running, assert_daemon_refuses_config, assert_success, code_and_stderr};
use crate::support::process::ChildGuard;
use crate::support::sessctl::SESSCTL;
use crate::support::{TestEnv, wait_for};

/// `sessctl logs` found no log files (sysexits `EX_NOINPUT`).
const NO_LOGS: i32 = 66;
/// Bad command-line usage.
const USAGE: i32 = 64;

fn log_dir(env: &TestEnv) -> PathBuf {
    env.state_dir().join("sessctl/logs")
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The daily log file the daemon writes today (UTC).
fn todays_file() -> String {
    format!("sessctl.{}.log", Utc::now().format("%Y-%m-%d"))
}

/// The minutely log file of the current minute (UTC).
fn this_minutes_file() -> String {
    format!("sessctl.{}.log", Utc::now().format("%Y-%m-%d-%H-%M"))
}

/// `sessctl logs ARGS...` running in the background, its stdout collected.
struct Following {
    output: Arc<Mutex<String>>,
    _process: ChildGuard,
}

impl Following {
    fn start(env: &TestEnv, args: &[&str]) -> Following {
        let mut cmd = env.sessctl_command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut process = ChildGuard::spawn(cmd, "sessctl logs -f");
        let mut stdout = process.child_mut().stdout.take().expect("piped stdout");
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Following {
            output,
            _process: process,
        }
    }

    fn text(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

#[test]
fn log_retention_prunes_old_log_files_at_start_and_keeps_other_files() {
    let env = TestEnv::new();
    let dir = log_dir(&env);
    std::fs::create_dir_all(&dir).unwrap();
    let old: Vec<String> = (1..=5)
        .map(|d| format!("sessctl.2020-01-0{d}.log"))
        .collect();
    let unrelated = [
        "sessctl-notes.log",
        "sessctl.old.log",
        "sessctl.2020-01-01.log.gz",
        "notes.txt",
    ];
    for name in old.iter().map(String::as_str).chain(unrelated) {
        std::fs::write(dir.join(name), format!("{name}\n")).unwrap();
    }
    env.write_config("log_retention: 3\n");
    let _daemon = env.start_daemon();

    let mut expected: Vec<String> = unrelated.iter().map(|s| (*s).to_owned()).collect();
    expected.extend([
        "sessctl.2020-01-04.log".into(),
        "sessctl.2020-01-05.log".into(),
    ]);
    expected.push(todays_file());
    expected.sort();
    assert_eq!(names_in(&dir), expected);
    let today = dir.join(todays_file());
    wait_for(
        "the start-up lines in the log file",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&today)
                .is_ok_and(|t| t.contains("started") && t.contains("deleted old log files"))
        },
    );
    assert_eq!(
        mode_of(&today),
        0o600,
        "the log file names accounts: private"
    );
}

#[test]
fn minutely_rotation_starts_a_new_file_prunes_the_old_one_and_logs_f_follows_it() {
    let t = Running::start("log_rotation: minutely\nlog_retention: 1");
    t.login("work", "alice");
    let dir = log_dir(&t.env);
    // `-n 1` prints a line as soon as it is following: then it is known to be watching.
    let follow = Following::start(&t.env, &["logs", "-f", "-n", "1"]);
    wait_for(
        "logs -f to print its first line",
        Duration::from_secs(20),
        || follow.text().contains('\n'),
    );
    let first = this_minutes_file();
    wait_for(
        "the wall clock to reach the next minute",
        Duration::from_secs(70),
        || this_minutes_file() != first,
    );
    let second = this_minutes_file();
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");

    let new_file = dir.join(&second);
    wait_for("the new minute's file", Duration::from_secs(20), || {
        std::fs::read_to_string(&new_file).is_ok_and(|text| text.contains("outcome=\"refreshed\""))
    });
    // log_retention: 1 leaves only the file being written, and nothing else was there.
    wait_for("the old file to be pruned", Duration::from_secs(20), || {
        names_in(&dir) == [second.clone()]
    });
    wait_for(
        "logs -f to show the refresh from the new file",
        Duration::from_secs(20),
        || follow.text().contains("outcome=\"refreshed\""),
    );
    // The file opened at the rotation is private, like the one opened at start-up.
    assert_eq!(mode_of(&new_file), 0o600);
}

/// A file's permission bits.
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn logs_n_prints_the_last_lines_across_files_oldest_first() {
    let env = TestEnv::new();
    let dir = log_dir(&env);
    std::fs::create_dir_all(&dir).unwrap();
    let older = "line 1\nline 2\nline 3\nline 4\n";
    let newer = "line 5\nline 6\nline 7\n";
    std::fs::write(dir.join("sessctl.2020-01-02.log"), newer).unwrap();
    std::fs::write(dir.join("sessctl.2020-01-01.log"), older).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a log\n").unwrap();

    let out = env.sessctl(&["logs", "-n", "5"]);
    assert_success(&out, "logs -n 5");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "line 3\nline 4\nline 5\nline 6\nline 7\n"
    );
    let out = env.sessctl(&["logs", "--lines", "0"]);
    assert_success(&out, "logs --lines 0");
    assert!(out.stdout.is_empty());
    // The default (50) is more than there are: everything, in order.
    let out = env.sessctl(&["logs"]);
    assert_success(&out, "logs");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 7);
    assert!(text.starts_with("line 1\n") && !text.contains("not a log"));
}

#[test]
fn logs_shows_the_daemons_lines_while_it_runs_and_after_it_stopped() {
    let t = Running::start("");
    t.login("work", "alice");
    wait_for(
        "logs to show the start and the login",
        Duration::from_secs(20),
        || {
            let out = t.env.sessctl(&["logs", "-n", "1000"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            out.status.success()
                && text.contains("sessctl daemon")
                && text.contains("started")
                && text.contains("outcome=\"redeemed\"")
        },
    );
    assert_success(&t.env.sessctl(&["shutdown"]), "shutdown");
    let out = t.env.sessctl(&["logs", "-n", "3"]);
    assert_success(&out, "logs after shutdown");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn logs_f_shows_a_line_the_daemon_writes_after_it_started_following() {
    let t = Running::start("");
    t.login("work", "alice");
    let follow = Following::start(&t.env, &["logs", "-f", "-n", "1"]);
    wait_for(
        "logs -f to print its first line",
        Duration::from_secs(20),
        || follow.text().contains('\n'),
    );
    assert!(!follow.text().contains("outcome=\"refreshed\""));
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    wait_for(
        "logs -f to show the refresh",
        Duration::from_secs(20),
        || follow.text().contains("outcome=\"refreshed\""),
    );
}

#[test]
fn a_refresh_and_a_usage_fetch_are_logged_with_slot_outcome_and_duration() {
    let t = Running::start("");
    t.login("work", "alice");
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    let dir = log_dir(&t.env);
    let file = dir.join(todays_file());
    let line_with = |needle: &str| {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_owned)
    };
    // Lines reach the file through the daemon's log writer thread: await them.
    wait_for(
        "the refresh and usage fetch lines",
        Duration::from_secs(20),
        || line_with("usage fetch").is_some() && line_with("outcome=\"refreshed\"").is_some(),
    );
    let refresh = line_with("outcome=\"refreshed\"").expect("a refresh line");
    assert!(
        refresh.contains(" INFO ") && refresh.contains("slot=\"work\""),
        "{refresh}"
    );
    assert!(refresh.contains("duration_ms="), "{refresh}");
    let usage = line_with("usage fetch").unwrap();
    // A successful fetch is debug (the tests' level): with many slots it would fill the log.
    for part in [
        " DEBUG ",
        "slot=\"work\"",
        "outcome=\"fetched\"",
        "http=\"2xx\"",
        "duration_ms=",
    ] {
        assert!(usage.contains(part), "{part} missing: {usage}");
    }
}

#[test]
fn a_deactivated_slot_is_logged_at_error_with_its_reason() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    t.server.revoke_grant(&grant.grant_id);
    let out = t.env.sessctl(&["refresh", "work"]);
    assert_eq!(out.status.code(), Some(4), "{:?}", code_and_stderr(&out));
    let file = log_dir(&t.env).join(todays_file());
    wait_for("the state change line", Duration::from_secs(20), || {
        std::fs::read_to_string(&file).is_ok_and(|text| {
            text.lines().any(|l| {
                l.contains(" ERROR ")
                    && l.contains("slot state changed")
                    && l.contains("from=\"active\" to=\"inactive\"")
                    && l.contains("reason=\"session_expired\"")
            })
        })
    });
}

#[test]
fn bad_line_counts_are_usage_errors() {
    let env = TestEnv::new();
    for args in [
        &["logs", "-n", "-1"][..],
        &["logs", "-n", "abc"],
        &["logs", "-n", "1.5"],
        &["logs", "-n", ""],
        &["logs", "-n", "99999999999999999999999"],
        &["logs", "-n"],
        &["logs", "--lines=ten", "-f"],
        &["logs", "--follow=yes"],
        &["logs", "extra"],
    ] {
        let out = env.sessctl(args);
        let (code, stderr) = code_and_stderr(&out);
        assert_eq!(code, Some(USAGE), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn without_log_files_logs_says_so_and_exits_66() {
    let env = TestEnv::new();
    for args in [&["logs"][..], &["logs", "-f"], &["logs", "-n", "5"]] {
        let out = env.sessctl(args);
        let (code, stderr) = code_and_stderr(&out);
        assert_eq!(code, Some(NO_LOGS), "{args:?}: {stderr}");
        assert!(stderr.contains("no log files"), "{stderr}");
        assert!(
            stderr.contains(&log_dir(&env).display().to_string()),
            "{stderr}"
        );
    }
    // A directory holding only other files has no log files either.
    std::fs::create_dir_all(log_dir(&env)).unwrap();
    std::fs::write(log_dir(&env).join("sessctl-notes.log"), "x\n").unwrap();
    assert_eq!(env.sessctl(&["logs"]).status.code(), Some(NO_LOGS));
}

#[test]
fn an_invalid_sessctl_log_is_reported_and_the_default_level_used() {
    let env = TestEnv::new();
    let daemon = env.start_daemon_logging(Path::new(SESSCTL), &[], "sessctl=loud");
    let stderr = daemon.log();
    assert!(
        stderr.contains("SESSCTL_LOG") && stderr.contains("not a valid log filter"),
        "{stderr}"
    );
    assert!(
        stderr.contains(" INFO ") && !stderr.contains("DEBUG"),
        "{stderr}"
    );
    let file = log_dir(&env).join(todays_file());
    wait_for(
        "the warning in the log file",
        Duration::from_secs(10),
        || std::fs::read_to_string(&file).is_ok_and(|t| t.contains("not a valid log filter")),
    );
    // The CLI says the same on stderr and goes on.
    let mut cmd = env.sessctl_command(&["logs", "-n", "1"]);
    cmd.env("SESSCTL_LOG", "=");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid log filter"));
}

#[test]
fn a_bad_log_setting_refuses_the_config_and_the_refusal_is_in_the_log_file() {
    let env = TestEnv::new();
    for (yaml, key) in [
        ("log_retention: 0\n", "log_retention"),
        ("log_retention: -2\n", "log_retention"),
        ("log_retention: lots\n", "log_retention"),
        ("log_rotation: weekly\n", "log_rotation"),
    ] {
        assert_daemon_refuses_config(&env, yaml, &format!(":1: {key}:"));
    }
    // The default rotation applies to a refused config's own log lines.
    let file = log_dir(&env).join(todays_file());
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("refusing to start").count(), 4, "{text}");
}
