//! The probe of an inactive Claude Code slot's store
//! (`crate::daemon::core::claude_code_reload`): a stat of the credentials file, a read only
//! when it changed, and, for a login other than the dead one whose access token is still
//! valid, the provider's account for it (never presenting its refresh token). No lock is
//! needed: Claude Code replaces the file atomically, and nothing is written.

use std::path::Path;

use chrono::Utc;

use crate::claude_code::{ConfigDir, StoreContents};

use crate::daemon::core::claude_code_reload::{Found, Probe, StoreStamp};
use crate::daemon::core::reports::JobResult;

use super::JobContext;
use super::claude_code::{blocking, from_store, read};

impl JobContext {
    /// Probes `probe`'s store (module header), reporting back.
    pub fn probe_claude_code(&self, mut probe: Box<Probe>) {
        let ctx = self.clone();
        tokio::spawn(async move {
            let dir = probe.dir.clone();
            let seen = probe.seen;
            let looked = blocking(move || look(&dir, seen)).await;
            let (stamp, found) = match looked {
                Ok((stamp, Some(contents))) => (stamp, ctx.judge_probe(&probe, contents).await),
                Ok((stamp, None)) => (stamp, Found::Unchanged),
                Err(e) => (None, Found::Failed(e.to_string())),
            };
            probe.stamp = stamp;
            probe.found = Some(found);
            ctx.report(JobResult::ClaudeCodeProbed(probe));
        });
    }

    async fn judge_probe(&self, probe: &Probe, contents: Result<StoreContents, String>) -> Found {
        let tokens = match contents {
            Ok(StoreContents::Present { tokens, .. }) => tokens,
            Ok(_) => return Found::Nothing,
            Err(e) => return Found::Failed(e),
        };
        if (probe.dead.as_ref()).is_some_and(|dead| dead.is(&tokens.refresh_token)) {
            tracing::debug!(
                slot = probe.name,
                "Claude Code's store still holds the login that died"
            );
            return Found::Nothing;
        }
        let tokens = from_store(&tokens, Utc::now());
        let fresh = tokens.expires_at.is_none_or(|at| at > Utc::now());
        let identity = match &probe.provider {
            Some(provider) if fresh => self
                .oauth
                .userinfo(provider, &tokens.access_token)
                .await
                .unwrap_or_else(|e| {
                    tracing::debug!(
                        slot = probe.name,
                        "cannot learn the new login's account: {e}"
                    );
                    None
                }),
            _ => None,
        };
        Found::Login { tokens, identity }
    }
}

/// The store file's stamp, and its contents when the stamp is not `seen`.
#[allow(
    clippy::type_complexity,
    reason = "a stamp and an optional read, each part named at its one caller"
)]
fn look(
    dir: &Path,
    seen: Option<StoreStamp>,
) -> (Option<StoreStamp>, Option<Result<StoreContents, String>>) {
    let path = ConfigDir::explicit(dir.to_path_buf()).credentials_path();
    let stamp = std::fs::metadata(&path).ok().map(|meta| StoreStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: inode(&meta),
    });
    if stamp.is_some() && stamp == seen {
        return (stamp, None);
    }
    (stamp, Some(read(dir).map_err(|e| e.to_string())))
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}
