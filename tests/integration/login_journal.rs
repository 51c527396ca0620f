//! A login is answered once its tokens are in the write-ahead journal (fsynced) and its slot
//! in the state file, not once the keychain has them: the keychain write follows. The
//! keychain is frozen (SIGSTOP, a real fault of the real component) so the answer and a
//! `kill -9` land before the keychain write; the next daemon replays the journal.

use std::time::Duration;

use crate::flows::{Running, assert_success, code_and_stderr, token_works};
use crate::support::wait_for;

/// Long enough for anything but a daemon that waits on the frozen keychain forever.
const DEADLINE: Duration = Duration::from_secs(30);

/// A re-login answered while the keychain is frozen, then `kill -9` before the keychain
/// write: the next daemon stores the journaled tokens, the slot refreshes with no reuse,
/// the new grant lives and the replaced one was revoked (once the new tokens were
/// journaled). Before the journal answered logins, the login waited for the store and was
/// told its tokens were held in memory only; the `kill -9` then lost them.
#[test]
fn a_login_answered_while_the_keychain_is_frozen_survives_kill_9() {
    let mut t = Running::start("");
    let replaced = t.login("work", "alice");
    let grant = t.server.grant("alice", "alice@example.com");
    t.env.session_bus().pause_keyring();
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
    let out = login.wait(DEADLINE);
    assert_success(&out, "login with the keychain frozen");
    let (_, stderr) = code_and_stderr(&out);
    assert!(
        !stderr.contains("could not be stored yet"),
        "the login was not answered from the journal: {stderr}"
    );
    wait_for("the replaced grant to be revoked", DEADLINE, || {
        !t.server.grant_exists(&replaced.grant_id)
    });
    t.daemon.kill9();
    t.env.session_bus().resume_keyring();

    t.daemon = t.env.start_daemon();
    let refresh = t.env.sessctl(&["refresh", "work"]);
    assert_eq!(
        t.invalid_grants(),
        0,
        "the new daemon presented a consumed refresh token"
    );
    assert_success(&refresh, "refresh after the crash");
    assert!(
        t.server.grant_exists(&grant.grant_id),
        "the new grant is gone"
    );
    assert!(token_works(&t.server, &t.token("work")));
    assert_eq!(t.slot_status("work")["account"], "alice@example.com");
}

/// A new slot's login, answered with the keychain frozen, is served from memory at once
/// (`token`) and reaches the keychain once it runs again: the slot is active and the item
/// holds the tokens `token` hands out.
#[test]
fn a_login_answered_from_the_journal_reaches_the_keychain_once_it_answers() {
    let t = Running::start("");
    let grant = t.server.grant("bob", "bob@example.com");
    t.env.session_bus().pause_keyring();
    let out = t.env.sessctl_stdin(
        &[
            "login",
            "home",
            "--provider",
            "test",
            "--refresh-token-stdin",
        ],
        &grant.refresh_token,
    );
    assert_success(&out, "login with the keychain frozen");
    let token = t.token("home");
    assert!(token_works(&t.server, &token));
    t.env.session_bus().resume_keyring();
    wait_for("the login to be stored", Duration::from_secs(60), || {
        t.env
            .secret_lookup("sessctl", "home")
            .is_some_and(|item| item.contains(&token))
            && t.state("home") == "active"
    });
    assert_eq!(t.invalid_grants(), 0);
}
