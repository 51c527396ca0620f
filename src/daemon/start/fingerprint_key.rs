//! The fingerprint key at daemon start (`crate::fingerprint`): read, or created when there
//! is none, from the keychain (or, with `credential_store: file`, the key file beside the
//! credentials file). Without it (keychain unreachable, key malformed) this run tells a new
//! Claude Code login from the dead one only by the token it holds in memory, as before
//! keyed fingerprints: said once, never fatal.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::fingerprint::{self, FingerprintKey};
use crate::store::{StoreKind, read_or_create_item};

/// How long the start waits for the keychain: one that does not answer must not keep the
/// daemon from starting (the journal's key waits as long).
const KEYCHAIN_AT_START: Duration = Duration::from_secs(10);

/// The key of this run, if it can be had.
pub async fn read(kind: StoreKind, credentials_file: &Path) -> Option<Arc<FingerprintKey>> {
    let file = credentials_file.with_file_name(fingerprint::KEY_FILE);
    let task = tokio::task::spawn_blocking(move || match kind {
        StoreKind::Keychain => read_or_create_item(fingerprint::KEY_ACCOUNT, || {
            FingerprintKey::generate().encode()
        })
        .map_err(|e| e.to_string())
        .and_then(|text| FingerprintKey::decode(&text).map_err(|e| e.to_string())),
        StoreKind::File => FingerprintKey::read_or_create_file(&file).map_err(|e| e.to_string()),
    });
    let why = match tokio::time::timeout(KEYCHAIN_AT_START, task).await {
        Ok(Ok(Ok(key))) => return Some(Arc::new(key)),
        Ok(Ok(Err(why))) => why,
        Ok(Err(e)) => format!("key task failed: {e}"),
        Err(_) => format!(
            "the keychain did not answer within {} s",
            KEYCHAIN_AT_START.as_secs()
        ),
    };
    tracing::warn!(
        "no fingerprint key this run ({why}): a login Claude Code made while the daemon was stopped is not told from the one that died"
    );
    None
}
