//! Every request to the provider's token and revocation endpoints takes its turn under the
//! one cap (`max_token_requests`), by urgency: an interactive login's code exchange goes
//! ahead of refreshes already queued (a restart with every token expired), and a logout's
//! revocation waits for a free permit like any other request. Against the real test server
//! (its holds keep requests in flight; its stats count them) and the real keychain.

use std::time::Duration;

use crate::flows::{Running, assert_success, config_yaml};
use crate::login_flows::{LOGIN_DEADLINE, flow_keys, login_in_background, visit};
use crate::request_limit::expired_slots_behind_a_hold;
use crate::support::{OAuthServer, TestEnv, UserAgent, wait_for};

/// How often the daemon has logged a token-endpoint request waiting for its turn.
fn queued(t: &Running) -> usize {
    t.daemon
        .log()
        .matches("token request queued for its turn")
        .count()
}

/// A daemon allowing one token request at a time, whose provider offers the browser flow.
fn start_with_one_permit() -> Running {
    let env = TestEnv::new();
    let server = OAuthServer::start();
    env.write_config(&config_yaml(
        &server,
        "max_token_requests: 1",
        &flow_keys(server.base_url()),
    ));
    let daemon = env.start_daemon();
    Running {
        server,
        daemon,
        env,
    }
}

#[test]
fn a_browser_login_code_exchange_goes_ahead_of_queued_refreshes_and_under_the_cap() {
    const SLOTS: usize = 3;
    let mut t = start_with_one_permit();
    let names = expired_slots_behind_a_hold(&mut t, SLOTS, 3);
    t.daemon = t.env.start_daemon();
    wait_for("one refresh at the server", Duration::from_secs(30), || {
        t.server.stats().holding("token") == 1
    });
    wait_for(
        "the other refreshes queued for their turn",
        Duration::from_secs(30),
        || queued(&t) >= SLOTS - 1,
    );

    t.server.add_account("alice", "alice@example.com");
    let (login, url) = login_in_background(&t, &["login", "work", "--provider", "test"]);
    let redirect = UserAgent::new(t.server.base_url()).authorize(&url, "alice");
    // The loopback page answers once the login is done: visited from a thread.
    let visiting = std::thread::spawn(move || visit(&redirect));
    wait_for(
        "the code exchange queued, or at the server past the cap",
        Duration::from_secs(30),
        || queued(&t) >= SLOTS || t.server.stats().holding("token") > 1,
    );
    assert_eq!(
        t.server.stats().holding("token"),
        1,
        "the code exchange went to the server past the cap of 1"
    );

    // The held refresh ends: the permit goes to the code exchange, not to a refresh
    // queued before it.
    assert!(t.server.release_one("token", false));
    wait_for(
        "the next token request at the server",
        Duration::from_secs(30),
        || {
            let stats = t.server.stats();
            stats.token_requests == 2 && stats.holding("token") == 1
        },
    );
    let arrived = t.server.stats();
    assert_eq!(
        arrived.grant_type("authorization_code"),
        1,
        "the code exchange was not next"
    );
    assert_eq!(
        arrived.grant_type("refresh_token"),
        1,
        "a queued refresh went first"
    );

    t.server.hold("token", false);
    assert_success(&login.wait(LOGIN_DEADLINE), "login");
    let (status, page) = visiting.join().expect("visit the redirect");
    assert_eq!(status, 200, "{page}");
    wait_for("every slot active", Duration::from_secs(60), || {
        names.iter().all(|name| t.state(name) == "active")
    });
    let end = t.server.stats();
    assert_eq!(end.in_flight_max.get("token").copied().unwrap_or(0), 1);
    assert_eq!(t.invalid_grants(), 0, "a refresh token was reused");
    assert_eq!(t.state("work"), "active");
}

#[test]
fn a_logout_revocation_waits_for_the_token_permit_a_refresh_holds() {
    let t = start_with_one_permit();
    t.login("a", "acct-a");
    t.login("b", "acct-b");
    t.server.hold("token", true);
    t.server.reset_stats();
    let refresh = t.env.sessctl_background(&["refresh", "a"], &[]);
    wait_for("the refresh at the server", Duration::from_secs(30), || {
        t.server.stats().holding("token") == 1
    });
    let before = queued(&t);
    let logout = t.env.sessctl_background(&["logout", "b"], &[]);
    wait_for(
        "the logout's revocation queued, or sent past the cap",
        Duration::from_secs(30),
        || queued(&t) > before || t.server.stats().revocations > 0,
    );
    assert_eq!(
        t.server.stats().revocations,
        0,
        "the revocation went out while the one token permit was held"
    );
    t.server.hold("token", false);
    assert_success(&refresh.wait(LOGIN_DEADLINE), "refresh");
    assert_success(&logout.wait(LOGIN_DEADLINE), "logout");
    assert_eq!(t.server.stats().revocations, 1);
    assert_eq!(t.state("a"), "active");
}
