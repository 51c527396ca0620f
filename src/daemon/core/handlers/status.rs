//! `sessctl status`: the reply, every slot's health and quota, the credential store and the quota
//! cache, judged as of now. Built from the manager's state without any I/O.

use crate::protocol::{CacheStatus, QuotaStatus, Response, StatusReport};
use crate::state::SlotState;

use crate::daemon::core::{Manager, Reply};

impl Manager {
    pub(in crate::daemon) fn handle_status(&mut self, reply: Reply) {
        let _ = reply.send(Ok(Response::Status(self.status())));
    }

    /// The `status` reply.
    pub(in crate::daemon) fn status(&self) -> StatusReport {
        let now = self.now;
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            all_inactive: self.all_inactive(),
            credential_store: self.store_kind,
            credential_store_error: self
                .store_error
                .clone()
                .or_else(|| self.store_probe.error()),
            state_file_error: self.state_error.clone(),
            cache: CacheStatus {
                path: self.cache_path.clone(),
                updated_at: self.cache_written_at,
                stale: crate::cache::older_than(
                    self.cache_written_at,
                    now,
                    self.config.stale_after,
                ),
                error: self.cache_error.clone(),
            },
            slots: self
                .slots
                .values()
                .map(|slot| {
                    let mut status = slot.status();
                    status.quota = self.slot_quota(slot).map(|q| QuotaStatus {
                        stale: q.is_stale(now, self.config.stale_after),
                        windows: q.windows,
                        fetched_at: q.fetched_at,
                        error: q.error,
                        extra_usage: q.extra_usage,
                    });
                    status
                })
                .collect(),
            unplaced_credentials: self.unplaced.clone(),
            pending_revocations: self.revocations.entries.clone(),
            moving: self.use_in_progress(),
        }
    }

    /// True when there are slots and every one is inactive.
    pub(in crate::daemon) fn all_inactive(&self) -> bool {
        !self.slots.is_empty()
            && self
                .slots
                .values()
                .all(|s| s.record.state == SlotState::Inactive)
    }
}
