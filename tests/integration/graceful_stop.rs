//! A graceful stop (SIGTERM, as `systemctl --user stop/restart` sends, or `sessctl shutdown`)
//! while refreshes are in flight: the server has already rotated each refresh token, so the
//! daemon must wait for the replies and store them before it exits, or the next daemon
//! presents the consumed tokens and the server revokes every grant (reuse detection).

use std::time::Duration;

use crate::flows::{Running, assert_success, code_and_stderr, config_yaml, token_works};
use crate::support::{Grant, OAuthServer, TestEnv, wait_for};

/// Slots refreshing at once when the stop comes.
const SLOTS: [&str; 3] = ["one", "two", "three"];
/// What the daemon logs while it waits for requests already sent.
const DRAINING: &str = "stopping: waiting for";

/// SIGTERM while a token reply is held at the server: once the daemon says what it waits
/// for (or has exited), the reply goes out; the daemon must then exit cleanly.
fn sigterm_then_release_the_held_replies(t: &mut Running) {
    t.daemon.signal(libc::SIGTERM);
    wait_for(
        "the daemon to exit or to say what it waits for",
        Duration::from_secs(20),
        || !t.daemon.is_running() || t.daemon.log().contains(DRAINING),
    );
    t.server.hold_replies("token", false);
    let exit = t.daemon.wait_exit(Duration::from_secs(60));
    assert!(exit.success(), "the daemon exited with {exit}");
}

/// Logs every slot in (one account each) and returns their grants.
fn log_in_all(t: &Running) -> Vec<Grant> {
    SLOTS
        .iter()
        .map(|slot| t.login(slot, &format!("acct-{slot}")))
        .collect()
}

