//! The write-ahead journal against `kill -9`: once a rotated reply is journaled (one fsync),
//! a crash before the keychain write costs nothing; the next daemon stores the journaled
//! tokens before it loads any credential. The keychain is frozen (SIGSTOP, a real fault of
//! the real component) so the kill lands exactly between journal and keychain.

use std::time::Duration;

use crate::flows::{Running, assert_success, token_works};
use crate::support::wait_for;

const SLOTS: [&str; 3] = ["one", "two", "three"];

#[test]
fn kill_9_after_the_replies_arrive_but_before_the_keychain_write_loses_no_grant() {
    let mut t = Running::start("");
    let grants: Vec<_> = SLOTS
        .iter()
        .map(|slot| t.login(slot, &format!("acct-{slot}")))
        .collect();
    t.server.hold_replies("token", true);
    let refresh = t.env.sessctl_background(&["refresh", "--all"], &[]);
    wait_for(
        "every refresh to be rotated at the server, its reply held",
        Duration::from_secs(20),
        || t.server.stats().holding_replies("token") == SLOTS.len() as u64,
    );
    t.env.session_bus().pause_keyring();
    t.server.hold_replies("token", false);
    // The replies have reached the daemon and it has made them durable; the keychain
    // write after that hangs on the frozen keychain. (Without a journal this never
    // happens: the test then fails here, as it should.)
    wait_for(
        "the daemon to journal every rotated reply",
        Duration::from_secs(20),
        || t.daemon.log().matches("rotated tokens journaled").count() == SLOTS.len(),
    );
    t.daemon.kill9();
    drop(refresh);
    t.env.session_bus().resume_keyring();

    t.daemon = t.env.start_daemon();
    let out = t.env.sessctl(&["refresh", "--all"]);
    assert_eq!(
        t.invalid_grants(),
        0,
        "the new daemon presented a consumed refresh token"
    );
    assert_success(&out, "refresh --all after the crash");
    for (slot, grant) in SLOTS.iter().zip(&grants) {
        assert!(t.server.grant_exists(&grant.grant_id), "{slot}: grant gone");
        assert!(
            token_works(&t.server, &t.token(slot)),
            "{slot}: token refused"
        );
    }
}
