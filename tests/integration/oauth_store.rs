//! The test OAuth server itself at scale: its storage must keep every live grant however many
//! accounts a test logs in. node-oidc-provider's default in-memory adapter is an LRU of 1,000
//! entries (about three per grant, more per refresh), which silently forgot live grants beyond
//! ~330 accounts; `tests/oauth-server/store_adapter.mjs` forgets only what has expired.

use crate::support::OAuthServer;

/// More accounts than the old 1,000-entry LRU could hold live through one refresh each.
const GRANTS: usize = 400;

#[test]
fn four_hundred_grants_all_stay_live_through_a_refresh_each() {
    let server = OAuthServer::start();
    let grants: Vec<_> = (0..GRANTS)
        .map(|i| server.grant(&format!("acct{i:03}"), &format!("acct{i:03}@example.com")))
        .collect();
    let mut refresh_tokens = Vec::with_capacity(GRANTS);
    for (i, grant) in grants.iter().enumerate() {
        let reply = server.refresh(&grant.refresh_token);
        assert_eq!(reply.status, 200, "refresh of grant {i}: {:?}", reply.body);
        refresh_tokens.push(reply.field("refresh_token").to_owned());
    }
    let forgotten: Vec<usize> = (0..GRANTS)
        .filter(|&i| !server.grant_exists(&grants[i].grant_id))
        .collect();
    assert!(
        forgotten.is_empty(),
        "the server forgot {} of {GRANTS} live grants, first {:?}",
        forgotten.len(),
        forgotten.first()
    );
    for (i, token) in refresh_tokens.iter().enumerate() {
        let reply = server.refresh(token);
        assert_eq!(
            reply.status, 200,
            "second refresh of grant {i}: {:?}",
            reply.body
        );
    }
}
