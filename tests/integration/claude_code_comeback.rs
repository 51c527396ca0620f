//! An inactive Claude Code slot gets back: the advice `status`, `token` and the alerts give
//! is a login that works (it goes into the slot's own dir), and a new login Claude Code
//! itself writes into the dir (`claude /login`, played by the test writing the store the way
//! Claude Code does: temp file and rename, mode 0600) makes the slot active again.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::alert_command::EventLog;
use crate::claude_code_login::browser_login;
use crate::claude_code_slots::claude_dir;
use crate::claude_shapes::claude_pointed_at;
use crate::flows::{Running, assert_success, code_and_stderr, token_works};
use crate::socket::exchange;
use crate::support::claude_code::{
    access_token_in, adopt, assert_same_token, fresh_login, refresh_token_in, replace_store,
    store_path,
};
use crate::support::{OAuthServer, TestEnv, wait_for};

/// How long a new login in the dir may take to be noticed (probes run at most every 5 s
/// while the daemon is busy, and at its 30 s timer when idle; `status` calls keep it busy).
const NOTICE: Duration = Duration::from_secs(20);

/// Writes a fresh login of `account` into `dir` as Claude Code's `/login` does; returns
/// its grant id.
fn claude_code_login(t: &Running, dir: &Path, account: &str) -> String {
    let (mut login, grant_id) = fresh_login(t, account);
    login["subscriptionType"] = "max".into();
    replace_store(dir, &json!({"claudeAiOauth": login}));
    grant_id
}

