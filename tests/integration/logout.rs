//! Logout: revoke at the provider (RFC 7009), delete the keychain item and the slot.

use crate::flows::{Running, code_and_stderr};

#[test]
fn logout_revokes_at_the_server_and_deletes_the_slot() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    assert!(t.server.grant_exists(&grant.grant_id));
    assert!(t.env.secret_lookup("sessctl", "work").is_some());
    let out = t.env.sessctl(&["logout", "work"]);
    assert!(out.status.success(), "{:?}", code_and_stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));
    assert_eq!(t.server.stats().revocations, 1);
    assert!(
        !t.server.grant_exists(&grant.grant_id),
        "the grant outlived the logout"
    );
    assert!(t.env.secret_lookup("sessctl", "work").is_none());
    assert_eq!(t.env.status_json()["slots"], serde_json::json!([]));
    // Gone for good: a second logout and a token call name the unknown slot.
    assert_eq!(t.env.sessctl(&["logout", "work"]).status.code(), Some(1));
    assert_eq!(t.env.sessctl(&["token", "work"]).status.code(), Some(1));
}

#[test]
fn logging_in_again_replaces_the_slot_and_its_credentials() {
    let t = Running::start("");
    let first_grant = t.login("work", "alice");
    let first = t.token("work");
    let second_grant = t.login("work", "alice");
    let slot = t.slot_status("work");
    assert_eq!(slot["account"], "alice@example.com");
    assert_eq!(slot["state"], "active");
    assert_ne!(t.token("work"), first);
    assert_eq!(
        t.env.status_json()["slots"].as_array().map(Vec::len),
        Some(1)
    );
    crate::support::wait_for(
        "the replaced grant to be revoked",
        std::time::Duration::from_secs(20),
        || !t.server.grant_exists(&first_grant.grant_id),
    );
    assert!(t.server.grant_exists(&second_grant.grant_id));
}

#[test]
fn a_refresh_that_finishes_after_a_relogin_is_discarded_and_the_new_login_kept() {
    let t = Running::start("");
    let first = t.login("work", "alice");
    // The next token request (the refresh) is answered only after 3 s; the re-login's own
    // token request, which comes after it, is not delayed.
    let refresh = t.refresh_in_flight("work", 3000);
    let relogin = t.login("work", "alice");
    crate::support::wait_for(
        "the late refresh result to be dropped",
        std::time::Duration::from_secs(20),
        || {
            t.daemon
                .log()
                .contains("dropping a refresh result of an older login")
        },
    );
    assert!(refresh.join().unwrap().status.success());
    // The newer login won everywhere: status, the keychain, the token handed out; the
    // late refresh's rotated token (the old login's grant) is revoked, not orphaned.
    let slot = t.slot_status("work");
    assert_eq!(slot["account"], "alice@example.com");
    let token = t.token("work");
    let me = t.server.get_with_bearer("/me", &token);
    assert_eq!(me.field("email"), "alice@example.com");
    crate::support::wait_for(
        "the old login's grant to be revoked",
        std::time::Duration::from_secs(20),
        || !t.server.grant_exists(&first.grant_id),
    );
    assert!(t.server.grant_exists(&relogin.grant_id));
    let stored: serde_json::Value =
        serde_json::from_str(&t.env.secret_lookup("sessctl", "work").unwrap()).unwrap();
    assert_eq!(stored["access_token"], token.as_str());
    assert_eq!(t.invalid_grants(), 0);
}

#[test]
fn a_logout_during_a_refresh_revokes_the_rotated_token() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    let refresh = t.refresh_in_flight("work", 2000);
    // The logout waits for the refresh (which rotates the token), then revokes the new one.
    let out = t.env.sessctl(&["logout", "work"]);
    assert!(out.status.success(), "{:?}", code_and_stderr(&out));
    assert!(refresh.join().unwrap().status.success());
    assert!(
        !t.server.grant_exists(&grant.grant_id),
        "the rotated token outlived the logout"
    );
    assert!(t.env.secret_lookup("sessctl", "work").is_none());
    assert_eq!(t.invalid_grants(), 0);
}
