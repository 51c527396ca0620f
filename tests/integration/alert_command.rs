//! `alert_command`: a program the daemon runs for every alert event, with the event as
//! JSON on stdin. The tests' program is a small shell script that appends what it reads
//! to a file; the events are read back from there. Slots are killed for real (the test
//! server revokes their grant) and brought back with a real refresh-token login.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::flows::{Running, assert_daemon_refuses_config, code_and_stderr, config_yaml};
use crate::support::{OAuthServer, TestEnv, wait_for};

/// How long an alert may take to arrive: generous for a loaded 2-core CI machine.
const ALERT_DEADLINE: Duration = Duration::from_secs(30);

/// A shell script used as `alert_command`, appending each event (stdin, then a newline)
/// to `events.jsonl` in the test's directory.
pub struct EventLog {
    dir: PathBuf,
    file: PathBuf,
    script: PathBuf,
}

impl EventLog {
    pub fn new(env: &TestEnv) -> EventLog {
        EventLog::with_prelude(env, "")
    }

    /// Like [`EventLog::new`], with `prelude` (shell, `$DIR` is the test's directory) run
    /// before the event is appended.
    pub fn with_prelude(env: &TestEnv, prelude: &str) -> EventLog {
        let dir = env.root().to_owned();
        let file = dir.join("events.jsonl");
        let script = dir.join("alert.sh");
        let text = format!(
            "DIR='{}'\n{prelude}\ncat >> \"$DIR/events.jsonl\"\necho >> \"$DIR/events.jsonl\"\n",
            dir.display()
        );
        std::fs::write(&script, text).expect("write the alert script");
        EventLog { dir, file, script }
    }

