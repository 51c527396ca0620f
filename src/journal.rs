//! The write-ahead journal: rotated tokens are made durable here, with one append and one
//! fsync, before the (slow) keychain write. A `kill -9`, crash or power loss after that fsync
//! loses nothing: the next daemon replays the journal into the store before it loads any
//! credentials ([`replay`]).
//!
//! Nothing readable without the keychain is ever written: every record is sealed with
//! XChaCha20-Poly1305 under a 256-bit key kept in the keychain itself (service `sessctl`,
//! account [`KEY_ACCOUNT`]; slot names cannot contain a dot, so it never clashes with a
//! slot), read or created once at start. A record is `len (u32 LE) | nonce (24) | sealed
//! JSON`. A record that is cut short (a crash mid-append) or does not open (another key) ends
//! the readable part: what came before is used, the rest reported, never a panic.
//!
//! At replay an entry's item ([`Entry::item`]) replaces a stored item of an older
//! (generation, version), or none; a stored item as new or newer is kept.
//!
//! Entries are retired per slot once the store holds those tokens (or something newer);
//! when no slot has an entry outstanding, the file is truncated. With `credential_store:
//! file` there is no journal: that store's write is itself an fsynced atomic replace.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::store::{StoredCredentials, Tokens};

/// The journal's file name, in the state directory.
pub const FILE_NAME: &str = "journal";
/// The keychain account of the journal key (service `sessctl`). Starts with a dot: slot
/// names cannot, and code that lists slot items skips such accounts.
pub const KEY_ACCOUNT: &str = ".journal-key";
/// Bound into every record's tag: a record from anything else does not open.
const AAD: &[u8] = b"sessctl journal v1";
const NONCE_LEN: usize = 24;
/// No record is near this; a length above it means the rest of the file is not records.
const MAX_RECORD: usize = 1 << 20;

/// Why the journal cannot be used or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {action}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal key item in the keychain is malformed")]
    BadKey,
    #[error("cannot encode a journal entry: {0}")]
    Encode(String),
}

/// One rotated reply: the tokens, and the write they are waiting for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub slot: String,
    pub generation: u64,
    /// The version the stored item must have for these tokens to replace it (a refresh);
    /// `None` for a login's first write.
    pub replaces_version: Option<u64>,
    pub tokens: Tokens,
}

impl Entry {
    /// The stored item these tokens became (or were about to become): the store's write
    /// gives a refresh `version + 1` and a login version 1.
    pub fn item(&self) -> StoredCredentials {
        StoredCredentials {
            generation: self.generation,
            version: self.replaces_version.map_or(1, |v| v.saturating_add(1)),
            // The store's restore keeps the label of the item it replaces.
            provider: None,
            account: None,
            tokens: self.tokens.clone(),
        }
    }
}

/// The 256-bit key, as it is kept in the keychain (base64).
pub struct JournalKey(Key);

impl JournalKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        JournalKey(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// Parses the keychain item's text.
    pub fn decode(text: &str) -> Result<Self, JournalError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| JournalError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| JournalError::BadKey)?;
        Ok(JournalKey(key.into()))
    }

    /// The text stored in the keychain item.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_slice())
    }
}

/// The open journal: appends, retires, truncates.
pub struct Journal {
    path: PathBuf,
    cipher: XChaCha20Poly1305,
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    /// Entries appended and not yet known to be in the store, by slot: the identity
    /// (generation, version) of the item each was to become. Entries already in the file at
    /// open count as (0, 0): any item the store takes for the slot retires them.
    outstanding: BTreeMap<String, Vec<(u64, u64)>>,
}

