//! Why a slot is not active: the one `reason` type shared by the state file, the `status`
//! reply, the CLI's advice, the alerts and the daemon's log. Its strings are the `reason`
//! values of the state file and `status --json`, and never change (fields of `status
//! --json` are only ever added). Pure data; it never holds a token or an error text (that
//! is `last_refresh_error`).

use serde::{Deserialize, Serialize};

use crate::oauth::PermanentReason;

/// Why a slot is not active; serialized as its `snake_case` name (`session_expired`).
///
/// A string this build does not know (a state file or reply from a newer or older
/// sessctl) loads as [`SlotReason::Other`] holding that string verbatim, and is written
/// back unchanged: the slot is kept, shown and logged with it, and the CLI advises as for
/// an ended login. Only a `reason` that is not a string at all fails to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotReason {
    /// Inactive: the provider refused the refresh token (`invalid_grant`).
    SessionExpired,
    /// Inactive: the provider refused sessctl's client (`invalid_client`,
    /// `unauthorized_client`).
    ClientRejected,
    /// Inactive: the credential store has no item for the slot.
    CredentialsMissing,
    /// Inactive: the slot's stored item cannot be read.
    CredentialsUnreadable,
    /// Inactive: the store handed back an older copy of the slot's item than the daemon
    /// already wrote; its refresh token was spent, so it is never presented.
    StaleCredentials,
    /// Inactive: the slot's provider is not in the config.
    UnknownProvider,
    /// Degraded: a token request failed transiently; retried with backoff.
    RefreshFailed,
    /// Degraded: the last token reply rotated the refresh token (kept) but carried no
    /// usable access token; refreshed again soon.
    TokenReplyUnusable,
    /// Degraded: the slot's newest tokens are only in memory until the credential store
    /// takes them.
    CredentialStoreUnavailable,
    /// A reason this build does not know, kept as read (see the type's doc).
    #[serde(untagged)]
    Other(String),
}

impl SlotReason {
    /// Every reason this build knows, for tests and docs.
    pub const KNOWN: [SlotReason; 9] = [
        SlotReason::SessionExpired,
        SlotReason::ClientRejected,
        SlotReason::CredentialsMissing,
        SlotReason::CredentialsUnreadable,
        SlotReason::StaleCredentials,
        SlotReason::UnknownProvider,
        SlotReason::RefreshFailed,
        SlotReason::TokenReplyUnusable,
        SlotReason::CredentialStoreUnavailable,
    ];

    /// The reason as written in the state file and `status --json` (for logs and text).
    pub fn as_str(&self) -> &str {
        match self {
            SlotReason::SessionExpired => "session_expired",
            SlotReason::ClientRejected => "client_rejected",
            SlotReason::CredentialsMissing => "credentials_missing",
            SlotReason::CredentialsUnreadable => "credentials_unreadable",
            SlotReason::StaleCredentials => "stale_credentials",
            SlotReason::UnknownProvider => "unknown_provider",
            SlotReason::RefreshFailed => "refresh_failed",
            SlotReason::TokenReplyUnusable => "token_reply_unusable",
            SlotReason::CredentialStoreUnavailable => "credential_store_unavailable",
            SlotReason::Other(reason) => reason,
        }
    }
}

impl std::fmt::Display for SlotReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<PermanentReason> for SlotReason {
    fn from(reason: PermanentReason) -> Self {
        match reason {
            PermanentReason::SessionExpired => SlotReason::SessionExpired,
            PermanentReason::ClientRejected => SlotReason::ClientRejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Today's strings, pinned: the state file and `status --json` must keep them.
    const TODAY: [(SlotReason, &str); 9] = [
        (SlotReason::SessionExpired, "session_expired"),
        (SlotReason::ClientRejected, "client_rejected"),
        (SlotReason::CredentialsMissing, "credentials_missing"),
        (SlotReason::CredentialsUnreadable, "credentials_unreadable"),
        (SlotReason::StaleCredentials, "stale_credentials"),
        (SlotReason::UnknownProvider, "unknown_provider"),
        (SlotReason::RefreshFailed, "refresh_failed"),
        (SlotReason::TokenReplyUnusable, "token_reply_unusable"),
        (
            SlotReason::CredentialStoreUnavailable,
            "credential_store_unavailable",
        ),
    ];

    #[test]
    fn every_known_reason_round_trips_to_todays_string() {
        assert_eq!(TODAY.map(|(reason, _)| reason), SlotReason::KNOWN);
        for (reason, text) in TODAY {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(reason.as_str(), text);
            assert_eq!(reason.to_string(), text);
            assert_eq!(serde_json::from_str::<SlotReason>(&json).unwrap(), reason);
        }
    }

    #[test]
    fn an_unknown_reason_loads_and_is_written_back_unchanged() {
        let reason: SlotReason = serde_json::from_str("\"quota_exhausted\"").unwrap();
        assert_eq!(reason, SlotReason::Other("quota_exhausted".to_owned()));
        assert_eq!(reason.as_str(), "quota_exhausted");
        assert_eq!(
            serde_json::to_string(&reason).unwrap(),
            "\"quota_exhausted\""
        );
    }

    #[test]
    fn a_reason_that_is_not_a_string_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<SlotReason>("7").is_err());
        assert!(
            serde_json::from_str::<Option<SlotReason>>("null")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn permanent_refusals_map_to_their_reasons() {
        assert_eq!(
            SlotReason::from(PermanentReason::SessionExpired),
            SlotReason::SessionExpired
        );
        assert_eq!(
            SlotReason::from(PermanentReason::ClientRejected),
            SlotReason::ClientRejected
        );
    }
}
