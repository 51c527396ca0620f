//! The state log's format and the daemon's saver over real files (`crate::state_log`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::state::{SlotRecord, SlotState, StateError, StateFile};
use crate::state_log::writer::MIN_COMPACT_BYTES;
use crate::state_log::{Delta, HEADER, Tail, checksum, encode, log_path, read, scan};

fn record(generation: u64) -> SlotRecord {
    let account = format!("user{generation}@example.com");
    SlotRecord {
        provider: "claude".to_owned(),
        account_key: crate::account::AccountKey::from_label("claude", &account),
        account: Some(account),
        state: SlotState::Active,
        reason: None,
        generation,
        created_at: "2025-01-02T03:04:05Z".parse().unwrap(),
        last_refresh_at: None,
        last_refresh_error: None,
        refreshes: 0,
        newest_written: None,
        claude_code: None,
    }
}

fn state_with(slots: usize) -> StateFile {
    let mut state = StateFile::default();
    for n in 0..slots {
        state.slots.insert(format!("s{n:04}"), record(n as u64 + 1));
    }
    state.next_generation = slots as u64 + 1;
    state
}

/// The manager's way to change one slot: a new `Arc` for it, the others shared.
fn with_slot(snapshot: &StateSnapshot, name: &str, record: Option<SlotRecord>) -> StateSnapshot {
    let mut next = snapshot.clone();
    let slots = Arc::make_mut(&mut next.slots);
    match record {
        Some(record) => slots.insert(name.to_owned(), Arc::new(record)),
        None => slots.remove(name),
    };
    next
}

fn state_path() -> PathBuf {
    crate::test_dirs::fresh("statelog").join("state.json")
}

/// A daemon's saver over the state at `path` (loaded as the daemon does).
fn open_saver(path: &Path) -> (StateSaver, StateSnapshot) {
    let loaded = StateFile::load(path).unwrap();
    let snapshot = StateSnapshot::of(&loaded);
    (
        StateSaver::new(path.to_owned(), loaded.revision, snapshot.clone()),
        snapshot,
    )
}

fn refreshed(generation: u64, refreshes: u64) -> SlotRecord {
    SlotRecord {
        refreshes,
        ..record(generation)
    }
}

#[test]
fn saves_after_the_first_append_only_what_changed_and_load_replays_them_in_order() {
    let path = state_path();
    state_with(3).save(&path).unwrap();
    let base = std::fs::read(&path).unwrap();
    let (mut saver, mut snapshot) = open_saver(&path);
    for refreshes in 1..=3 {
        snapshot = with_slot(&snapshot, "s0001", Some(refreshed(2, refreshes)));
        saver.save(&snapshot).unwrap();
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        base,
        "the state file is untouched"
    );
    let scan = scan(&read(&log_path(&path)).unwrap(), 1);
    assert_eq!(scan.tail, Tail::Clean);
    assert_eq!(scan.deltas.len(), 3);
    for (n, delta) in scan.deltas.iter().enumerate() {
        assert_eq!(delta.after, 1 + n as u64);
        assert_eq!(delta.slots.keys().collect::<Vec<_>>(), ["s0001"]);
    }
    let loaded = StateFile::load(&path).unwrap();
    assert_eq!(loaded, snapshot.to_file(4));
    assert_eq!(loaded.slots["s0001"].refreshes, 3, "the last delta wins");
}

#[test]
fn a_removed_slot_stays_removed_after_a_reload() {
    let path = state_path();
    state_with(3).save(&path).unwrap();
    let (mut saver, snapshot) = open_saver(&path);
    let snapshot = with_slot(&snapshot, "s0000", None);
    let snapshot = with_slot(&snapshot, "new", Some(record(9)));
    saver.save(&snapshot).unwrap();
    let delta = &scan(&read(&log_path(&path)).unwrap(), 1).deltas[0];
    assert_eq!(delta.slots["s0000"], None);
    let loaded = StateFile::load(&path).unwrap();
    assert!(!loaded.slots.contains_key("s0000"));
    assert_eq!(loaded, snapshot.to_file(2));
}

