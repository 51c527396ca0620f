//! Shared helpers for the integration tests: a private environment per test ([`TestEnv`]: temp
//! dirs, a D-Bus session bus and an unlocked gnome-keyring), the real OAuth server
//! ([`OAuthServer`]), sessctl process helpers ([`Daemon`]) and [`wait_for`].
//!
//! Everything started here is killed in `Drop`; tests wait for conditions, never fixed sleeps.

// Each test module uses a subset of these helpers; the rest serve the tests still to be written.
#![allow(dead_code, unused_imports)]

pub mod claude_code;
pub mod env;
pub mod oauth_server;
pub mod process;
pub mod sessctl;
pub mod session_bus;
pub mod user_agent;

pub use env::TestEnv;
pub use oauth_server::{Grant, OAuthServer, Stats, TokenReply};
pub use sessctl::{Background, Daemon};
pub use user_agent::UserAgent;

use std::time::{Duration, Instant};

/// A blocking HTTP client builder for the tests' own requests (the test server's admin API,
/// a browser's visits). reqwest takes its TLS crypto from the process-wide provider, so this
/// installs sessctl's first (`::sessctl::oauth::tls`).
pub fn http_builder() -> reqwest::blocking::ClientBuilder {
    ::sessctl::oauth::tls::install_provider();
    reqwest::blocking::Client::builder()
}

/// A blocking HTTP client with reqwest's defaults, built by [`http_builder`].
pub fn http_client() -> reqwest::blocking::Client {
    http_builder().build().expect("an HTTP client builds")
}

/// How often [`wait_for`] checks its condition: fast enough that tests stay quick, slow enough
/// that a condition which spawns a process (`sessctl ping`) does not hog the 2 CI cores.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Polls `condition` every ~25 ms until it returns true; panics naming `what` once `deadline`
/// (a duration from now) has passed. The standard way for a test to await a condition.
pub fn wait_for(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    loop {
        if condition() {
            return;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}
