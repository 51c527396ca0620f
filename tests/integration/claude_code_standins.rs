//! Claude Code stand-ins of both lock generations beside the real daemon, the real test
//! OAuth server and gnome-keyring, over config dirs in the test's temp HOME:
//! - `tests/claude-code/lock_peer.cjs` holds Claude Code's refresh locks with the real
//!   `proper-lockfile` (2.1.218+: both locks and the owner record; 2.1.197: the legacy lock
//!   alone, 10 s rule), and is killed with SIGKILL to leave a crashed holder behind;
//! - `tests/claude-code/cc_standin.cjs` runs Claude Code's refresh algorithm (module header
//!   there) in either generation.
//!
//! Where a test needs "a minute has passed" (the 60 s stale rule), it moves the lock's mtime
//! back instead of waiting, and says so.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::flows::{Running, assert_success, token_works};
use crate::support::claude_code::{
    access_token_in, adopt, assert_same_token, fresh_login, lock_peer, now_ms, read_store,
    refresh_token_in, write_store,
};
use crate::support::wait_for;

/// `<realpath of dir>.lock`, the lock 2.1.197 takes.
fn legacy_lock(dir: &Path) -> PathBuf {
    let mut path = fs::canonicalize(dir).unwrap().into_os_string();
    path.push(".lock");
    PathBuf::from(path)
}

fn main_lock(dir: &Path) -> PathBuf {
    dir.join(".oauth_refresh.lock")
}

fn owner_file(dir: &Path) -> PathBuf {
    dir.join(".oauth_refresh.lock.owner")
}

/// A config dir holding a fresh login of `account`, adopted as slot `slot`; the grant's id.
pub(crate) fn adopted(t: &Running, slot: &str) -> (PathBuf, String) {
    let dir = t.env.home().join(format!(".claude-{slot}"));
    fs::create_dir_all(&dir).unwrap();
    let (mut login, grant_id) = fresh_login(t, slot);
    login["subscriptionType"] = "max".into();
    write_store(&dir, &json!({ "claudeAiOauth": login }));
    assert_success(&adopt(t, slot, &dir), "adopt");
    (dir, grant_id)
}

/// `node lock_peer.cjs MODE DIR ARGS…` once it says "held".
fn hold(mode: &str, dir: &Path, args: &[&str]) -> Child {
    lock_peer(mode, dir, args)
}

/// SIGKILL: the holder dies with its locks (and owner record) left behind.
fn crash(mut holder: Child) {
    holder.kill().unwrap();
    holder.wait().unwrap();
}

/// Asserts a refresh went through the lock to the server and left a working token in
/// Claude Code's store and with the daemon, with no refresh token presented twice.
fn assert_refreshed_once(t: &Running, dir: &Path, before: &str, requests: u64) {
    assert_eq!(t.token_requests(), requests + 1, "{}", t.daemon.log());
    assert_eq!(t.invalid_grants(), 0);
    assert!(
        refresh_token_in(dir) != before,
        "the store still holds the old refresh token"
    );
    let stored = access_token_in(dir);
    assert!(token_works(&t.server, &stored), "the store's token");
    assert_same_token(&t.token("work"), &stored, "the daemon's token");
    assert_eq!(t.state("work"), "active");
}

/// `sessctl refresh work` over a crashed holder's lock, which the daemon must take over.
fn refresh_over_crashed_lock(t: &Running, dir: &Path) {
    let before = refresh_token_in(dir);
    let requests = t.token_requests();
    // Without the CLI's 30 s deadline: the daemon answers once its own bounded wait is over.
    let out = t
        .env
        .sessctl_command(&["refresh", "work"])
        .output()
        .unwrap();
    assert_success(&out, "refresh");
    assert!(
        t.daemon.log().contains("holds Claude Code's refresh lock"),
        "the lock was not held when the daemon came: {}",
        t.daemon.log()
    );
    assert_refreshed_once(t, dir, &before, requests);
    assert!(!main_lock(dir).exists() && !legacy_lock(dir).exists());
}

/// 2.1.197 holds only `<realpath>.lock`, calls it stale after 10 s and writes no owner
/// record: a crashed one's lock is taken over by that rule, not made to wait out 2.1.218+'s
/// 60 s (which would outlast the daemon's bounded wait).
#[test]
fn a_crashed_old_claude_codes_lock_is_taken_over_by_its_own_10_s_rule() {
    let t = Running::start("");
    let (dir, _) = adopted(&t, "work");
    crash(hold("hold-legacy", &dir, &[]));
    assert!(legacy_lock(&dir).is_dir() && !owner_file(&dir).exists());
    refresh_over_crashed_lock(&t, &dir);
}

