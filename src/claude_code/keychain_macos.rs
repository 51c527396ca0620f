//! macOS: Claude Code's credentials as a generic password in the login keychain, read and
//! written through `/usr/bin/security` the way Claude Code does (service from
//! [`ConfigDir::keychain_service`], account `$USER`, the secret hex-encoded with `-X`).
//!
//! The secret goes to `security` on stdin (`security -i`), never on its command line, where
//! other users could read it in the process list. Type-checked here; not yet run on a Mac.

use std::io::Write;
use std::process::{Command, Stdio};

use super::credentials::{self, StoreContents, StoreDocument};
use super::location::{ConfigDir, keychain_account};
use super::store::StoreError;

/// The system tool Claude Code itself uses for its keychain item.
const SECURITY: &str = "/usr/bin/security";
/// `security`'s exit status when the item does not exist (errSecItemNotFound).
const NOT_FOUND_STATUS: i32 = 44;

fn account() -> String {
    keychain_account(std::env::var("USER").ok().as_deref())
}

fn keychain_error(service: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Keychain {
        service: service.to_owned(),
        detail: detail.into(),
    }
}

/// Reads the item of `config`.
pub fn read(config: &ConfigDir) -> Result<StoreContents, StoreError> {
    let service = config.keychain_service();
    let output = Command::new(SECURITY)
        .args([
            "find-generic-password",
            "-a",
            &account(),
            "-w",
            "-s",
            &service,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| keychain_error(&service, format!("cannot run {SECURITY}: {err}")))?;
    if output.status.code() == Some(NOT_FOUND_STATUS) {
        return Ok(StoreContents::Missing);
    }
    if !output.status.success() {
        return Err(keychain_error(
            &service,
            format!(
                "{SECURITY} find-generic-password failed ({})",
                output.status
            ),
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let text = text.trim_end_matches('\n');
    // `-w` prints a secret that is not plain text as hex.
    let bytes = decode_hex(text).unwrap_or_else(|| text.as_bytes().to_vec());
    credentials::parse(&bytes).map_err(|source| StoreError::Format {
        path: format!("keychain:{service}").into(),
        source,
    })
}

/// Replaces the item of `config` with `document`.
pub fn write(config: &ConfigDir, document: &StoreDocument) -> Result<(), StoreError> {
    let service = config.keychain_service();
    let hex: String = document
        .to_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let command = format!(
        "add-generic-password -U -a \"{}\" -s \"{}\" -X \"{hex}\"\n",
        account(),
        service
    );
    let mut child = Command::new(SECURITY)
        .arg("-i")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| keychain_error(&service, format!("cannot run {SECURITY}: {err}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(command.as_bytes())
            .map_err(|err| keychain_error(&service, format!("cannot talk to {SECURITY}: {err}")))?;
    }
    let status = child
        .wait()
        .map_err(|err| keychain_error(&service, format!("{SECURITY} did not finish: {err}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(keychain_error(
            &service,
            format!("{SECURITY} add-generic-password failed ({status})"),
        ))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}
