//! Claude Code's credential store and locks as `sessctl::claude_code` implements them,
//! checked against the real `proper-lockfile` package (the lock library Claude Code uses)
//! under node, driven by `tests/claude-code/lock_peer.cjs` with Claude Code's own paths and
//! options. Everything happens in a fresh temp dir, never in a real `~/.claude`.
//!
//! Where a test needs "a minute has passed" (Claude Code's 60 s stale rule), it moves the
//! lock's mtime back instead of waiting, and says so.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout};
use std::time::{Duration, Instant, SystemTime};

use sessctl::claude_code::locks::{REFRESH_LOCK_DIR, STORAGE_WRITE_LOCK_DIR, legacy_lock_path};
use sessctl::claude_code::owner;
use sessctl::claude_code::{
    ConfigDir, CredentialStore, LockError, LockTiming, OAuthTokens, RefreshLock, StoreContents,
    StoreWriteLock,
};
use sessctl::secret::Secret;

use crate::support::claude_code::spawn_node;

/// A temp dir holding a config dir (`claude/`), removed on drop. The parent matters: the
/// legacy lock `<realpath of dir>.lock` lives beside the config dir.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!(
            "sessctl-it-cc-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(root.join("claude")).unwrap();
        Scratch { root }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("claude")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// `node lock_peer.cjs …`, killed on drop.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(args: &[&str]) -> Self {
        let mut child = spawn_node("lock_peer.cjs", args);
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    /// The peer's next line (blocks until it prints one; empty at its exit).
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// Starts a peer holding Claude Code's locks and waits until it says it holds them.
    fn holding(args: &[&str]) -> Self {
        let mut peer = Peer::start(args);
        assert_eq!(peer.line(), "held");
        peer
    }

    /// Asks the peer to release, returning everything it printed until it exited.
    fn release(mut self) -> Vec<String> {
        writeln!(self.stdin.as_mut().unwrap(), "release").unwrap();
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return lines;
            }
            lines.push(line);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `lock_peer.cjs try …` to completion and returns its one line.
fn peer_try(args: &[&str]) -> String {
    let mut peer = Peer::start(args);
    peer.line()
}

fn soon(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds)
}