impl Journal {
    /// Opens (creating, 0600) the journal at `path` for appending; `outstanding` names
    /// slots whose entries already in the file are not in the store yet.
    pub fn open(
        path: &Path,
        key: &JournalKey,
        outstanding: Vec<String>,
    ) -> Result<Self, JournalError> {
        let file = fsutil::private_file_options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| io_error("open", path, source))?;
        Ok(Journal {
            path: path.to_owned(),
            cipher: XChaCha20Poly1305::new(&key.0),
            inner: Mutex::new(Inner {
                file,
                outstanding: (outstanding.into_iter())
                    .map(|slot| (slot, vec![(0, 0)]))
                    .collect(),
            }),
        })
    }

    /// Appends `entry` and fsyncs: when this returns Ok, the tokens survive any crash.
    pub fn append(&self, entry: &Entry) -> Result<(), JournalError> {
        let record = seal(&self.cipher, entry)?;
        let mut inner = self.lock();
        inner
            .file
            .write_all(&record)
            .and_then(|()| inner.file.sync_data())
            .map_err(|source| io_error("append", &self.path, source))?;
        let item = entry.item();
        (inner.outstanding.entry(entry.slot.clone()).or_default())
            .push((item.generation, item.version));
        Ok(())
    }

    /// The store now holds item `held` (generation, version) of `slot`, or with `None` no
    /// longer has the slot at all: the slot's entries it holds or supersedes are retired;
    /// with none left anywhere, the file is emptied. An entry newer than `held` stays (the
    /// write of a replaced login's refresh may be refused while the current login's newer
    /// tokens are journaled and not stored yet).
    pub fn settle(&self, slot: &str, held: Option<(u64, u64)>) {
        let mut inner = self.lock();
        let Some(entries) = inner.outstanding.get_mut(slot) else {
            return;
        };
        entries.retain(|&item| held.is_some_and(|held| item > held));
        if entries.is_empty() {
            inner.outstanding.remove(slot);
        }
        if !inner.outstanding.is_empty() {
            return;
        }
        if let Err(e) = inner.file.set_len(0) {
            tracing::warn!("cannot empty the journal {}: {e}", self.path.display());
        }
    }

    /// True while `slot` has an entry the store does not hold yet.
    pub fn holds(&self, slot: &str) -> bool {
        self.lock().outstanding.contains_key(slot)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a journal file holds: its readable entries in order, and what was wrong with the
/// rest (if anything).
pub struct Contents {
    pub entries: Vec<Entry>,
    pub problem: Option<String>,
}

/// Reads every record of the journal at `path` (none when it does not exist).
pub fn read(path: &Path, key: &JournalKey) -> Result<Contents, JournalError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => file
            .read_to_end(&mut bytes)
            .map_err(|source| io_error("read", path, source))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(source) => return Err(io_error("read", path, source)),
    };
    Ok(parse(&bytes, &XChaCha20Poly1305::new(&key.0)))
}

/// Only the newest entry of each slot: the one whose item (generation, version) is the
/// newest, the later in file order among equals. Not simply the last: the refresh of a
/// login a newer one replaced may be journaled after the newer login's own refresh.
pub fn newest_per_slot(entries: Vec<Entry>) -> BTreeMap<String, Entry> {
    let mut newest: BTreeMap<String, Entry> = BTreeMap::new();
    for entry in entries {
        let item = entry.item();
        let replaces = newest.get(&entry.slot).is_none_or(|kept| {
            let kept = kept.item();
            (item.generation, item.version) >= (kept.generation, kept.version)
        });
        if replaces {
            newest.insert(entry.slot.clone(), entry);
        }
    }
    newest
}

fn seal(cipher: &XChaCha20Poly1305, entry: &Entry) -> Result<Vec<u8>, JournalError> {
    let plain = serde_json::to_vec(entry).map_err(|e| JournalError::Encode(e.to_string()))?;
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: &plain,
                aad: AAD,
            },
        )
        .map_err(|_| JournalError::Encode("encryption failed".into()))?;
    let len = u32::try_from(NONCE_LEN + sealed.len())
        .map_err(|_| JournalError::Encode("entry too large".into()))?;
    let mut record = Vec::with_capacity(4 + len as usize);
    record.extend_from_slice(&len.to_le_bytes());
    record.extend_from_slice(&nonce);
    record.extend_from_slice(&sealed);
    Ok(record)
}

fn parse(bytes: &[u8], cipher: &XChaCha20Poly1305) -> Contents {
    let mut entries = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match open_record(&bytes[at..], cipher) {
            Ok((entry, used)) => {
                entries.push(entry);
                at += used;
            }
            Err(why) => {
                let problem = format!(
                    "{} byte(s) from offset {at} unreadable ({why}); {} entr(y/ies) before them were read",
                    bytes.len() - at,
                    entries.len()
                );
                return Contents {
                    entries,
                    problem: Some(problem),
                };
            }
        }
    }
    Contents {
        entries,
        problem: None,
    }
}

/// One record at the start of `bytes`: the entry and how many bytes it took.
fn open_record(bytes: &[u8], cipher: &XChaCha20Poly1305) -> Result<(Entry, usize), &'static str> {
    let len_bytes: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("a record cut short")?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if !(NONCE_LEN..=MAX_RECORD).contains(&len) {
        return Err("not a record");
    }
    let body = bytes.get(4..4 + len).ok_or("a record cut short")?;
    let (nonce, sealed) = body.split_at(NONCE_LEN);
    let plain = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: AAD,
            },
        )
        .map_err(|_| "does not open with this key")?;
    let entry = serde_json::from_slice(&plain).map_err(|_| "not a journal entry")?;
    Ok((entry, 4 + len))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> JournalError {
    JournalError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
