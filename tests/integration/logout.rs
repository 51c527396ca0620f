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
    t.login("work", "alice");
    let first = t.token("work");
    t.login("work", "bob");
    let slot = t.slot_status("work");
    assert_eq!(slot["account"], "bob@example.com");
    assert_eq!(slot["state"], "active");
    assert_ne!(t.token("work"), first);
    assert_eq!(
        t.env.status_json()["slots"].as_array().map(Vec::len),
        Some(1)
    );
}