    /// The config line that runs the script (through /bin/sh: nothing to exec that was
    /// just written).
    pub fn config_line(&self) -> String {
        format!("alert_command: [/bin/sh, '{}']\n", self.script.display())
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The `event` field of every event so far.
    pub fn kinds(&self) -> Vec<String> {
        let kinds = self.events().into_iter().map(|e| e["event"].clone());
        kinds.map(|k| k.as_str().unwrap_or("").to_owned()).collect()
    }

    /// Waits until `n` events of kind `kind` have arrived.
    pub fn wait_for_kinds(&self, kind: &str, n: usize) {
        wait_for(&format!("{n} {kind} event(s)"), ALERT_DEADLINE, || {
            self.kinds().iter().filter(|k| *k == kind).count() >= n
        });
    }

    fn marker(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A daemon in `env` whose config is the test server plus `top` (YAML at the top level).
/// Start a notification listener in `env` first, if the test has one.
pub fn start_in(env: TestEnv, top: &str) -> Running {
    let server = OAuthServer::start();
    env.write_config(&config_yaml(&server, top, ""));
    let daemon = env.start_daemon();
    Running {
        server,
        daemon,
        env,
    }
}

/// Kills `slot`'s server-side session and lets the daemon find out.
fn kill_session(t: &Running, slot: &str, grant_id: &str) {
    t.server.revoke_grant(grant_id);
    let out = t.env.sessctl(&["refresh", slot]);
    assert_eq!(out.status.code(), Some(4), "{:?}", code_and_stderr(&out));
}

fn wait_for_log(t: &Running, needle: &str) {
    wait_for(
        &format!("{needle:?} in the daemon log"),
        ALERT_DEADLINE,
        || t.daemon.log().contains(needle),
    );
}

#[test]
fn alert_command_runs_once_per_all_inactive_transition_and_again_after_a_new_fall() {
    let env = TestEnv::new();
    let events = EventLog::new(&env);
    let config = format!("notifications: none\n{}", events.config_line());
    let mut t = start_in(env, &config);
    let work = t.login("work", "alice");
    let home = t.login("home", "bob");
    kill_session(&t, "work", &work.grant_id);
    kill_session(&t, "home", &home.grant_id);
    events.wait_for_kinds("all_inactive", 1);

    // Many failing cycles while every slot stays inactive: refreshes refused, state saves
    // (a failed login allocates and saves a generation).
    for _ in 0..5 {
        assert_eq!(t.env.sessctl(&["refresh", "--all"]).status.code(), Some(4));
        let out = t.env.sessctl_stdin(
            &[
                "login",
                "ghost",
                "--provider",
                "test",
                "--refresh-token-stdin",
            ],
            "not-a-refresh-token",
        );
        assert!(!out.status.success());
    }
    // Events arrive in order: once the recovery is in, everything before it is too.
    let work = t.login("work", "alice");
    events.wait_for_kinds("slot_recovered", 1);
    assert_eq!(
        events.kinds(),
        [
            "slot_inactive",
            "slot_inactive",
            "all_inactive",
            "slot_recovered"
        ]
    );
    let all = &events.events()[2];
    assert_eq!(all["reminder"], false);
    chrono::DateTime::parse_from_rfc3339(all["at"].as_str().unwrap()).expect("RFC 3339");
    let slots = all["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    let home_slot = slots.iter().find(|s| s["name"] == "home").unwrap();
    assert_eq!(home_slot["provider"], "test");
    assert_eq!(home_slot["account"], "bob@example.com");
    assert_eq!(home_slot["state"], "inactive");
    assert_eq!(home_slot["reason"], "session_expired");
    assert_eq!(
        home_slot["login_command"],
        "sessctl login home --provider test --refresh-token-stdin"
    );
    let recovered = &events.events()[3];
    assert_eq!(recovered["slots"][0]["name"], "work");
    assert_eq!(recovered["slots"][0]["state"], "active");

    // A new fall is a new transition.
    kill_session(&t, "work", &work.grant_id);
    events.wait_for_kinds("all_inactive", 2);
    assert_eq!(events.kinds()[4..], ["slot_inactive", "all_inactive"]);

    // A daemon that starts with every slot inactive says so once.
    t.crash_and_restart();
    events.wait_for_kinds("all_inactive", 3);
    let log = std::fs::read_to_string(&events.file).unwrap();
    assert!(!log.contains("access_token") && !log.contains(&work.refresh_token));
}

#[test]
fn reminders_repeat_the_all_inactive_event_while_it_lasts() {
    let env = TestEnv::new();
    let events = EventLog::new(&env);
    let config = format!(
        "notifications: none\nalerts:\n  remind_every: 2s\n{}",
        events.config_line()
    );
    let t = start_in(env, &config);
    let work = t.login("work", "alice");
    kill_session(&t, "work", &work.grant_id);
    events.wait_for_kinds("all_inactive", 2);
    let all: Vec<Value> = events
        .events()
        .into_iter()
        .filter(|e| e["event"] == "all_inactive")
        .collect();
    assert_eq!(all[0]["reminder"], false);
    assert_eq!(all[1]["reminder"], true);
    assert_eq!(all[1]["slots"][0]["name"], "work");
    assert_ne!(all[0]["at"], all[1]["at"]);
}

#[test]
fn a_hanging_alert_command_is_killed_and_later_alerts_still_arrive() {
    let env = TestEnv::new();
    // The first run hangs (with a child of its own); later runs append the event.
    let events = EventLog::with_prelude(
        &env,
        "if mkdir \"$DIR/hung\" 2>/dev/null; then\n  sleep 1000 &\n  echo $! > \"$DIR/sleep.pid\"\n  wait\nfi",
    );
    let config = format!(
        "notifications: none\nalerts:\n  command_timeout: 1s\n{}",
        events.config_line()
    );
    let t = start_in(env, &config);
    let work = t.login("work", "alice");
    let home = t.login("home", "bob");
    kill_session(&t, "work", &work.grant_id);
    let pid_file = events.marker("sleep.pid");
    wait_for("the alert command to hang", ALERT_DEADLINE, || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    // The daemon answers while its notifier hangs.
    assert_eq!(t.state("work"), "inactive");
    wait_for_log(&t, "alert_command did not finish within 1s: killed");
    let sleep_pid = std::fs::read_to_string(&pid_file).unwrap();
    wait_for(
        "the hung command's child to be killed",
        ALERT_DEADLINE,
        || gone(sleep_pid.trim()),
    );
    kill_session(&t, "home", &home.grant_id);
    events.wait_for_kinds("all_inactive", 1);
    assert_eq!(events.kinds(), ["slot_inactive", "all_inactive"]);
    assert_eq!(events.events()[0]["slots"][0]["name"], "home");
    assert!(t.env.sessctl(&["ping"]).status.success());
}

/// True when process `pid` has exited (gone, or a zombie waiting for init).
fn gone(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
    matches!(state, None | Some('Z'))
}

#[test]
fn a_failing_alert_command_is_logged_and_the_next_event_still_runs() {
    let env = TestEnv::new();
    let events = EventLog::with_prelude(
        &env,
        "if mkdir \"$DIR/failed\" 2>/dev/null; then\n  cat > /dev/null\n  echo 'relay down' >&2\n  exit 3\nfi",
    );
    let config = format!("notifications: none\n{}", events.config_line());
    let t = start_in(env, &config);
    let work = t.login("work", "alice");
    kill_session(&t, "work", &work.grant_id);
    events.wait_for_kinds("all_inactive", 1);
    assert_eq!(
        events.kinds(),
        ["all_inactive"],
        "the first (slot_inactive) failed"
    );
    let log = t.daemon.log();
    assert!(
        log.contains("alert_command failed (exit status: 3); stderr: \"relay down\""),
        "{log}"
    );
    assert!(t.daemon.log().contains("every slot is inactive: work"));
}

#[test]
fn bad_alerting_config_is_refused_with_file_line_and_key() {
    let env = TestEnv::new();
    for (yaml, needle) in [
        ("notifications: dbus\n", "config.yaml:1: notifications"),
        (
            "stale_after: 5m\nalerts:\n  remind_every: 4\n",
            "config.yaml:3: alerts.remind_every",
        ),
        (
            "alerts:\n  remind_every: 100ms\n",
            "config.yaml:2: alerts.remind_every",
        ),
        (
            "alerts:\n  command_timeout: 0s\n",
            "config.yaml:2: alerts.command_timeout",
        ),
        (
            "alert_command: [bin/alert]\n",
            "config.yaml:1: alert_command",
        ),
        ("alert_command: notify-send -u critical\n", "as a list"),
        ("alert_command: []\n", "config.yaml:1: alert_command"),
    ] {
        assert_daemon_refuses_config(&env, yaml, needle);
    }
}