#[test]
fn a_torn_last_record_is_ignored_and_what_came_before_loads() {
    let path = state_path();
    state_with(2).save(&path).unwrap();
    let (mut saver, snapshot) = open_saver(&path);
    let first = with_slot(&snapshot, "s0000", Some(refreshed(1, 5)));
    saver.save(&first).unwrap();
    saver
        .save(&with_slot(&first, "s0001", Some(refreshed(2, 6))))
        .unwrap();
    let log = log_path(&path);
    let bytes = std::fs::read(&log).unwrap();
    for cut in [
        bytes.len() - 1,
        bytes.len() - 40,
        first_record_len(&bytes) + 3,
    ] {
        std::fs::write(&log, &bytes[..cut]).unwrap();
        assert!(matches!(scan(&bytes[..cut], 1).tail, Tail::Torn { .. }));
        assert_eq!(StateFile::load(&path).unwrap(), first.to_file(2));
    }
}

fn first_record_len(bytes: &[u8]) -> usize {
    HEADER + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize
}

#[test]
fn a_garbled_record_ends_the_log_and_the_writer_keeps_a_copy_before_emptying_it() {
    let path = state_path();
    state_with(2).save(&path).unwrap();
    let (mut saver, snapshot) = open_saver(&path);
    let first = with_slot(&snapshot, "s0000", Some(refreshed(1, 5)));
    saver.save(&first).unwrap();
    let second = with_slot(&first, "s0001", Some(refreshed(2, 6)));
    saver.save(&second).unwrap();
    let log = log_path(&path);
    let mut bytes = std::fs::read(&log).unwrap();
    let at = first_record_len(&bytes) + HEADER + 10;
    bytes[at] ^= 0x20;
    std::fs::write(&log, &bytes).unwrap();
    let tail = scan(&bytes, 1).tail;
    assert!(
        matches!(&tail, Tail::Unreadable { why, .. } if why.contains("checksum")),
        "{tail:?}"
    );
    assert_eq!(StateFile::load(&path).unwrap(), first.to_file(2));

    // A daemon starting over it keeps the log's bytes, then saves whole.
    let (mut saver, loaded) = open_saver(&path);
    saver
        .save(&with_slot(&loaded, "s0001", Some(refreshed(2, 7))))
        .unwrap();
    let dir = path.parent().unwrap();
    let kept: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".log.bad-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), bytes);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 0, "saved whole");
    assert_eq!(StateFile::load(&path).unwrap().slots["s0001"].refreshes, 7);
}

#[test]
fn garbage_and_a_log_of_another_state_file_are_reported_not_applied() {
    let mut junk = vec![7u8; 40];
    junk[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(scan(&junk, 0).tail, Tail::Unreadable { .. }));
    let delta = |base, after| Delta {
        base,
        after,
        next_generation: 1,
        slots: BTreeMap::new(),
        pending_revocations: Vec::new(),
        moving: None,
        claude_code_fields: BTreeMap::new(),
        dead_logins: BTreeMap::new(),
    };
    let not_json = [4u8, 0, 0, 0]
        .into_iter()
        .chain(checksum(b"nope"))
        .chain(*b"nope")
        .collect::<Vec<_>>();
    assert!(matches!(scan(&not_json, 0).tail, Tail::Unreadable { .. }));
    // The state file was restored to revision 3; the log follows revision 10 of another.
    let other = encode(&delta(10, 10)).unwrap();
    let scanned = scan(&other, 3);
    assert!(scanned.deltas.is_empty() && scanned.tail.is_unreadable());
    // A compaction stopped between its rename and emptying the log: all skipped.
    let old: Vec<u8> = [encode(&delta(3, 3)).unwrap(), encode(&delta(3, 4)).unwrap()].concat();
    let scanned = scan(&old, 5);
    assert_eq!((scanned.deltas.len(), scanned.skipped), (0, 2));
    assert_eq!(scanned.tail, Tail::Clean);
}