/// 2.1.218+ crashed holding both locks: its owner record names a pid that is dead (then,
/// a second time, a live pid started at another time: a reused pid). Claude Code itself
/// takes such a lock over at once; so does sessctl, instead of waiting out the 60 s.
#[test]
fn a_crashed_new_claude_codes_lock_is_taken_over_early_through_its_owner_record() {
    let t = Running::start("");
    let (dir, _) = adopted(&t, "work");
    crash(hold("hold", &dir, &[]));
    assert!(owner_file(&dir).is_file(), "the crashed holder's record");
    refresh_over_crashed_lock(&t, &dir);
    assert!(t.daemon.log().contains("proves the holder gone"));

    crash(hold("hold", &dir, &[]));
    let mut reused = Command::new("sleep").arg("120").spawn().unwrap();
    let mut record: Value = serde_json::from_slice(&fs::read(owner_file(&dir)).unwrap()).unwrap();
    record["pid"] = reused.id().into();
    fs::write(owner_file(&dir), record.to_string()).unwrap();
    refresh_over_crashed_lock(&t, &dir);
    reused.kill().unwrap();
    reused.wait().unwrap();
}

/// 2.1.218+ crashed before writing its owner record: nothing proves it gone, so only the
/// 60 s rule frees its lock. The lock is made 50 s old (mtime moved back instead of waiting);
/// the daemon waits for it and takes it once it is stale.
#[test]
fn a_crashed_new_claude_codes_lock_without_a_record_is_taken_over_by_the_60_s_rule() {
    let t = Running::start("");
    let (dir, _) = adopted(&t, "work");
    crash(hold("hold", &dir, &[]));
    fs::remove_file(owner_file(&dir)).unwrap();
    for lock in [main_lock(&dir), legacy_lock(&dir)] {
        File::open(&lock)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(50))
            .unwrap();
    }
    refresh_over_crashed_lock(&t, &dir);
}

/// A live 2.1.218+ holder that keeps the lock longer than the daemon's bounded wait (and
/// touches it only every 30 s, so the daemon's early-takeover check runs and finds its owner
/// alive): the daemon gives up, retries with backoff, never breaks the lock, and once the
/// holder has rotated and let go, adopts its tokens without sending anything.
#[test]
fn a_live_lock_held_past_the_daemons_wait_is_never_broken() {
    let t = Running::start("");
    let (dir, _) = adopted(&t, "work");
    let mut holder = hold("hold", &dir, &["60000", "30000"]);
    let requests = t.token_requests();
    let refresh = t.env.sessctl_command(&["refresh", "work"]);
    let waiting = std::thread::spawn(move || {
        let mut refresh = refresh;
        refresh.output().unwrap()
    });
    wait_for(
        "the daemon to give up waiting once",
        Duration::from_secs(60),
        || t.daemon.log().contains("gave up waiting"),
    );
    assert!(main_lock(&dir).is_dir() && owner_file(&dir).is_file());
    assert!(!t.daemon.log().contains("proves the holder gone"));
    // The holder rotates, writes, and lets go.
    let rotated = t.server.refresh(&refresh_token_in(&dir));
    let mut doc = read_store(&dir);
    doc["claudeAiOauth"]["accessToken"] = rotated.field("access_token").into();
    doc["claudeAiOauth"]["refreshToken"] = rotated.field("refresh_token").into();
    doc["claudeAiOauth"]["expiresAt"] = (now_ms() + 3_600_000).into();
    write_store(&dir, &doc);
    writeln!(holder.stdin.as_mut().unwrap(), "release").unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(holder.stdout.as_mut().unwrap(), &mut said).unwrap();
    holder.wait().unwrap();
    assert_eq!(
        said.trim(),
        "released",
        "the holder's lock was taken from it"
    );
    drop(waiting.join().unwrap());
    wait_for(
        "the daemon to adopt the holder's tokens",
        Duration::from_secs(60),
        || t.token("work") == rotated.field("access_token"),
    );
    assert_eq!(
        t.token_requests(),
        requests + 1,
        "the daemon sent a refresh"
    );
    assert_eq!(t.invalid_grants(), 0);
    assert_eq!(t.state("work"), "active");
    assert!(token_works(&t.server, &t.token("work")));
}
