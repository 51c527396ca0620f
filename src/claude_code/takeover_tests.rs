//! The early takeover's decisions, each against real processes (a dead one, a zombie, this
//! live one, a live one with another start time) and real lock directories.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command};

use super::*;

/// A storage dir with Claude Code's two refresh locks, held by a holder described by an
/// owner record the test controls.
struct Held {
    root: PathBuf,
    dir: PathBuf,
    main: PathBuf,
    legacy: PathBuf,
    watched: SystemTime,
}

impl Held {
    fn new(name: &str) -> Held {
        let root = std::env::temp_dir().join(format!(
            "sessctl-takeover-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let dir = root.join("claude");
        fs::create_dir_all(&dir).unwrap();
        let main = dir.join(".oauth_refresh.lock");
        let legacy = root.join("claude.lock");
        fs::create_dir(&main).unwrap();
        fs::create_dir(&legacy).unwrap();
        // Last touched 8 s ago: unchanged for longer than the watch.
        let watched = SystemTime::now() - Duration::from_secs(8);
        File::open(&main).unwrap().set_modified(watched).unwrap();
        let watched = fs::metadata(&main).unwrap().modified().unwrap();
        Held {
            root,
            dir,
            main,
            legacy,
            watched,
        }
    }

    /// The record Claude Code writes for holder `pid` (started at `proc_start`).
    fn record(&self, pid: u32, proc_start: Option<String>) -> OwnerRecord {
        let birth = |path: &Path| owner::epoch_ms(fs::metadata(path).unwrap().created().unwrap());
        OwnerRecord {
            pid,
            proc_start,
            pid_domain: owner::pid_domain(),
            pid_space: owner::pid_space(),
            lock_birthtime_ms: birth(&self.main),
            legacy_lock_birthtime_ms: Some(birth(&self.legacy)),
        }
    }

    fn write(&self, record: &OwnerRecord) {
        owner::write(&self.dir, record).unwrap();
    }

    fn take_over(&self) -> Outcome {
        take_over(&self.dir, &self.main, &self.legacy, self.watched).unwrap()
    }

    fn untouched(&self) -> bool {
        self.main.is_dir() && self.legacy.is_dir() && owner::read(&self.dir).is_some()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A process that has exited and been reaped: its pid is dead.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A live child process, killed on drop.
struct Alive(Child);

impl Alive {
    fn start() -> Alive {
        Alive(Command::new("sleep").arg("60").spawn().unwrap())
    }
    fn start_time(&self) -> String {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap();
        owner::start_time_field(&stat).unwrap()
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_holder_whose_pid_is_dead_is_taken_over_with_its_record() {
    let held = Held::new("dead");
    held.write(&held.record(dead_pid(), Some("12345".into())));
    assert_eq!(held.take_over(), Outcome::TakenOver);
    assert!(!held.main.exists() && !held.legacy.exists());
    assert!(owner::read(&held.dir).is_none(), "the dead holder's record");
}

#[test]
fn a_live_holder_is_never_taken_over() {
    let held = Held::new("live");
    // This very process, with its true start time: alive, and provably the same process.
    held.write(&held.record(std::process::id(), owner::proc_start()));
    assert_eq!(held.take_over(), Outcome::HolderNotProvenGone);
    assert!(held.untouched());
    // A live process whose record has no start time cannot be proven gone either.
    let alive = Alive::start();
    held.write(&held.record(alive.0.id(), None));
    assert_eq!(held.take_over(), Outcome::HolderNotProvenGone);
    assert!(held.untouched());
    held.write(&held.record(alive.0.id(), Some(alive.start_time())));
    assert_eq!(held.take_over(), Outcome::HolderNotProvenGone);
    assert!(held.untouched());
}

#[test]
fn a_live_pid_started_at_another_time_is_a_reused_pid_and_taken_over() {
    let held = Held::new("reused");
    let alive = Alive::start();
    let other_start = format!("{}1", alive.start_time());
    held.write(&held.record(alive.0.id(), Some(other_start)));
    assert_eq!(held.take_over(), Outcome::TakenOver);
    assert!(!held.main.exists() && !held.legacy.exists());
}

#[test]
fn a_zombie_holder_is_taken_over() {
    let held = Held::new("zombie");
    // Exited but not reaped yet: a zombie until `wait`.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    let zombie = || {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !zombie() {
        assert!(std::time::Instant::now() < deadline, "child never exited");
        std::thread::sleep(Duration::from_millis(10));
    }
    held.write(&held.record(pid, None));
    assert_eq!(held.take_over(), Outcome::TakenOver);
    child.wait().unwrap();
}

#[test]
fn a_lock_touched_since_it_was_watched_is_left_alone() {
    let held = Held::new("touched");
    held.write(&held.record(dead_pid(), None));
    File::open(&held.main)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    assert_eq!(held.take_over(), Outcome::LockChanged);
    assert!(held.untouched());
}

#[test]
fn without_a_matching_record_nothing_is_proven() {
    let held = Held::new("records");
    assert_eq!(held.take_over(), Outcome::NoOwnerRecord);
    // A record that does not parse is no record.
    fs::write(owner::owner_path(&held.dir), "{\"pid\": 7").unwrap();
    assert_eq!(held.take_over(), Outcome::NoOwnerRecord);
    // A record for another lock (an earlier one, its birth time differs).
    let mut record = held.record(dead_pid(), None);
    record.lock_birthtime_ms -= 1000.0;
    held.write(&record);
    assert_eq!(held.take_over(), Outcome::RecordMismatch);
    // A holder in another pid namespace or on another machine.
    let mut record = held.record(dead_pid(), None);
    record.pid_space = format!("{}-elsewhere", record.pid_space);
    held.write(&record);
    assert_eq!(held.take_over(), Outcome::ForeignPidSpace);
    let mut record = held.record(dead_pid(), None);
    record.pid_domain = "linux:another-machine:pid:[1]".into();
    held.write(&record);
    assert_eq!(held.take_over(), Outcome::ForeignPidSpace);
    // A record outside Claude Code's schema (a start time of more than 64 characters) is
    // no record, even though that start time differs from the live holder's.
    held.write(&held.record(std::process::id(), Some("9".repeat(65))));
    assert_eq!(held.take_over(), Outcome::NoOwnerRecord);
    // Pids that are no process of anyone's (0, 1, negative as i32).
    for pid in [0, 1, u32::MAX] {
        held.write(&held.record(pid, Some("1".into())));
        assert_eq!(held.take_over(), Outcome::HolderNotProvenGone, "pid {pid}");
    }
    assert!(held.untouched());
}

#[test]
fn a_legacy_lock_the_record_does_not_name_belongs_to_someone_else() {
    let held = Held::new("legacy");
    let mut record = held.record(dead_pid(), None);
    // The dead holder never got the legacy lock; an older Claude Code holds it.
    record.legacy_lock_birthtime_ms = None;
    held.write(&record);
    assert_eq!(held.take_over(), Outcome::LegacyLockHeld);
    assert!(held.untouched());
    // Without a legacy lock at all, the dead holder's new lock is taken over.
    fs::remove_dir(&held.legacy).unwrap();
    assert_eq!(held.take_over(), Outcome::TakenOver);
    assert!(!held.main.exists());
}

#[test]
fn a_released_lock_is_reported_changed() {
    let held = Held::new("released");
    held.write(&held.record(dead_pid(), None));
    fs::remove_dir(&held.main).unwrap();
    assert_eq!(held.take_over(), Outcome::LockChanged);
}