/// Holds the server's refresh replies after it has rotated, starts `refresh --all`, stops
/// the daemon with `stop`, checks it accepts nothing new meanwhile, releases the replies,
/// and checks a new daemon finds every grant alive and every slot working.
fn stop_while_rotated_replies_are_held(stop: impl FnOnce(&mut Running)) {
    let mut t = Running::start("");
    let grants = log_in_all(&t);
    t.server.hold_replies("token", true);
    let refresh = t.env.sessctl_background(&["refresh", "--all"], &[]);
    wait_for(
        "every refresh to be rotated at the server, its reply held",
        Duration::from_secs(20),
        || t.server.stats().holding_replies("token") == SLOTS.len() as u64,
    );
    let sent = t.token_requests();
    stop(&mut t);
    wait_for(
        "the daemon to exit or to say what it waits for",
        Duration::from_secs(20),
        || !t.daemon.is_running() || t.daemon.log().contains(DRAINING),
    );
    let waited = t.daemon.is_running();
    if waited {
        // Stopping: new work is refused with a clear word, and nothing new is sent.
        let out = t.env.sessctl(&["token", "one"]);
        let (code, stderr) = code_and_stderr(&out);
        assert_ne!(code, Some(0), "{stderr}");
        assert!(stderr.contains("shutting down"), "{stderr}");
        assert_eq!(
            t.token_requests(),
            sent,
            "a request was sent while stopping"
        );
    }
    t.server.hold_replies("token", false);
    let exit = t.daemon.wait_exit(Duration::from_secs(60));
    assert!(exit.success(), "the daemon exited with {exit}");
    let _ = refresh.wait(Duration::from_secs(10));

    t.daemon = t.env.start_daemon();
    let out = t.env.sessctl(&["refresh", "--all"]);
    assert_eq!(
        t.invalid_grants(),
        0,
        "the new daemon presented a consumed refresh token: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_success(&out, "refresh --all after the restart");
    for (slot, grant) in SLOTS.iter().zip(&grants) {
        assert!(t.server.grant_exists(&grant.grant_id), "{slot}: grant gone");
        assert!(
            token_works(&t.server, &t.token(slot)),
            "{slot}: token refused"
        );
    }
    assert!(
        waited,
        "the daemon exited without waiting for its token requests"
    );
}

#[test]
fn sigterm_during_refreshes_stores_every_rotated_token_before_exiting() {
    stop_while_rotated_replies_are_held(|t| t.daemon.signal(libc::SIGTERM));
}

#[test]
fn shutdown_during_refreshes_stores_every_rotated_token_before_exiting() {
    stop_while_rotated_replies_are_held(|t| {
        assert_success(&t.env.sessctl(&["shutdown"]), "shutdown");
    });
}

/// A slot refreshed while the keychain is away: its newest tokens exist only in memory
/// (and, with `journal`, in the write-ahead journal; without, the journal key item is made
/// unusable before the daemon starts, so it runs without one).
fn refreshed_with_keychain_down(journal: bool) -> Running {
    let env = TestEnv::new();
    let server = OAuthServer::start();
    env.write_config(&config_yaml(&server, "", ""));
    if !journal {
        env.secret_store("sessctl", ".journal-key", "not a key");
    }
    let daemon = env.start_daemon();
    let mut t = Running {
        server,
        daemon,
        env,
    };
    t.login("work", "alice");
    t.env.session_bus_mut().stop_keyring();
    assert_success(&t.env.sessctl(&["refresh", "work"]), "refresh");
    assert_eq!(
        t.slot_status("work")["reason"],
        "credential_store_unavailable"
    );
    t
}

/// What the daemon logs, once per slot, about tokens that die with it.
const LOST: &str = "exiting while this slot's newest tokens exist only in memory";

#[test]
fn a_stop_holding_unsaved_tokens_retries_the_keychain_and_stores_them() {
    let mut t = refreshed_with_keychain_down(true);
    t.daemon.signal(libc::SIGTERM);
    wait_for(
        "the daemon to exit or to wait for the keychain",
        Duration::from_secs(20),
        || !t.daemon.is_running() || t.daemon.log().contains("the credential store to take"),
    );
    let waited = t.daemon.is_running();
    t.env.session_bus_mut().restart_keyring();
    let exit = t.daemon.wait_exit(Duration::from_secs(60));
    assert!(exit.success(), "the daemon exited with {exit}");
    assert!(!t.daemon.log().contains(LOST), "{}", t.daemon.log());

    t.daemon = t.env.start_daemon();
    let out = t.env.sessctl(&["refresh", "work"]);
    assert_eq!(
        t.invalid_grants(),
        0,
        "the new daemon presented a consumed token"
    );
    assert_success(&out, "refresh after the restart");
    assert!(token_works(&t.server, &t.token("work")));
    assert!(waited, "the daemon exited without retrying the keychain");
}

#[test]
fn a_stop_that_cannot_store_tokens_says_once_per_slot_that_they_are_lost() {
    let mut t = refreshed_with_keychain_down(false);
    t.daemon.signal(libc::SIGTERM);
    let exit = t.daemon.wait_exit(Duration::from_secs(60));
    assert!(exit.success(), "the daemon exited with {exit}");
    let log = t.daemon.log();
    let said: Vec<&str> = log.lines().filter(|line| line.contains(LOST)).collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(said[0].contains("ERROR"), "{}", said[0]);
    assert!(said[0].contains("slot=\"work\""), "{}", said[0]);
    assert!(said[0].contains("sessctl login work"), "{}", said[0]);
}

#[test]
fn a_stop_with_the_keychain_gone_leaves_the_tokens_in_the_journal_for_the_next_start() {
    let mut t = refreshed_with_keychain_down(true);
    t.daemon.signal(libc::SIGTERM);
    let exit = t.daemon.wait_exit(Duration::from_secs(60));
    assert!(exit.success(), "the daemon exited with {exit}");
    assert!(!t.daemon.log().contains(LOST), "{}", t.daemon.log());
    assert!(
        t.daemon
            .log()
            .contains("they are in the write-ahead journal")
    );

    t.env.session_bus_mut().restart_keyring();
    t.daemon = t.env.start_daemon();
    assert!(
        t.daemon
            .log()
            .contains("journal: stored tokens the previous daemon received")
    );
    let out = t.env.sessctl(&["refresh", "work"]);
    assert_eq!(
        t.invalid_grants(),
        0,
        "the new daemon presented a consumed token"
    );
    assert_success(&out, "refresh after the restart");
    assert!(token_works(&t.server, &t.token("work")));
}

#[test]
fn sigterm_during_a_login_finishes_and_keeps_the_new_slot() {
    let mut t = Running::start("");
    let grant = t.server.grant("alice", "alice@example.com");
    t.server.hold_replies("token", true);
    let mut login = t.env.sessctl_background(
        &[
            "login",
            "work",
            "--provider",
            "test",
            "--refresh-token-stdin",
        ],
        &[],
    );
    login.write_stdin(&grant.refresh_token);
    login.close_stdin();
    wait_for(
        "the login's redemption to be rotated at the server, its reply held",
        Duration::from_secs(20),
        || t.server.stats().holding_replies("token") == 1,
    );
    sigterm_then_release_the_held_replies(&mut t);
    let out = login.wait(Duration::from_secs(10));
    assert_success(&out, "the login in flight at the stop");

    t.daemon = t.env.start_daemon();
    assert_eq!(t.state("work"), "active");
    assert_success(
        &t.env.sessctl(&["refresh", "work"]),
        "refresh after the restart",
    );
    assert_eq!(t.invalid_grants(), 0);
    assert!(token_works(&t.server, &t.token("work")));
    assert!(t.server.grant_exists(&grant.grant_id));
}

#[test]
fn sigterm_during_a_device_poll_that_got_the_tokens_keeps_the_new_slot() {
    let mut t = crate::login_flows::start();
    t.server.add_account("carol", "carol@example.com");
    // The next poll waits before the provider while the user approves; then it goes on to
    // the provider (which issues the tokens) and its reply is held.
    t.server.hold("token", true);
    let (_login, complete) = crate::login_flows::device_login(&t, "tv");
    wait_for("a poll to be waiting", Duration::from_secs(20), || {
        t.server.stats().holding("token") == 1
    });
    crate::support::UserAgent::new(t.server.base_url()).device(&complete, "carol", true);
    t.server.hold_replies("token", true);
    t.server.hold("token", false);
    wait_for(
        "the approved poll's reply to be held",
        Duration::from_secs(20),
        || t.server.stats().holding_replies("token") == 1,
    );
    sigterm_then_release_the_held_replies(&mut t);

    t.daemon = t.env.start_daemon();
    assert_eq!(t.state("tv"), "active");
    assert_success(
        &t.env.sessctl(&["refresh", "tv"]),
        "refresh after the restart",
    );
    assert!(token_works(&t.server, &t.token("tv")));
}
