//! Desktop alerts, received by a real notification listener (python-dbusmock's
//! notification daemon) on the test's private session bus.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::flows::{Running, config_yaml};
use crate::support::{Daemon, OAuthServer, TestEnv, wait_for};

/// dbusmock's notification daemon, logging every Notify call to a file.
pub struct NotificationListener {
    child: Child,
    log: std::path::PathBuf,
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
    let server = OAuthServer::start();
    env.write_config(&config_yaml(&server, "", ""));
    let daemon: Daemon = env.start_daemon();
    let t = Running {
        server,
        daemon,
        env,
    };
    let work = t.login("work", "alice");
    let home = t.login("home", "bob");
    t.server.revoke_grant(&work.grant_id);
    assert_eq!(t.env.sessctl(&["refresh", "work"]).status.code(), Some(4));
    wait_for(
        "an alert for the deactivated slot",
        Duration::from_secs(20),
        || listener.calls().contains("work needs a new login"),
    );
    assert!(!listener.calls().contains("every account is inactive"));
    t.server.revoke_grant(&home.grant_id);
    assert_eq!(t.env.sessctl(&["refresh", "home"]).status.code(), Some(4));
    wait_for("the all-inactive alert", Duration::from_secs(20), || {
        listener.calls().contains("every account is inactive")
    });
    assert_eq!(t.env.status_json()["all_inactive"], true);
    // Each slot is announced on its transition, not again on later state changes.
    assert_eq!(
        listener.calls().matches("work needs a new login").count(),
        1
    );
}
