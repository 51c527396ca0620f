//! Writes a finished login into a Claude Code store (`sessctl login --claude-code DIR`):
//! creates DIR (mode 0700) when missing, takes Claude Code's refresh locks, re-reads the
//! store, judges what it holds (the rules: `crate::daemon::core::login::claude_code`),
//! and writes the new login under the storage-write lock, keeping every top-level field.
//! The tokens go nowhere else: not to sessctl's store, journal or log.

use std::path::Path;
use std::time::Instant;

use chrono::Utc;

use crate::account::{AccountKey, Match};
use crate::claude_code::{
    OAuthTokens, RefreshLockGuard, StoreContents, StoreDocument, StoreWriteLock,
};
use crate::secret::Secret;
use crate::store::StoreError;

use crate::daemon::core::login::claude_code::ClaudeCodeLogin;
use crate::daemon::core::reports::JobResult;

use super::JobContext;
use super::claude_code::{LOCK_WAIT, blocking, read, store_of, take_refresh_lock, to_store};

/// How the store's current contents are replaced.
enum Replace {
    /// A new `claudeAiOauth` (nothing there, or another login's leftovers).
    Whole(StoreDocument),
    /// The same account's login: its other fields are kept.
    Tokens(StoreDocument),
}

impl JobContext {
    /// Writes `login` into its Claude Code store (module header), reporting back.
    pub fn claude_code_login(&self, mut login: Box<ClaudeCodeLogin>) {
        let ctx = self.clone();
        tokio::spawn(async move {
            login.outcome = Some(ctx.place_in_store(&login).await);
            ctx.report(JobResult::ClaudeCodeLogin(login));
        });
    }

    async fn place_in_store(&self, login: &ClaudeCodeLogin) -> Result<Option<Secret>, String> {
        let dir = login.dir.clone();
        blocking(move || crate::claude_code::store::ensure_private_dir(&dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot create {}: {e}", login.dir.display()))?;
        let lock = take_refresh_lock(&login.target, &login.dir)
            .await
            .map_err(|e| format!("Claude Code's refresh lock in {}: {e}", login.dir.display()))?;
        let dir = login.dir.clone();
        let contents = blocking(move || read(&dir))
            .await
            .and_then(|r| r)
            .map_err(|e| e.to_string())?;
        let (replace, replaced) = self.judge(login, contents).await?;
        let tokens = to_store(&login.success.tokens);
        write(&login.dir, lock, replace, tokens)
            .await
            .map_err(|e| e.to_string())?;
        Ok(replaced)
    }

    /// What to do with what the store holds: replace it (and which live refresh token
    /// that retires), or refuse and say why.
    async fn judge(
        &self,
        login: &ClaudeCodeLogin,
        contents: StoreContents,
    ) -> Result<(Replace, Option<Secret>), String> {
        let (document, tokens) = match contents {
            StoreContents::Missing | StoreContents::Empty => {
                return Ok((Replace::Whole(StoreDocument::new()), None));
            }
            StoreContents::NoOAuth(document) | StoreContents::Blanked { document, .. } => {
                return Ok((Replace::Whole(document), None));
            }
            StoreContents::Present { document, tokens } => (document, tokens),
        };
        if login.expected.as_ref() == Some(&tokens.refresh_token) {
            // The slot's own login: dead (inactive slot) or live (a re-login).
            let replaced = (!login.expected_dead).then_some(tokens.refresh_token);
            return Ok((Replace::Tokens(document), replaced));
        }
        let theirs = self.account_of(login, &tokens).await;
        let same = (theirs.as_ref())
            .map(|theirs| (login.key.as_ref()).is_some_and(|k| k.matches(theirs) != Match::None));
        match (theirs, same) {
            (_, Some(true)) => Ok((Replace::Tokens(document), Some(tokens.refresh_token))),
            // The slot's own dir, rotated or logged in again since the slot last looked.
            (None, _) if login.own_dir => {
                Ok((Replace::Whole(document), Some(tokens.refresh_token)))
            }
            (Some(theirs), _) => Err(format!(
                "{} holds the Claude Code login of {}, another account; log it out there first (CLAUDE_CONFIG_DIR={} claude, then /logout), or choose another dir",
                login.dir.display(),
                theirs.label(),
                login.dir.display()
            )),
            (None, _) => Err(format!(
                "{} holds a Claude Code login sessctl cannot identify without using its refresh token; keep it as a slot (sessctl adopt NAME --claude-code {}), or log it out there first (CLAUDE_CONFIG_DIR={} claude, then /logout), or choose another dir",
                login.dir.display(),
                login.dir.display(),
                login.dir.display()
            )),
        }
    }

    /// The account of the store's login, when its access token is still valid and the
    /// provider names accounts; never presents the refresh token.
    async fn account_of(
        &self,
        login: &ClaudeCodeLogin,
        tokens: &OAuthTokens,
    ) -> Option<AccountKey> {
        let now = Utc::now().timestamp_millis();
        if tokens.expires_at_ms.is_none_or(|at| at <= now) {
            return None;
        }
        let identity = self
            .oauth
            .userinfo(&login.provider, &tokens.access_token)
            .await
            .ok()??;
        AccountKey::new(&login.provider.name, &identity)
    }
}

/// Writes the login under the storage-write lock while `lock` (the refresh locks) is held.
async fn write(
    dir: &Path,
    lock: RefreshLockGuard,
    replace: Replace,
    tokens: OAuthTokens,
) -> Result<(), StoreError> {
    let dir = dir.to_path_buf();
    blocking(move || {
        let write_lock = StoreWriteLock::acquire(&dir, Instant::now() + LOCK_WAIT)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let document = match replace {
            Replace::Whole(mut document) => {
                document.set_login(&tokens);
                document
            }
            Replace::Tokens(mut document) => {
                document.set_tokens(&tokens);
                document
            }
        };
        let result = store_of(&dir)
            .write(&document, &write_lock)
            .map_err(|e| StoreError::Unavailable(e.to_string()));
        drop(write_lock);
        drop(lock);
        result
    })
    .await
    .and_then(|r| r)
}