#[test]
fn compaction_rewrites_the_file_whole_and_empties_the_log() {
    let path = state_path();
    state_with(2).save(&path).unwrap();
    let (mut saver, mut snapshot) = open_saver(&path);
    let log = log_path(&path);
    let mut refreshes = 0;
    while std::fs::metadata(&log).map_or(0, |m| m.len()) <= MIN_COMPACT_BYTES {
        refreshes += 1;
        snapshot = with_slot(&snapshot, "s0000", Some(refreshed(1, refreshes)));
        saver.save(&snapshot).unwrap();
    }
    saver.tidy();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
    let revision = 1 + refreshes;
    let on_disk: StateFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        on_disk,
        snapshot.to_file(revision),
        "the file alone holds it all"
    );
    snapshot = with_slot(&snapshot, "s0001", None);
    assert_eq!(saver.save(&snapshot).unwrap(), revision + 1);
    assert_eq!(
        StateFile::load(&path).unwrap(),
        snapshot.to_file(revision + 1)
    );
}

#[test]
fn a_state_file_from_before_the_log_loads_and_the_next_save_appends_over_it() {
    let path = state_path();
    let text = r#"{"format":1,"revision":7,"next_generation":2,"slots":{"w":{
        "provider":"claude","account":null,"state":"active","reason":null,
        "generation":1,"created_at":"2025-01-02T03:04:05Z","last_refresh_at":null,
        "last_refresh_error":null,"refreshes":0}}}"#;
    std::fs::write(&path, text).unwrap();
    let (mut saver, snapshot) = open_saver(&path);
    assert_eq!(StateFile::load(&path).unwrap().revision, 7);
    let next = with_slot(&snapshot, "v", Some(record(1)));
    assert_eq!(saver.save(&next).unwrap(), 8);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "appended, not rewritten"
    );
    assert_eq!(StateFile::load(&path).unwrap().slots.len(), 2);
}

#[test]
fn a_file_changed_behind_the_writer_is_noticed_and_rewritten_whole() {
    let path = state_path();
    state_with(2).save(&path).unwrap();
    let (mut saver, snapshot) = open_saver(&path);
    let first = with_slot(&snapshot, "s0000", Some(refreshed(1, 1)));
    saver.save(&first).unwrap();
    // Same revision, one slot gone: only the file's identity tells.
    let mut edited = StateFile::load(&path).unwrap();
    edited.revision = 1;
    edited.slots.remove("s0001");
    std::fs::write(&path, serde_json::to_vec(&edited).unwrap()).unwrap();
    let second = with_slot(&first, "s0000", Some(refreshed(1, 2)));
    let revision = saver.save(&second).unwrap();
    assert_eq!(StateFile::load(&path).unwrap(), second.to_file(revision));
    // The log itself removed behind the writer: the next save is whole again.
    std::fs::remove_file(log_path(&path)).unwrap();
    let third = with_slot(&second, "s0001", None);
    let revision = saver.save(&third).unwrap();
    assert_eq!(StateFile::load(&path).unwrap(), third.to_file(revision));
}

#[test]
fn a_state_file_garbled_behind_the_writer_is_an_error_and_is_not_written_over() {
    let path = state_path();
    state_with(2).save(&path).unwrap();
    let (mut saver, snapshot) = open_saver(&path);
    let first = with_slot(&snapshot, "s0000", None);
    saver.save(&first).unwrap();
    std::fs::write(&path, b"{\"revision\": 1, \"slots\": ").unwrap();
    let second = with_slot(&first, "s0001", None);
    assert!(matches!(
        saver.save(&second),
        Err(StateError::Corrupt { .. })
    ));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"{\"revision\": 1, \"slots\": "
    );
    // Removed by the user: the daemon's state is written whole.
    std::fs::remove_file(&path).unwrap();
    let revision = saver.save(&second).unwrap();
    assert_eq!(StateFile::load(&path).unwrap(), second.to_file(revision));
}

#[test]
fn a_graceful_stop_with_no_save_since_start_still_folds_the_log() {
    let path = state_path();
    state_with(2).save(&path).unwrap();
    let (mut saver, snapshot) = open_saver(&path);
    let first = with_slot(&snapshot, "s0000", None);
    saver.save(&first).unwrap();
    let (mut restarted, _) = open_saver(&path);
    restarted.finish();
    assert_eq!(std::fs::metadata(log_path(&path)).unwrap().len(), 0);
    let on_disk: StateFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(on_disk, first.to_file(2));
}

