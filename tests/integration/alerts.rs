//! Desktop alerts, received by a real notification listener (python-dbusmock's
//! notification daemon) on the test's private session bus: every `Notify` call it gets is
//! a real D-Bus method call, logged with its summary, body and hints (urgency).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::alert_command::{EventLog, start_in as start};
use crate::flows::code_and_stderr;
use crate::support::{TestEnv, wait_for};

/// dbusmock's notification daemon, logging every Notify call to a file.
pub struct NotificationListener {
    child: Child,
    log: std::path::PathBuf,
}

/// One `Notify` call as the listener logged it.
#[derive(Debug)]
pub struct Notice {
    pub summary: String,
    pub body: String,
    /// The freedesktop urgency hint: 0 low, 1 normal, 2 critical.
    pub urgency: Option<u8>,
}

impl NotificationListener {
    pub fn start(env: &TestEnv) -> NotificationListener {
        let log = env.root().join("notifications.log");
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "dbusmock",
                "--session",
                "-t",
                "notification_daemon",
                "-l",
            ])
            .arg(&log)
            .envs(env.vars())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-dbusmock (installed by scripts/test.sh)");
        let listener = NotificationListener { child, log };
        wait_for(
            "the notification listener on the bus",
            Duration::from_secs(20),
            || env.bus_name_owned("org.freedesktop.Notifications"),
        );
        listener
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every Notify call so far. The log has one entry per call, starting with a
    /// timestamp and ` Notify "sessctl" 0 "" "SUMMARY" "BODY" [] {HINTS} -1` (the body
    /// may span lines).
    pub fn notices(&self) -> Vec<Notice> {
        let calls = self.calls();
        let mut entries: Vec<String> = Vec::new();
        for line in calls.lines() {
            let starts_call = line.split_once(' ').is_some_and(|(stamp, rest)| {
                stamp.parse::<f64>().is_ok() && rest.starts_with("Notify ")
            });
            match entries.last_mut() {
                Some(entry) if !starts_call => {
                    entry.push('\n');
                    entry.push_str(line);
                }
                _ => entries.push(line.to_owned()),
            }
        }
        entries.iter().filter_map(|e| parse_notify(e)).collect()
    }
}

fn parse_notify(entry: &str) -> Option<Notice> {
    let rest = entry.split_once(" Notify \"sessctl\" 0 \"\" \"")?.1;
    let (summary, rest) = rest.split_once("\" \"")?;
    let (body, hints) = rest.rsplit_once("\" [] {")?;
    let urgency = hints
        .split_once("\"urgency\": ")
        .and_then(|(_, v)| v.chars().next()?.to_digit(10))
        .and_then(|d| u8::try_from(d).ok());
    Some(Notice {
        summary: summary.to_owned(),
        body: body.to_owned(),
        urgency,
    })
}

impl Drop for NotificationListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn losing_the_last_active_slot_raises_desktop_alerts() {
    let env = TestEnv::new();
    let listener = NotificationListener::start(&env);
    let t = start(env, "");
    let work = t.login("work", "alice");
    let home = t.login("home", "bob");
    t.server.revoke_grant(&work.grant_id);
    assert_eq!(t.env.sessctl(&["refresh", "work"]).status.code(), Some(4));
    wait_for(
        "an alert for the deactivated slot",
        Duration::from_secs(20),
        || listener.calls().contains("work needs a new login"),
    );
    let notices = listener.notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let prompt = &notices[0];
    assert_eq!(prompt.summary, "sessctl: work needs a new login");
    assert_eq!(prompt.urgency, Some(1), "normal urgency: {prompt:?}");
    for needle in [
        "work",
        "alice@example.com",
        "session_expired",
        "sessctl login work --provider test --refresh-token-stdin",
    ] {
        assert!(prompt.body.contains(needle), "{needle}: {prompt:?}");
    }

    t.server.revoke_grant(&home.grant_id);
    assert_eq!(t.env.sessctl(&["refresh", "home"]).status.code(), Some(4));
    wait_for("the all-inactive alert", Duration::from_secs(20), || {
        listener.calls().contains("every account is inactive")
    });
    assert_eq!(t.env.status_json()["all_inactive"], true);
    let notices = listener.notices();
    let all = notices
        .iter()
        .find(|n| n.summary == "sessctl: every account is inactive")
        .expect("parsed");
    assert_eq!(all.urgency, Some(2), "critical urgency: {all:?}");
    for needle in [
        "sessctl login work --provider test --refresh-token-stdin",
        "sessctl login home --provider test --refresh-token-stdin",
        "bob@example.com",
    ] {
        assert!(all.body.contains(needle), "{needle}: {all:?}");
    }
    // Each slot is announced on its transition, not again on later state changes.
    assert_eq!(
        listener.calls().matches("work needs a new login").count(),
        1
    );
    // The refusal a client gets names the same command.
    let (_, stderr) = code_and_stderr(&t.env.sessctl(&["token", "work"]));
    assert!(
        stderr.contains("sessctl login work --provider test --refresh-token-stdin"),
        "{stderr}"
    );
}

#[test]
fn notifications_none_sends_nothing_to_the_desktop() {
    let env = TestEnv::new();
    let listener = NotificationListener::start(&env);
    let events = EventLog::new(&env);
    let t = start(
        env,
        &format!("notifications: none\n{}", events.config_line()),
    );
    let work = t.login("work", "alice");
    t.server.revoke_grant(&work.grant_id);
    assert_eq!(t.env.sessctl(&["refresh", "work"]).status.code(), Some(4));
    // Delivery runs the desktop step before alert_command: once the command has the
    // all-inactive event, a notification would already have been sent.
    events.wait_for_kinds("all_inactive", 1);
    assert_eq!(
        listener.calls(),
        "",
        "no Notify call with notifications: none"
    );
}
