use super::*;
use crate::secret::Secret;

fn entry(slot: &str, version: u64, refresh: &str) -> Entry {
    Entry {
        slot: slot.to_owned(),
        generation: 1,
        replaces_version: Some(version),
        tokens: Tokens {
            access_token: Secret::new(format!("AT-{refresh}")),
            refresh_token: Secret::new(refresh),
            expires_at: None,
            obtained_at: chrono::Utc::now(),
            scopes: vec![],
        },
    }
}

fn journal_path() -> PathBuf {
    crate::test_dirs::fresh("journal").join(FILE_NAME)
}

#[test]
fn appended_entries_read_back_and_the_newest_per_slot_wins() {
    let path = journal_path();
    let key = JournalKey::generate();
    let journal = Journal::open(&path, &key, vec![]).unwrap();
    journal.append(&entry("a", 1, "RT-a1")).unwrap();
    journal.append(&entry("b", 4, "RT-b")).unwrap();
    journal.append(&entry("a", 1, "RT-a2")).unwrap();
    let contents = read(&path, &key).unwrap();
    assert!(contents.problem.is_none());
    let newest = newest_per_slot(contents.entries);
    assert_eq!(newest["a"].tokens.refresh_token.expose(), "RT-a2");
    assert_eq!(
        (newest["b"].item().generation, newest["b"].item().version),
        (1, 5)
    );
}

#[cfg(unix)]
#[test]
fn the_file_never_holds_a_token_in_the_clear_and_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let path = journal_path();
    let journal = Journal::open(&path, &JournalKey::generate(), vec![]).unwrap();
    journal
        .append(&entry("a", 1, "RT-PLAINTEXT-CANARY"))
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"CANARY"));
    assert!(!bytes.windows(5).any(|w| w == b"\"slot"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_record_cut_short_keeps_the_entries_before_it() {
    let path = journal_path();
    let key = JournalKey::generate();
    let journal = Journal::open(&path, &key, vec![]).unwrap();
    journal.append(&entry("a", 1, "RT-a")).unwrap();
    journal.append(&entry("b", 1, "RT-b")).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let contents = read(&path, &key).unwrap();
    assert_eq!(contents.entries.len(), 1);
    assert!(contents.problem.unwrap().contains("cut short"));
}

#[test]
fn another_key_or_garbage_is_reported_not_read() {
    let path = journal_path();
    let journal = Journal::open(&path, &JournalKey::generate(), vec![]).unwrap();
    journal.append(&entry("a", 1, "RT-a")).unwrap();
    let other = read(&path, &JournalKey::generate()).unwrap();
    assert!(other.entries.is_empty());
    assert!(other.problem.unwrap().contains("does not open"));
    std::fs::write(&path, b"\xff\xff\xff\xffgarbage").unwrap();
    let garbage = read(&path, &JournalKey::generate()).unwrap();
    assert!(garbage.problem.unwrap().contains("not a record"));
}

#[test]
fn settling_every_slot_empties_the_file() {
    let path = journal_path();
    let key = JournalKey::generate();
    let journal = Journal::open(&path, &key, vec![]).unwrap();
    journal.append(&entry("a", 1, "RT-a")).unwrap();
    journal.append(&entry("b", 1, "RT-b")).unwrap();
    journal.settle("a", None);
    assert!(journal.holds("b") && !journal.holds("a"));
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    journal.settle("b", None);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    journal.append(&entry("c", 1, "RT-c")).unwrap();
    assert_eq!(read(&path, &key).unwrap().entries.len(), 1);
}

#[test]
fn a_key_round_trips_through_its_text_and_bad_text_is_refused() {
    let key = JournalKey::generate();
    assert_eq!(JournalKey::decode(&key.encode()).unwrap().0, key.0);
    assert!(matches!(
        JournalKey::decode("short"),
        Err(JournalError::BadKey)
    ));
    assert!(matches!(
        JournalKey::decode("!!!"),
        Err(JournalError::BadKey)
    ));
}

/// Found by the simulator (seed 1004, step 3863): the write of a replaced login's refresh
/// was refused (the store held the current login's item, generation 118 version 1) while
/// the current login's rotated tokens (to become version 2) were journaled and not yet
/// stored; that refusal retired the slot's entries and emptied the file, so a crash before
/// the store write lost the newest refresh token, and the next start presented the spent
/// one (the grant was revoked).
#[test]
fn a_refused_write_retires_only_the_entries_the_store_holds_or_supersedes() {
    let path = journal_path();
    let key = JournalKey::generate();
    let journal = Journal::open(&path, &key, vec![]).unwrap();
    // Generation 1, replacing version 1: to become version 2.
    journal.append(&entry("a", 1, "RT-a")).unwrap();
    journal.settle("a", Some((1, 1)));
    assert!(
        journal.holds("a"),
        "the entry newer than the item found was retired"
    );
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    journal.settle("a", Some((1, 2)));
    assert!(!journal.holds("a"));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

/// Found by the simulator (seed 1006, step 4027): a replaced login's refresh (generation
/// 139) was journaled after the current login's (generation 141); the start replayed the
/// last entry, which the store refused as older, and never the current login's newest
/// tokens: the next refresh presented a spent token and the grant was revoked.
#[test]
fn the_replay_takes_each_slot_s_newest_item_not_its_last_entry() {
    let mut current = entry("a", 1, "RT-current");
    current.generation = 141;
    let mut replaced = entry("a", 1, "RT-replaced");
    replaced.generation = 139;
    let later = entry("a", 2, "RT-later");
    let newest = newest_per_slot(vec![current.clone(), replaced]);
    assert_eq!(newest["a"].tokens.refresh_token.expose(), "RT-current");
    // Among one login's entries, the later write wins as before.
    let mut next = later;
    next.generation = 141;
    let newest = newest_per_slot(vec![current, next]);
    assert_eq!(newest["a"].tokens.refresh_token.expose(), "RT-later");
}