#[test]
fn a_whole_save_of_the_state_file_empties_its_log() {
    let path = state_path();
    state_with(2).save(&path).unwrap();
    let (mut saver, snapshot) = open_saver(&path);
    saver.save(&with_slot(&snapshot, "s0000", None)).unwrap();
    let mut loaded = StateFile::load(&path).unwrap();
    assert_eq!(loaded.revision, 2);
    loaded.next_generation = 50;
    assert_eq!(loaded.save(&path).unwrap(), 3);
    assert_eq!(std::fs::metadata(log_path(&path)).unwrap().len(), 0);
    let reloaded = StateFile::load(&path).unwrap();
    assert_eq!((reloaded.revision, reloaded.next_generation), (3, 50));
    assert!(!reloaded.slots.contains_key("s0000"));
}

/// Not a test of behaviour: the per-save cost at 100 and 1,000 slots, whole file against
/// delta (`cargo test --release --lib state_log::tests::save_cost -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a test: run it with --release"]
fn save_cost_by_slot_count() {
    const SAVES: u32 = 200;
    for slots in [100, 1000] {
        let path = state_path();
        let mut state = state_with(slots);
        state.revision = state.save(&path).unwrap();
        let started = std::time::Instant::now();
        for n in 0..SAVES {
            state.slots.get_mut("s0001").unwrap().refreshes = u64::from(n);
            state.revision = state.save(&path).unwrap();
        }
        let whole = started.elapsed() / SAVES;
        let (mut saver, mut snapshot) = open_saver(&path);
        let snapshots: Vec<_> = (0..SAVES)
            .map(|n| {
                let name = format!("s{:04}", n as usize % slots);
                snapshot = with_slot(&snapshot, &name, Some(refreshed(2, u64::from(n))));
                snapshot.clone()
            })
            .collect();
        let started = std::time::Instant::now();
        for snapshot in &snapshots {
            saver.save(snapshot).unwrap();
            saver.tidy();
        }
        let delta = started.elapsed() / SAVES;
        let started = std::time::Instant::now();
        for n in 1..snapshots.len() {
            std::hint::black_box(snapshots[n].delta_since(&snapshots[n - 1], 0, 0));
        }
        let diff = started.elapsed() / (SAVES - 1);
        eprintln!(
            "{slots} slots: whole file {whole:?} a save, delta {delta:?} a save (of which {diff:?} finding what changed)"
        );
    }
}

#[tokio::test]
async fn the_state_writer_compacts_after_reporting_and_folds_the_log_when_it_ends() {
    use crate::daemon::core::reports::JobResult;
    let path = state_path();
    state_with(2).save(&path).unwrap();
    let loaded = StateSnapshot::of(&StateFile::load(&path).unwrap());
    let (tx, rx) = tokio::sync::watch::channel((0, loaded.clone()));
    let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(crate::daemon::jobs::writer::state_file(
        path.clone(),
        1,
        rx,
        report,
    ));
    let log = log_path(&path);
    let (mut snapshot, mut longest, mut number) = (loaded, 0, 0);
    // Saves until the log has been emptied by a compaction (it outgrew 64 KiB first).
    while longest <= MIN_COMPACT_BYTES || std::fs::metadata(&log).unwrap().len() >= longest {
        number += 1;
        snapshot = with_slot(&snapshot, "s0000", Some(refreshed(1, number)));
        tx.send_replace((number, snapshot.clone()));
        let Some(JobResult::StateSaved(Ok(saved))) = reports.recv().await else {
            panic!("the save of {number} was not reported");
        };
        assert_eq!(saved, number);
        longest = longest.max(std::fs::metadata(&log).unwrap().len());
        assert!(number < 10_000, "never compacted");
    }
    snapshot = with_slot(&snapshot, "s0001", None);
    tx.send_replace((number + 1, snapshot.clone()));
    drop(tx);
    writer.await.unwrap();
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        0,
        "folded at the end"
    );
    let on_disk: StateFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(on_disk, snapshot.to_file(on_disk.revision));
}
