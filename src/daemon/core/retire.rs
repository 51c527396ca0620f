//! Retiring refresh tokens that no slot holds any more, so that no grant outlives the login
//! it belonged to: the token a re-login replaced, the rotated token of a refresh that was
//! still running when a re-login replaced its login, a login that lost a race or was
//! refused. Revocation is best effort (a job that logs its outcome, never the token).
//!
//! A replaced token is revoked only once the slot's new tokens are durable: in the store, or
//! in the write-ahead journal (a login's tokens, `crate::daemon::core::login::journaled`:
//! the next start replays them over the old item, as it does a refresh's). Until then the
//! store still holds the old item, and revoking it first would leave nothing usable after a
//! crash. A token some slot still holds (a provider that does not rotate, the same token
//! logged in twice) is never revoked.

use crate::secret::Secret;
use crate::store::{StoreError, StoredCredentials};

use crate::daemon::core::Manager;
use crate::daemon::core::orders::JobOrder;
use crate::daemon::core::reports::RefreshOutcome;
use crate::daemon::core::slot::{Creds, Stored};

/// A job that was running for a login when a newer login replaced it. Its result is
/// dropped; the refresh token it carries (or, failing that, the one it was sent with) is
/// retired.
pub(in crate::daemon) struct ReplacedJob {
    pub provider: String,
    pub refresh_token: Option<Secret>,
}

impl Manager {
    /// Revokes `token` at `provider` (reason `why`, for the log), unless a slot still holds
    /// it. While slot `name`'s own tokens are not durable yet (neither stored nor a
    /// journaled login), the token (the store's item may still be it) waits on the slot
    /// and is revoked once they are.
    pub(in crate::daemon) fn retire(
        &mut self,
        name: &str,
        provider: &str,
        token: Secret,
        why: &'static str,
    ) {
        if let Some(slot) = self.slots.get_mut(name)
            && slot.record.provider == provider
            && !slot.login_journaled
            && matches!(
                slot.creds,
                Creds::Present {
                    stored: Stored::No { .. },
                    ..
                }
            )
        {
            slot.superseded.push(token);
            return;
        }
        self.revoke_unheld(name, provider, token, why);
    }

    /// Revokes `token` at `provider` now, unless a slot holds it (a provider that does not
    /// rotate, the same token logged in twice).
    pub(in crate::daemon) fn revoke_unheld(
        &mut self,
        name: &str,
        provider: &str,
        token: Secret,
        why: &'static str,
    ) {
        let held = self
            .slots
            .values()
            .any(|s| s.creds.tokens().is_some_and(|t| t.refresh_token == token));
        if held {
            tracing::debug!(
                slot = name,
                "not revoking {why}: a slot still holds its token"
            );
            return;
        }
        if let Some(provider) = self.config.providers.get(provider) {
            // Sent once the state file no longer needs it: a crash before then restarts from
            // a state that may still hold its lineage (a logout or re-login not yet saved),
            // and the journal would hand the token back to it.
            let order = JobOrder::Revoke {
                slot: name.to_owned(),
                provider: provider.clone(),
                token,
                why,
            };
            self.persist();
            self.revoke_when_durable(order);
        } else {
            tracing::warn!(
                slot = name,
                "cannot revoke {why}: provider {provider} is not in the configuration"
            );
        }
    }

    /// Slot `name`'s tokens are durable: revokes the tokens of the logins it replaced.
    pub(in crate::daemon) fn revoke_superseded(&mut self, name: &str) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let provider = slot.record.provider.clone();
        for token in std::mem::take(&mut slot.superseded) {
            self.retire(name, &provider, token, "a replaced login");
        }
    }

    /// A refresh finished for a login that was replaced meanwhile: retires the token it
    /// rotated to (or, when it failed transiently, the one it was sent with).
    pub(in crate::daemon) fn retire_dropped_refresh(
        &mut self,
        name: &str,
        generation: u64,
        outcome: RefreshOutcome,
    ) {
        let Some(replaced) = self.replaced_jobs.remove(&(name.to_owned(), generation)) else {
            return;
        };
        let token = match outcome {
            RefreshOutcome::Stored(item) => Some(item.tokens.refresh_token),
            RefreshOutcome::Unsaved { tokens, .. } | RefreshOutcome::Conflict { tokens, .. } => {
                Some(tokens.refresh_token)
            }
            RefreshOutcome::Transient { .. } => replaced.refresh_token,
            // The provider already ended that session.
            RefreshOutcome::Permanent { .. } => None,
        };
        if let Some(token) = token {
            self.retire(
                name,
                &replaced.provider,
                token,
                "a refresh of a replaced login",
            );
        }
    }

    /// A credential load finished for a login that was replaced meanwhile: the item it read
    /// is the replaced login's.
    pub(in crate::daemon) fn retire_dropped_load(
        &mut self,
        name: &str,
        generation: u64,
        result: Result<Option<StoredCredentials>, StoreError>,
    ) {
        let Some(replaced) = self.replaced_jobs.remove(&(name.to_owned(), generation)) else {
            return;
        };
        let current = self.slots.get(name).map_or(0, |s| s.record.generation);
        if let Ok(Some(item)) = result
            && item.generation < current
        {
            self.retire(
                name,
                &replaced.provider,
                item.tokens.refresh_token,
                "a replaced login",
            );
        }
    }
}
