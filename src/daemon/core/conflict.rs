//! What to do when the store refuses to take tokens this daemon holds, because the item it
//! holds is not the one the write expected. The tokens in hand are the newest of their
//! login: a refresh just rotated them at the provider (the refresh token they replace is
//! spent), or a login just issued them. Dropping them would leave the store's older copy
//! to be presented next, which a rotating provider treats as reuse and answers by revoking
//! the grant. So they are only ever given up for a *newer login* the store holds; any other
//! item is written over.

use chrono::{DateTime, Utc};

use crate::secret::Secret;
use crate::store::{ItemId, StoreError, Tokens, WriteCondition};

use crate::daemon::core::login::LoginWrite;
use crate::daemon::core::results::retry_time;
use crate::daemon::core::slot::{Creds, Slot, Stored};

/// How a refused write of tokens of login `generation` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::daemon) enum Resolution {
    /// Keep the tokens and write them again under this condition.
    Rewrite(WriteCondition),
    /// The store holds a newer login: it wins; the tokens in hand are retired.
    YieldToNewer,
}

/// Resolves a conflict: `found` is what the store holds (`None`: no item at all).
pub(in crate::daemon) fn resolve(generation: u64, found: Option<ItemId>) -> Resolution {
    match found {
        Some(found) if found.generation > generation => Resolution::YieldToNewer,
        // Another copy of this same login (an older version, ours or not): ours is newer.
        Some(found) if found.generation == generation => {
            Resolution::Rewrite(WriteCondition::Exact {
                generation,
                version: found.version,
            })
        }
        // An older login, or nothing (removed behind the daemon's back): ours replaces it.
        _ => Resolution::Rewrite(WriteCondition::NewLogin { generation }),
    }
}

/// What a conflict error says the store holds, or `None` when `error` is no conflict.
#[allow(
    clippy::option_option,
    reason = "None: not a conflict; Some(None): a conflict with nothing stored"
)]
pub(in crate::daemon) fn found_item(error: &StoreError) -> Option<Option<ItemId>> {
    match error {
        StoreError::Conflict { found_item, .. } => Some(*found_item),
        _ => None,
    }
}

/// A refresh of `slot` (login `generation`) rotated `tokens`, and the store refused them
/// (`error`). Keeps them, to be written over the stored item, unless a newer login is
/// stored: then the slot reloads it and the rotated refresh token is returned to retire.
pub(in crate::daemon) fn keep_rotated(
    slot: &mut Slot,
    generation: u64,
    tokens: Tokens,
    error: &StoreError,
    now: DateTime<Utc>,
) -> Result<(), Secret> {
    let name = &slot.name;
    match resolve(generation, found_item(error).flatten()) {
        Resolution::Rewrite(condition) => {
            tracing::warn!(
                slot = name,
                "{error}; keeping the rotated tokens (the newest of this login) and writing them over it"
            );
            slot.creds = Creds::Present {
                tokens,
                stored: Stored::No {
                    condition,
                    attempt: 0,
                    retry_at: now,
                },
            };
            Ok(())
        }
        Resolution::YieldToNewer => {
            tracing::warn!(
                slot = name,
                "{error}; a newer login is stored: reloading it and retiring the rotated tokens"
            );
            slot.creds = Creds::NotLoaded {
                attempt: 0,
                retry_at: now,
            };
            Err(tokens.refresh_token)
        }
    }
}

/// A write of `slot`'s held tokens (login `generation`, never stored) was refused with
/// `error` (not as unavailable). Tokens never stored are the newest of their login: they
/// are written over an older copy, never dropped for it (a login waiting on them waits
/// on); only a newer stored login wins, and the tokens given up for it are returned to
/// retire. `unit` jitters a retry. An unreadable item (which only a login may
/// replace, `crate::store`) keeps them held and retried, as an unavailable store does.
pub(in crate::daemon) fn write_refused(
    slot: &mut Slot,
    generation: u64,
    error: &StoreError,
    (now, unit): (DateTime<Utc>, f64),
) -> LoginWrite {
    let name = slot.name.clone();
    let resolution = found_item(error).map(|found| resolve(generation, found));
    if resolution == Some(Resolution::YieldToNewer) {
        tracing::error!(slot = name, "{error}; reloading the stored item");
        let held = std::mem::replace(
            &mut slot.creds,
            Creds::NotLoaded {
                attempt: 0,
                retry_at: now,
            },
        );
        return LoginWrite::Refused {
            error: error.to_string(),
            dropped: held.tokens().map(|t| t.refresh_token.clone()),
        };
    }
    let Creds::Present {
        stored:
            Stored::No {
                condition,
                attempt,
                retry_at,
            },
        ..
    } = &mut slot.creds
    else {
        return LoginWrite::Refused {
            error: error.to_string(),
            dropped: None,
        };
    };
    if let Some(Resolution::Rewrite(rewrite)) = resolution {
        tracing::warn!(slot = name, "{error}; writing the held tokens over it");
        *condition = rewrite;
        *retry_at = now;
        return LoginWrite::Pending;
    }
    tracing::error!(slot = name, "{error}; holding the tokens in memory");
    *attempt += 1;
    *retry_at = retry_time(now, *attempt, unit);
    LoginWrite::Unavailable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps, reason = "shaped like the value under test")]
    fn id(generation: u64, version: u64) -> Option<ItemId> {
        Some(ItemId {
            generation,
            version,
        })
    }

    #[test]
    fn a_newer_login_in_the_store_wins() {
        assert_eq!(resolve(3, id(4, 1)), Resolution::YieldToNewer);
    }

    #[test]
    fn another_version_of_the_same_login_is_written_over() {
        assert_eq!(
            resolve(3, id(3, 7)),
            Resolution::Rewrite(WriteCondition::Exact {
                generation: 3,
                version: 7
            })
        );
        assert_eq!(
            resolve(3, id(3, 1)),
            Resolution::Rewrite(WriteCondition::Exact {
                generation: 3,
                version: 1
            })
        );
    }

    #[test]
    fn an_older_login_or_a_missing_item_is_replaced() {
        let login = Resolution::Rewrite(WriteCondition::NewLogin { generation: 3 });
        assert_eq!(resolve(3, id(2, 9)), login);
        assert_eq!(resolve(3, None), login);
    }

    #[test]
    fn only_conflicts_name_a_found_item() {
        let conflict = StoreError::Conflict {
            slot: "work".into(),
            expected: String::new(),
            found: String::new(),
            found_item: id(1, 2),
        };
        assert_eq!(found_item(&conflict), Some(id(1, 2)));
        assert_eq!(found_item(&StoreError::Unavailable("x".into())), None);
    }
}