/// Kills the slot's grant at the server and lets the daemon meet it: inactive.
fn kill(t: &Running, slot: &str, grant_id: &str) {
    t.server.revoke_grant(grant_id);
    let out = t.env.sessctl(&["refresh", slot]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(t.state(slot), "inactive");
}

#[test]
fn an_inactive_claude_code_slot_is_advised_a_login_that_works() {
    let env = TestEnv::new();
    let server = OAuthServer::start();
    let events = EventLog::new(&env);
    env.write_config(&format!(
        "{}{}",
        events.config_line(),
        claude_pointed_at(&server)
    ));
    let daemon = env.start_daemon();
    let t = Running {
        server,
        daemon,
        env,
    };
    t.server.add_account("work", "work@example.com");
    let dir = t.env.home().join(".claude-work");
    let grant = claude_code_login(&t, &dir, "work");
    let out = t.env.sessctl(&[
        "adopt",
        "work",
        "--claude-code",
        dir.to_str().unwrap(),
        "--provider",
        "claude",
    ]);
    assert_success(&out, "adopt");
    kill(&t, "work", &grant);

    // `status` as the user runs it (on a desktop: a browser can open).
    let (browser, _) = crate::login_flows::browser_script(&t);
    let out = t
        .env
        .sessctl_command(&["status"])
        .env("BROWSER", &browser)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let next = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("next: log in again: "))
        .unwrap_or_else(|| panic!("no login advice: {text}"));
    let command = next.split(" (the login goes").next().unwrap();
    let token = t.env.sessctl(&["token", "work"]);
    let refusal = code_and_stderr(&token).1;
    assert!(refusal.contains(&format!("run: {command}")), "{refusal}");
    events.wait_for_kinds("slot_inactive", 1);
    let alert = events
        .events()
        .into_iter()
        .find(|e| e["event"] == "slot_inactive")
        .unwrap();
    let alerted = alert["slots"][0]["login_command"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(alerted.starts_with(command), "{alerted} / {command}");

    // The advice, run as given, logs the slot in again, into its own dir.
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    assert_eq!(args[..2], ["login", "work"], "{command}");
    let out = browser_login(&t, &args, "work");
    assert_success(&out, "the advised login");
    assert_eq!(t.state("work"), "active");
    let stored = access_token_in(&dir);
    assert!(token_works(&t.server, &stored));
    assert_same_token(&t.token("work"), &stored, "the daemon's token");
    // Each also names Claude Code's own way back.
    let own = format!("CLAUDE_CONFIG_DIR='{}' claude, then /login", dir.display());
    assert!(text.contains(&own), "{text}");
    assert!(refusal.contains(&own), "{refusal}");
}

#[test]
fn an_inactive_claude_code_slot_comes_back_when_claude_code_logs_in_again() {
    let t = Running::start("");
    let dir = t.env.home().join(".claude-work");
    let first = claude_code_login(&t, &dir, "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    kill(&t, "work", &first);

    let second = claude_code_login(&t, &dir, "work");
    wait_for(
        "the slot to come back after a new login in its dir",
        NOTICE,
        || t.state("work") == "active",
    );
    let stored = access_token_in(&dir);
    assert_same_token(&t.token("work"), &stored, "the daemon's token");
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    assert_eq!(t.invalid_grants(), 1, "only the dead grant's refusal");

    // Another account logged in there: the slot stays inactive and says why.
    kill(&t, "work", &second);
    claude_code_login(&t, &dir, "someone");
    let before = fs::read(store_path(&dir)).unwrap();
    wait_for("status to name the other account", NOTICE, || {
        t.slot_status("work")["last_refresh_error"]
            .as_str()
            .is_some_and(|e| e.contains("someone@example.com") && e.contains("sessctl adopt"))
    });
    assert_eq!(t.state("work"), "inactive");
    assert_eq!(fs::read(store_path(&dir)).unwrap(), before);
}

/// A `/login` made while the daemon was stopped: the next daemon tells it from the login
/// that died (it kept a keyed fingerprint of the dead refresh token, never the token) and
/// makes the slot active again with it, presenting no dead grant's token.
#[test]
fn a_login_made_while_the_daemon_was_stopped_brings_the_slot_back_at_start() {
    let mut t = Running::start("");
    let dir = t.env.home().join(".claude-work");
    let first = claude_code_login(&t, &dir, "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    kill(&t, "work", &first);
    let dead = refresh_token_in(&dir);
    let state_path = t.env.state_dir().join("sessctl/state.json");
    // Saves go to the state file's log first (`state.json.log`): search both.
    wait_for("the dead login's fingerprint", NOTICE, || {
        crate::state_log::state_and_log(&t.env).contains("\"dead_logins\"")
    });

    // A restart over the same dead login leaves the slot inactive.
    t.daemon.terminate(Duration::from_secs(10));
    t.daemon = t.env.start_daemon();
    wait_for("the probe to see the dead login", NOTICE, || {
        t.daemon
            .log()
            .contains("Claude Code's store still holds the login that died")
    });
    assert_eq!(t.state("work"), "inactive");
    t.daemon.terminate(Duration::from_secs(10));

    claude_code_login(&t, &dir, "work");
    t.daemon = t.env.start_daemon();
    wait_for("the slot to come back at start", NOTICE, || {
        t.state("work") == "active"
    });
    let stored = access_token_in(&dir);
    assert_same_token(&t.token("work"), &stored, "the daemon's token");
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    assert_eq!(t.invalid_grants(), 1, "only the dead grant's refusal");
    assert!(
        !crate::state_log::state_and_log(&t.env).contains(&dead),
        "the state file or its log holds the dead token"
    );
    // A graceful stop folds the log into the file: the state as it stands keeps no
    // fingerprint once the slot is active again.
    t.daemon.terminate(Duration::from_secs(10));
    let state = fs::read_to_string(&state_path).unwrap();
    assert!(!state.contains("\"dead_logins\""), "{state}");
}

/// A login of a Claude Code slot that fails (here: a code the provider refuses) advises
/// running it again with `--claude-code DIR`, and that command, run as given, logs the slot
/// in again into its own dir.
#[test]
fn a_failed_login_of_a_claude_code_slot_advises_the_same_login_into_its_dir() {
    let t = crate::login_flows::start();
    let dir = claude_dir(&t, ".claude-work", "work");
    assert_success(&adopt(&t, "work", &dir), "adopt");
    let send = |request: serde_json::Value| {
        let mut line = serde_json::to_vec(&request).unwrap();
        line.push(b'\n');
        exchange(&t, &line)
    };
    let begun = send(
        json!({"v": 1, "type": "login_begin", "name": "work", "provider": "test",
                            "flow": {"kind": "manual"}, "timeout_secs": 60}),
    );
    let url = url::Url::parse(begun["ok"]["authorize_url"].as_str().unwrap()).unwrap();
    let state = (url.query_pairs())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let refused = send(json!({"v": 1, "type": "login_complete",
                              "flow_id": begun["ok"]["flow_id"], "code": "never-issued",
                              "state": state}));
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    let command = message
        .split("log in again: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no advice: {refused}"));
    assert_eq!(
        command,
        format!(
            "sessctl login work --provider test --claude-code {}",
            dir.display()
        )
    );

    let args: Vec<&str> = command.split(' ').skip(1).collect();
    assert_success(&browser_login(&t, &args, "work"), "the advised login");
    let stored = access_token_in(&dir);
    assert_same_token(&t.token("work"), &stored, "the daemon's token");
    assert_eq!(
        t.slot_status("work")["claude_code_dir"].as_str(),
        dir.to_str()
    );
}
