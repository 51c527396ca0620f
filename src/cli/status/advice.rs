//! What `status` tells the user about anything not healthy: what is wrong, and the next
//! step to take. Pure functions of the daemon's reply, the local clock and a few paths, so
//! every case is unit-tested; no I/O.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::cli::fixes;
use crate::cli::when::relative;
use crate::config::CredentialStoreKind;
use crate::protocol::{SlotStatus, StatusReport, UseInProgress};
use crate::slot_reason::SlotReason;
use crate::state::SlotState;

/// What advice needs besides the reply.
pub struct Advisor<'a> {
    pub now: DateTime<Utc>,
    pub config_file: &'a Path,
    pub state_file: &'a Path,
    pub credentials_file: &'a Path,
    /// The `sessctl login` command that logs a slot in again (name, provider).
    pub login_command: &'a dyn Fn(&str, &str) -> String,
}

impl Advisor<'_> {
    /// Lines about the daemon as a whole: the credential store, the state file, the cache.
    pub fn report(&self, report: &StatusReport) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(error) = &report.credential_store_error {
            lines.push(format!("credential store problem: {error}"));
            lines.push(format!(
                "  next: {}",
                self.store_fix(report.credential_store)
            ));
        }
        if let Some(error) = &report.state_file_error {
            lines.push(format!("state file problem: {error}"));
            lines.push(format!("  next: {}", fixes::state_file(self.state_file)));
        }
        for item in &report.unplaced_credentials {
            lines.push(format!("credential store problem: {}", item.problem));
            lines.push(format!("  next: {}", item.fix));
        }
        for pending in &report.pending_revocations {
            lines.push(format!(
                "refresh token of slot {} ({}) not revoked yet: {} attempt(s), the first {}, last error: {}; next try {}",
                pending.slot,
                pending.why,
                pending.attempts,
                relative(Some(pending.since), self.now),
                pending.last_error.as_deref().unwrap_or("none"),
                relative(Some(pending.next_attempt_at), self.now),
            ));
            lines.push(format!("  next: {}", fixes::PENDING_REVOCATIONS));
        }
        if let Some(moving) = &report.moving {
            lines.extend(self.moving(moving));
        }
        if let Some(error) = &report.cache.error {
            lines.push(format!("quota cache problem: {error}"));
            lines.push(format!(
                "  next: check that {} is writable; {}",
                report.cache.path.display(),
                fixes::SEE_LOGS
            ));
        } else if report.cache.stale && !report.slots.is_empty() {
            lines.push(format!(
                "quota cache {} is stale (written {}): the status line shows old figures",
                report.cache.path.display(),
                relative(report.cache.updated_at, self.now)
            ));
            lines.push(format!("  next: {}", fixes::SEE_LOGS));
        }
        lines
    }

    /// Lines about a `use` under way: which login goes where, and whether it is retried.
    fn moving(&self, moving: &UseInProgress) -> Vec<String> {
        let outgoing = moving.outgoing.as_ref().map_or(String::new(), |out| {
            format!(", slot {out}'s login out of it into sessctl's store")
        });
        let mut lines = vec![format!(
            "use in progress: slot {}'s login moving into Claude Code's store in {}{outgoing}",
            moving.slot,
            moving.dir.display()
        )];
        let next = match moving.next_attempt_at {
            Some(at) => format!(
                "not finished after {} attempt(s); the daemon tries again {} ({})",
                moving.attempts,
                relative(Some(at), self.now),
                fixes::SEE_LOGS
            ),
            None => "the daemon finishes it; until then neither slot refreshes".to_owned(),
        };
        lines.push(format!("  next: {next}"));
        lines
    }

    /// Lines under one slot's row: empty for a healthy slot.
    pub fn slot(&self, slot: &SlotStatus, store: CredentialStoreKind) -> Vec<String> {
        let mut lines: Vec<String> = (slot.claude_code_store.iter())
            .map(|store| format!("credentials: in Claude Code's store, {store}"))
            .collect();
        lines.extend(match slot.state {
            SlotState::Inactive => self.inactive(slot),
            SlotState::Degraded => self.degraded(slot, store),
            SlotState::Active => Vec::new(),
        });
        if slot.state != SlotState::Inactive {
            lines.extend(self.stale_quota(slot));
        }
        lines
    }

    /// The command that logs `slot` in again. A Claude Code slot's login goes into its
    /// config dir, or is Claude Code's own (which sessctl picks up by itself).
    fn relogin(&self, slot: &SlotStatus) -> String {
        let command = (self.login_command)(&slot.name, &slot.provider);
        let Some(dir) = &slot.claude_code_dir else {
            return command;
        };
        let own = crate::relogin::claude_code_own(dir);
        if command.ends_with("--refresh-token-stdin") {
            own
        } else {
            format!(
                "{command} (the login goes into {}), or log in with Claude Code itself: {own}",
                dir.display()
            )
        }
    }

    fn inactive(&self, slot: &SlotStatus) -> Vec<String> {
        let login = self.relogin(slot);
        let (what, next) = match &slot.reason {
            Some(SlotReason::UnknownProvider) => (
                format!("provider {} is not in the config", slot.provider),
                format!(
                    "add providers.{} to {}, or remove the slot: sessctl logout {}",
                    slot.provider,
                    self.config_file.display(),
                    slot.name
                ),
            ),
            Some(SlotReason::ClientRejected) => (
                "the provider refused sessctl's client (invalid_client)".to_owned(),
                format!(
                    "check providers.{}.client_id in {}, then log in again: {login}",
                    slot.provider,
                    self.config_file.display()
                ),
            ),
            Some(SlotReason::CredentialsMissing) => (
                "its credentials are gone from the credential store".to_owned(),
                format!("log in again: {login}"),
            ),
            Some(SlotReason::StaleCredentials) => (
                "the credential store holds an older copy of its item (restored from a backup?), whose refresh token was already used; sessctl does not present it".to_owned(),
                format!("put the newer item back and restart the daemon, or log in again: {login}"),
            ),
            Some(SlotReason::CredentialsUnreadable) => (
                "its stored credentials cannot be read".to_owned(),
                format!("log in again: {login}"),
            ),
            _ => (
                "the provider ended this login (its server-side session is gone)".to_owned(),
                format!("log in again: {login}"),
            ),
        };
        let mut lines = vec![format!("inactive: {what}")];
        lines.extend(
            slot.last_refresh_error
                .iter()
                .map(|e| format!("error: {e}")),
        );
        lines.push(format!("next: {next}"));
        lines
    }

    fn degraded(&self, slot: &SlotStatus, store: CredentialStoreKind) -> Vec<String> {
        if slot.reason == Some(SlotReason::CredentialStoreUnavailable) {
            return vec![
                "degraded: its newest tokens are held in memory until the credential store can take them".to_owned(),
                format!("next: {}", self.store_fix(store)),
            ];
        }
        let mut lines = Vec::new();
        if let Some(error) = &slot.last_refresh_error {
            lines.push(format!("error: {error}"));
        }
        let retry = match slot.next_refresh_at {
            Some(at) if at <= self.now => "retrying now".to_owned(),
            Some(at) => format!("retrying {}", relative(Some(at), self.now)),
            None => "retrying with backoff".to_owned(),
        };
        lines.push(format!("next: {retry}; {}", fixes::SEE_LOGS));
        lines
    }

    fn stale_quota(&self, slot: &SlotStatus) -> Vec<String> {
        let Some(quota) = slot.quota.as_ref().filter(|q| q.stale) else {
            return Vec::new();
        };
        let age = match quota.fetched_at {
            Some(at) => format!("last fetched {}", relative(Some(at), self.now)),
            None => "never fetched".to_owned(),
        };
        match (&quota.error, quota.fetched_at) {
            (Some(error), _) => vec![
                format!("quota stale ({age}): {error}"),
                format!("next: the daemon keeps retrying; {}", fixes::SEE_LOGS),
            ],
            (None, None) => vec![
                "quota: no figures yet".to_owned(),
                format!(
                    "next: the first fetch comes within minutes; if it does not, {}",
                    fixes::SEE_LOGS
                ),
            ],
            (None, Some(_)) => vec![
                format!("quota stale ({age}) and no fetch since"),
                format!(
                    "next: check in {} that provider {}'s usage_min_interval is shorter than stale_after (then restart the daemon); else {}",
                    self.config_file.display(),
                    slot.provider,
                    fixes::SEE_LOGS
                ),
            ],
        }
    }

    fn store_fix(&self, store: CredentialStoreKind) -> String {
        match store {
            CredentialStoreKind::Keychain => fixes::no_keychain(),
            CredentialStoreKind::File => fixes::credentials_file(self.credentials_file),
        }
    }
}
