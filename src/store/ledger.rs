//! The logout ledger: one reserved item (`.logouts`) recording, per slot name, the newest
//! login generation that was logged out. It lives in the credential store, not the state
//! file, so a state file restored from a backup cannot bring a logged-out slot back: any
//! slot record of that generation or older is known to be gone.
//!
//! Written before the slot's item is deleted (see the worker's `delete`): a crash between
//! the two leaves an item the ledger already marks as logged out, never the reverse.
//! Holds slot names and numbers only, never a token.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CredentialBackend, StoreError};

/// The reserved account of the ledger item (a leading `.`: never a slot name).
pub const LEDGER_ACCOUNT: &str = ".logouts";

/// The ledger item's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    #[serde(default)]
    logged_out: BTreeMap<String, u64>,
}

/// Every slot's newest logged-out generation. An unreadable ledger reads as empty (with a
/// warning): it only ever keeps old records from coming back, so losing it loses nothing.
pub fn read(backend: &mut dyn CredentialBackend) -> Result<BTreeMap<String, u64>, StoreError> {
    Ok(parse(backend.load_text(LEDGER_ACCOUNT)?).logged_out)
}

/// Records that `slot`'s logins up to `generation` are logged out.
pub fn record(
    backend: &mut dyn CredentialBackend,
    slot: &str,
    generation: u64,
) -> Result<(), StoreError> {
    let mut ledger = parse(backend.load_text(LEDGER_ACCOUNT)?);
    let entry = ledger.logged_out.entry(slot.to_owned()).or_insert(0);
    if *entry >= generation {
        return Ok(());
    }
    *entry = generation;
    let text = serde_json::to_string(&ledger)
        .map_err(|e| StoreError::Unavailable(format!("cannot serialize the logout ledger: {e}")))?;
    backend.save_text(LEDGER_ACCOUNT, &text)
}

fn parse(text: Option<String>) -> Ledger {
    let Some(text) = text else {
        return Ledger::default();
    };
    serde_json::from_str(&text).unwrap_or_else(|err| {
        tracing::warn!(
            "the logout ledger item ({LEDGER_ACCOUNT}) is unreadable ({}); starting a new one",
            super::describe_json_error(&err)
        );
        Ledger::default()
    })
}