fn dir_str(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// Sets a lock dir's mtime `ago` in the past: how a lock looks once its holder has not
/// touched it for that long.
fn age_lock(path: &Path, ago: Duration) {
    File::open(path)
        .unwrap()
        .set_modified(SystemTime::now() - ago)
        .unwrap();
}

/// A timing whose stale rule a test can reach in seconds; touching stays at Claude Code's
/// interval unless a test needs it faster.
const SHORT_STALE: LockTiming = LockTiming {
    stale: Duration::from_secs(3),
    legacy_stale: Duration::from_secs(3),
    touch_every: Duration::from_secs(5),
    poll: Duration::from_millis(100),
};

#[test]
fn a_refresh_lock_held_by_proper_lockfile_makes_sessctl_wait_until_it_is_released() {
    let scratch = Scratch::new();
    let dir = scratch.dir();
    let peer = Peer::holding(&["hold", dir_str(&dir)]);

    let err = RefreshLock::acquire(&dir, soon(1))
        .err()
        .expect("lock is held");
    let LockError::Busy { path, .. } = &err else {
        panic!("expected Busy, got {err:?}");
    };
    assert_eq!(path, &dir.join(REFRESH_LOCK_DIR));

    let waiting = {
        let dir = dir.clone();
        std::thread::spawn(move || RefreshLock::acquire(&dir, soon(30)).map(|_guard| ()))
    };
    assert_eq!(peer.release(), ["released"]);
    waiting
        .join()
        .unwrap()
        .expect("acquired once the peer released");
}

#[test]
fn proper_lockfile_cannot_take_a_refresh_lock_sessctl_holds_even_under_the_shortest_stale_rule() {
    let scratch = Scratch::new();
    let dir = scratch.dir();
    // Touching twice a second, against proper-lockfile's shortest stale rule (2 s) for 4 s.
    let timing = LockTiming {
        touch_every: Duration::from_millis(500),
        ..LockTiming::REFRESH
    };
    let guard = RefreshLock::acquire_with(&dir, soon(5), timing).unwrap();
    assert!(guard.holds_legacy_lock());
    assert!(legacy_lock_path(&dir).is_dir());
    let record = owner::read(&dir).expect("owner record written");
    assert_eq!(record.pid, std::process::id());

    assert_eq!(
        peer_try(&["try", dir_str(&dir), "2000", "8"]),
        "locked ELOCKED"
    );
    assert!(!guard.is_compromised());

    drop(guard);
    assert!(owner::read(&dir).is_none(), "owner record left behind");
    assert!(!dir.join(REFRESH_LOCK_DIR).exists());
    assert!(!legacy_lock_path(&dir).exists());
    assert_eq!(peer_try(&["try", dir_str(&dir), "60000", "0"]), "acquired");
}

#[test]
fn the_owner_record_matches_what_claude_code_computes_for_this_process() {
    let scratch = Scratch::new();
    let dir = scratch.dir();
    if !Path::new("/etc/machine-id").exists() {
        // Claude Code's pid domain needs it; without it the record only blocks an early
        // takeover (the safe side) and there is nothing to compare.
        eprintln!("skipped: no /etc/machine-id");
        return;
    }
    let guard = RefreshLock::acquire(&dir, soon(5)).unwrap();
    let ours = serde_json::to_value(owner::read(&dir).expect("owner record written")).unwrap();
    let pid = std::process::id().to_string();
    let expected: serde_json::Value =
        serde_json::from_str(&peer_try(&["owner", dir_str(&dir), &pid])).unwrap();
    for field in [
        "pid",
        "pidDomain",
        "pidSpace",
        "procStart",
        "lockBirthtimeMs",
    ] {
        assert_eq!(ours[field], expected[field], "field {field}");
    }
    drop(guard);
}

#[test]
fn a_legacy_lock_held_by_proper_lockfile_also_makes_sessctl_wait() {
    let scratch = Scratch::new();
    let dir = scratch.dir();
    // An older Claude Code holding only `<realpath>.lock`.
    let peer = Peer::holding(&["hold-legacy", dir_str(&dir)]);
    let legacy = legacy_lock_path(&dir);
    assert!(legacy.is_dir());

    let err = RefreshLock::acquire(&dir, soon(1))
        .err()
        .expect("legacy lock is held");
    assert!(
        matches!(&err, LockError::Busy { path, .. } if path == &legacy),
        "{err:?}"
    );
    // The new lock was given back, not kept while waiting for the old one.
    assert!(!dir.join(REFRESH_LOCK_DIR).exists());
    assert_eq!(peer.release(), ["released"]);
}

#[test]
fn a_stale_lock_left_by_a_killed_claude_code_is_taken_over() {
    let scratch = Scratch::new();
    let dir = scratch.dir();
    let mut peer = Peer::holding(&["hold", dir_str(&dir)]);
    // Killed without a chance to clean up: both lock dirs stay behind.
    peer.child.kill().unwrap();
    peer.child.wait().unwrap();
    assert!(dir.join(REFRESH_LOCK_DIR).is_dir());

    // Touched moments ago, so not stale yet: sessctl waits rather than break it.
    assert!(matches!(
        RefreshLock::acquire(&dir, soon(1)),
        Err(LockError::Busy { .. })
    ));

    // A minute later (mtimes moved back instead of waiting), both are stale.
    age_lock(&dir.join(REFRESH_LOCK_DIR), Duration::from_secs(61));
    age_lock(&legacy_lock_path(&dir), Duration::from_secs(61));
    let guard = RefreshLock::acquire(&dir, soon(5)).expect("stale locks taken over");
    assert!(guard.holds_legacy_lock());
}

#[test]
fn a_live_lock_kept_fresh_by_proper_lockfile_is_never_broken() {
    let scratch = Scratch::new();
    let dir = scratch.dir();
    // The peer touches every second; sessctl judges staleness by 3 s and waits 6 s.
    let peer = Peer::holding(&["hold", dir_str(&dir), "60000", "1000"]);

    let err = RefreshLock::acquire_with(&dir, soon(6), SHORT_STALE)
        .err()
        .expect("a live lock must not be taken");
    assert!(matches!(err, LockError::Busy { .. }), "{err:?}");

    // Not compromised, and its own release still finds both locks its own.
    assert_eq!(peer.release(), ["released"]);
}

#[test]
fn the_storage_write_lock_excludes_proper_lockfile_both_ways() {
    let scratch = Scratch::new();
    let dir = scratch.dir();

    let peer = Peer::holding(&["hold-write", dir_str(&dir)]);
    let err = StoreWriteLock::acquire(&dir, soon(1))
        .err()
        .expect("held by the peer");
    assert!(
        matches!(&err, LockError::Busy { path, .. } if path == &dir.join(STORAGE_WRITE_LOCK_DIR)),
        "{err:?}"
    );
    assert_eq!(peer.release(), ["released"]);

    let guard = StoreWriteLock::acquire(&dir, soon(5)).unwrap();
    assert_eq!(
        peer_try(&["try", dir_str(&dir), "15000", "0", "write"]),
        "locked ELOCKED"
    );
    drop(guard);
    assert_eq!(
        peer_try(&["try", dir_str(&dir), "15000", "0", "write"]),
        "acquired"
    );
}

#[test]
fn a_locked_rewrite_keeps_claude_codes_fields_and_mode_0600() {
    let scratch = Scratch::new();
    let dir = scratch.dir();
    let path = dir.join(".credentials.json");
    fs::write(
        &path,
        br#"{"claudeAiOauth":{"accessToken":"at-1","refreshToken":"rt-1","expiresAt":1000,
            "scopes":["user:inference"],"subscriptionType":"max","clientId":"c"},
            "mcpOAuth":{"s":{"accessToken":"m"}}}"#,
    )
    .unwrap();
    let store = CredentialStore::new(ConfigDir::explicit(&dir));

    let refresh = RefreshLock::acquire(&dir, soon(5)).unwrap();
    let StoreContents::Present {
        mut document,
        tokens,
    } = store.read().unwrap()
    else {
        panic!("expected a login");
    };
    assert_eq!(tokens.refresh_token.expose(), "rt-1");
    document.set_tokens(&OAuthTokens {
        access_token: Secret::new("at-2"),
        refresh_token: Secret::new("rt-2"),
        expires_at_ms: Some(2000),
        scopes: None,
    });
    let write = StoreWriteLock::acquire(&dir, soon(5)).unwrap();
    store.write(&document, &write).unwrap();
    drop(write);
    drop(refresh);

    let written: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        written,
        serde_json::json!({"claudeAiOauth":{"accessToken":"at-2","refreshToken":"rt-2",
            "expiresAt":2000,"scopes":["user:inference"],"subscriptionType":"max","clientId":"c"},
            "mcpOAuth":{"s":{"accessToken":"m"}}})
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        [".credentials.json"],
        "locks or temp files left behind"
    );
}

#[test]
fn a_write_whose_storage_write_lock_was_taken_over_writes_nothing() {
    let scratch = Scratch::new();
    let dir = scratch.dir();
    let path = dir.join(".credentials.json");
    let before = br#"{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":1}}"#;
    fs::write(&path, before).unwrap();
    let store = CredentialStore::new(ConfigDir::explicit(&dir));

    let write = StoreWriteLock::acquire(&dir, soon(5)).unwrap();
    // Someone judged it stale and took it: the lock dir now carries their mtime.
    let lock = dir.join(STORAGE_WRITE_LOCK_DIR);
    File::open(&lock)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(2))
        .unwrap();
    let err = store
        .write(&sessctl::claude_code::StoreDocument::new(), &write)
        .unwrap_err();
    assert!(
        matches!(err, sessctl::claude_code::StoreError::LockLost { .. }),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), before);
    drop(write);
    assert!(lock.is_dir(), "the new holder's lock was removed");
}
