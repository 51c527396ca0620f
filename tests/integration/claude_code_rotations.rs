//! Hundreds of rotations: the real daemon and Claude Code stand-ins of both lock
//! generations (`tests/claude-code/cc_standin.cjs`, 2.1.197 and 2.1.218+) share several
//! config dirs in the test's temp HOME, against the real test OAuth server with strict
//! rotation (a refresh token presented twice revokes its grant).
//!
//! Scaled-down time, so that hundreds of rotations fit in about a minute:
//! - access tokens live [`TTL_SECS`] seconds (the server's ttl admin endpoint), not 8 hours;
//! - Claude Code refreshes when fewer than 5 minutes remain; the stand-ins' threshold is
//!   scaled to half the short lifetime instead (±3 s, drawn per token);
//! - the daemon refreshes a Claude Code slot `max(refresh_before_expiry, 15 min)` before
//!   expiry but at most half the token's lifetime (as it last read it) before: also at half,
//!   with no config change. It never sends two token requests for a slot within 10 s
//!   (`pacing::MIN_REQUEST_INTERVAL`), which is why the lifetime is 20 s and not shorter:
//!   with a shorter one the stand-ins would rotate every time before the daemon's turn came;
//! - hundreds of rotations then come from many lineages at once: [`LINEAGES`] config dirs,
//!   each adopted as a slot and served by one 2.1.197 and one 2.1.218+ stand-in (one node
//!   process per generation, one independent loop per dir).
//!
//! So for every rotation the daemon and the two generations race, each going first some of
//! the time, and the locks decide. `SESSCTL_CC_ROTATION_SECS` runs it longer (default 60 s).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::claude_code_standins::adopted;
use crate::flows::{Running, token_works};
use crate::support::claude_code::script;
use crate::support::oauth_server::CLIENT_ID;

/// Access token lifetime for this test: a rotation about every 10 s per lineage.
const TTL_SECS: u64 = 20;

/// Config dirs (refresh-token lineages), each shared by the daemon and two stand-ins.
const LINEAGES: usize = 40;

/// Rotations required per 10 s of run, over all lineages: 200 a minute, where the lineages
/// rotate about 4 times a second between them.
const ROTATIONS_PER_10_SECS: u64 = 33;

/// Slots whose daemon token is checked per round of the sampling loop.
const CHECKS_PER_ROUND: usize = 8;

/// One stand-in process of `version` over all `dirs`.
fn start_standin(t: &Running, dirs: &[&Path], version: &str, secs: u64) -> Child {
    let base = t.server.base_url();
    let dirs: Vec<&str> = dirs.iter().map(|dir| dir.to_str().unwrap()).collect();
    Command::new("node")
        .arg(script("cc_standin.cjs"))
        .args([
            &dirs.join(":"),
            &format!("{base}/token"),
            &format!("{base}/me"),
            CLIENT_ID,
            &(TTL_SECS * 1000 / 2).to_string(),
            &(secs * 1000).to_string(),
            "3000",
            version,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start node")
}

#[test]
fn the_daemon_and_old_and_new_claude_codes_share_stores_through_hundreds_of_rotations() {
    let t = Running::start("");
    t.server.set_access_token_ttl(TTL_SECS);
    let secs: u64 = std::env::var("SESSCTL_CC_ROTATION_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let lineages: Vec<_> = (0..LINEAGES)
        .map(|n| (format!("cc{n}"), adopted(&t, &format!("cc{n}"))))
        .collect();
    let logins = t.server.stats().grant_type("refresh_token");
    let dirs: Vec<&Path> = lineages.iter().map(|(_, (dir, _))| dir.as_path()).collect();
    let mut standins: Vec<(&str, Child)> = ["old", "new"]
        .map(|version| (version, start_standin(&t, &dirs, version, secs)))
        .into();
    // Sampled while the stand-ins run: each slot's token from the daemon must work. A few
    // slots a round, in turn (every slot about every second): a `sessctl token` for all 40
    // each round kept a core busy and starved the tests running beside this one.
    let mut checks = 0;
    let mut turn = lineages.iter().cycle();
    while standins
        .iter_mut()
        .any(|(_, c)| c.try_wait().unwrap().is_none())
    {
        for (slot, _) in turn.by_ref().take(CHECKS_PER_ROUND) {
            let token = t.token(slot);
            assert!(
                token_works(&t.server, &token),
                "{slot}: the daemon's token did not work"
            );
            checks += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut sent_by_standins = 0;
    let mut by_version: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, child) in standins {
        let out = child.wait_with_output().unwrap();
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "stand-in {name}: {summary}");
        let stats: Value = serde_json::from_str(summary.trim()).unwrap();
        assert_eq!(stats["invalid_grants"], 0, "{name}: {stats}");
        assert_eq!(stats["bad_tokens"], 0, "{name}: {stats}");
        let sent = stats["refreshes"].as_u64().unwrap();
        sent_by_standins += sent;
        by_version.insert(name, sent);
        eprintln!("stand-in {name}: {stats}");
    }
    let stats = t.server.stats();
    let rotations = stats.grant_type("refresh_token") - logins;
    let sent_by_daemon = rotations - sent_by_standins;
    eprintln!(
        "{rotations} rotations in {secs} s: daemon {sent_by_daemon}, stand-ins {by_version:?}; \
         {checks} checks of the daemon's tokens"
    );
    assert_eq!(stats.errors("invalid_grant"), 0, "{}", t.daemon.log());
    assert!(
        rotations >= secs * ROTATIONS_PER_10_SECS / 10,
        "only {rotations} rotations in {secs} s"
    );
    assert!(
        sent_by_daemon > 0 && by_version.values().all(|&sent| sent > 0),
        "someone never went first: daemon {sent_by_daemon}, stand-ins {by_version:?}"
    );
    for (slot, (_, grant_id)) in &lineages {
        // Reuse would have revoked the grant.
        assert!(t.server.grant_exists(grant_id), "{slot}: grant revoked");
        assert_eq!(t.state(slot), "active", "{slot}");
    }
}
