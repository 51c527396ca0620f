//! `logout NAME` wins over a pending login of NAME: the real `sessctl login` (browser and
//! device flows against the real server's pages) is cancelled, told so, and no slot or live
//! grant comes out of it, even when its code exchange was already in flight.

use std::process::Output;

use crate::flows::{Running, code_and_stderr};
use crate::login_flows::{LOGIN_DEADLINE, device_login, login_in_background, start, visit};
use crate::support::{UserAgent, wait_for};

/// The message a cancelled login's CLI ends with.
const CANCELLED: &str = "was cancelled by `sessctl logout work`";

/// `sessctl logout work` succeeded and says it cancelled one pending login.
fn logout_cancelling_one(run: &Running) {
    let out = run.env.sessctl(&["logout", "work"]);
    assert!(out.status.success(), "{:?}", code_and_stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cancelled 1 pending login"), "{stdout}");
}

/// The login CLI failed, saying a logout cancelled it.
fn assert_cancelled(out: &Output) {
    let (code, stderr) = code_and_stderr(out);
    assert_ne!(code, Some(0), "the cancelled login succeeded: {stderr}");
    assert!(stderr.contains(CANCELLED), "{stderr}");
}

/// No slot, no keychain item, and no refresh token the server issued still works (checked
/// newest first: each grant here has one refresh token, none was ever rotated).
fn assert_nothing_left(run: &Running) {
    let status = run.env.status_json();
    assert_eq!(status["slots"], serde_json::json!([]), "{status}");
    assert!(run.env.secret_lookup("sessctl", "work").is_none());
    for token in run.server.issued_tokens().iter().rev() {
        let reply = run.server.refresh(token);
        assert_ne!(reply.status, 200, "a grant of the cancelled login is alive");
    }
}

#[test]
fn logout_during_a_pending_browser_login_cancels_it_and_its_code_is_never_exchanged() {
    let run = start();
    run.server.add_account("alice", "alice@example.com");
    let (login, url) = login_in_background(&run, &["login", "work", "--provider", "test"]);
    logout_cancelling_one(&run);
    assert_cancelled(&login.wait(LOGIN_DEADLINE));
    // The user finishes in the browser afterwards: nobody takes the code.
    let redirect = UserAgent::new(run.server.base_url()).authorize(&url, "alice");
    assert!(redirect.contains("/callback?"), "{redirect}");
    assert!(
        reqwest::blocking::get(&redirect).is_err(),
        "the login's port is closed"
    );
    assert_eq!(run.server.stats().grant_type("authorization_code"), 0);
    assert_nothing_left(&run);
}

#[test]
fn logout_while_a_browser_code_is_being_exchanged_revokes_its_grant_and_makes_no_slot() {
    let run = start();
    run.server.add_account("alice", "alice@example.com");
    let (login, url) = login_in_background(&run, &["login", "work", "--provider", "test"]);
    let redirect = UserAgent::new(run.server.base_url()).authorize(&url, "alice");
    run.server.hold("token", true);
    let browser = std::thread::spawn(move || visit(&redirect));
    wait_for("the code exchange to be held", LOGIN_DEADLINE, || {
        run.server.stats().holding("token") == 1
    });
    logout_cancelling_one(&run);
    run.server.hold("token", false);
    assert_cancelled(&login.wait(LOGIN_DEADLINE));
    let (status, page) = browser.join().expect("browser thread");
    assert_eq!(status, 400, "{page}");
    assert_eq!(run.server.stats().grant_type("authorization_code"), 1);
    wait_for("the exchanged grant to be revoked", LOGIN_DEADLINE, || {
        run.server.stats().revocations == 1
    });
    assert_nothing_left(&run);
}

#[test]
fn logout_during_a_pending_device_login_stops_it_and_an_approval_afterwards_makes_no_slot() {
    let run = start();
    run.server.add_account("carol", "carol@example.com");
    // The slot exists: the logout ends it, and the device login must not bring it back.
    let existing = run.login("work", "carol");
    let (login, complete) = device_login(&run, "work");
    logout_cancelling_one(&run);
    assert!(!run.server.grant_exists(&existing.grant_id));
    assert_cancelled(&login.wait(LOGIN_DEADLINE));
    wait_for("the daemon to stop polling", LOGIN_DEADLINE, || {
        run.daemon
            .log()
            .contains("device login cancelled; polling stopped")
    });
    // Polling has stopped: an approval now is never collected.
    UserAgent::new(run.server.base_url()).device(&complete, "carol", true);
    assert_nothing_left(&run);
}

#[test]
fn logout_during_a_pasted_code_login_ends_it_before_anything_is_pasted() {
    let run = start();
    run.server.add_account("alice", "alice@example.com");
    let (login, _url) =
        login_in_background(&run, &["login", "work", "--provider", "test", "--manual"]);
    logout_cancelling_one(&run);
    // Still waiting for a paste (stdin open): the CLI itself notices the cancellation.
    wait_for("the login to say it was cancelled", LOGIN_DEADLINE, || {
        login.stderr().contains(CANCELLED)
    });
    assert_cancelled(&login.wait(LOGIN_DEADLINE));
    assert_eq!(run.server.stats().grant_type("authorization_code"), 0);
    assert_nothing_left(&run);
}
