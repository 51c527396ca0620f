//! Keyed fingerprints of refresh tokens: how the daemon remembers *which* refresh token
//! it saw die without ever keeping the token. A fingerprint is HMAC-SHA256 (RFC 2104) of
//! the token under a 256-bit key that never leaves the keychain (service `sessctl`,
//! account [`KEY_ACCOUNT`], like the journal's key in `crate::journal`); with
//! `credential_store: file` the key is the 0600 file [`KEY_FILE`] beside that store's
//! credentials file, so it is exactly as protected as the tokens themselves.
//!
//! Without the key a fingerprint cannot be computed, or checked against a guessed token:
//! the state file, where fingerprints are kept, reveals nothing about a token. A plain hash
//! would let anyone holding a candidate token test it; the key is what prevents that.
//! Never a token here, in a log or in an error.

use std::path::Path;

use base64::Engine;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{KeyInit, OsRng};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// The keychain account of the fingerprint key (service `sessctl`). Starts with a dot:
/// slot names cannot, and code that lists slot items skips such accounts.
pub const KEY_ACCOUNT: &str = ".fingerprint-key";
/// The key's file name beside the file store's credentials file.
pub const KEY_FILE: &str = "fingerprint-key";
/// Bound into every fingerprint: one of anything else never matches.
const DOMAIN: &[u8] = b"sessctl refresh-token fingerprint v1\0";
/// SHA-256's block size, which HMAC pads its key to.
const BLOCK: usize = 64;

/// Why the key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error("fingerprint key is malformed")]
    BadKey,
    #[error("fingerprint key file {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The 256-bit key, as it is kept (base64).
#[derive(Clone)]
pub struct FingerprintKey([u8; 32]);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(..)")
    }
}

impl FingerprintKey {
    /// A fresh random key (the operating system's generator).
    pub fn generate() -> Self {
        FingerprintKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// Parses the kept text.
    pub fn decode(text: &str) -> Result<Self, FingerprintError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| FingerprintError::BadKey)?;
        Ok(FingerprintKey(
            bytes.try_into().map_err(|_| FingerprintError::BadKey)?,
        ))
    }

    /// The text kept in the keychain item or key file.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// The fingerprint of refresh token `token` (base64 of the HMAC).
    pub fn of(&self, token: &Secret) -> String {
        let mac = hmac_sha256(&self.0, &[DOMAIN, token.expose().as_bytes()]);
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac)
    }

    /// The key in file `path` (the file store's), created (0600) when there is none.
    pub fn read_or_create_file(path: &Path) -> Result<Self, FingerprintError> {
        let io = |source| FingerprintError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::decode(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                crate::fsutil::write_atomic_private(path, key.encode().as_bytes()).map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts` under `key` (at most one block).
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut padded = [0u8; BLOCK];
    padded[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(padded.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(padded.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        use std::fmt::Write;
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    #[test]
    fn hmac_matches_rfc_4231_test_cases_1_and_2() {
        let one = hmac_sha256(&[0x0b; 20], &[b"Hi ", b"There"]);
        assert_eq!(
            hex(&one),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let two = hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(
            hex(&two),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_fingerprint_depends_on_the_token_and_the_key_and_shows_neither() {
        let key = FingerprintKey::generate();
        let token = Secret::new("rt-secret-value");
        let print = key.of(&token);
        assert_eq!(print, key.of(&Secret::new("rt-secret-value")));
        assert_ne!(print, key.of(&Secret::new("rt-secret-valuf")));
        assert_ne!(print, FingerprintKey::generate().of(&token));
        assert!(!print.contains("rt-secret"));
        let again = FingerprintKey::decode(&key.encode()).unwrap();
        assert_eq!(again.of(&token), print);
        assert!(FingerprintKey::decode("c2hvcnQ=").is_err());
        assert_eq!(format!("{key:?}"), "FingerprintKey(..)");
    }

    #[cfg(unix)]
    #[test]
    fn the_file_stores_key_is_created_private_once_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sessctl-fpkey-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(KEY_FILE);
        let token = Secret::new("rt");
        let created = FingerprintKey::read_or_create_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let read = FingerprintKey::read_or_create_file(&path).unwrap();
        assert_eq!(created.of(&token), read.of(&token));
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            FingerprintKey::read_or_create_file(&path),
            Err(FingerprintError::BadKey)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
