//! Which account a login belongs to, and when two logins are the same account. An account
//! is its provider plus its normalized e-mail (trimmed, lower-cased), else its subject
//! (`sub`): nothing that changes from one login of the account to the next (never a time,
//! never a token), so logging in again always finds the account's slot. Pure data; the
//! daemon decides what to do with a match (`daemon::placement`).

use serde::{Deserialize, Serialize};

/// Who a provider says a login belongs to. Either part may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The e-mail as the provider gave it (shown in `status`).
    pub email: Option<String>,
    /// The provider's stable subject identifier (`sub`, or Claude's account uuid).
    pub subject: Option<String>,
}

impl Identity {
    /// What to show for this account: the e-mail, else the subject.
    pub fn label(&self) -> Option<String> {
        self.email.clone().or_else(|| self.subject.clone())
    }

    /// `self`, with the parts it lacks taken from `fallback`.
    #[must_use]
    pub fn or(self, fallback: Identity) -> Identity {
        Identity {
            email: self.email.or(fallback.email),
            subject: self.subject.or(fallback.subject),
        }
    }
}

/// The stable key of an account. Two keys are the same account when their providers are
/// equal and their e-mails are equal, or (when either lacks an e-mail) their subjects are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountKey {
    pub provider: String,
    /// Normalized: trimmed and lower-cased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl AccountKey {
    /// The key of `identity` at `provider`; `None` when the provider named no account.
    pub fn new(provider: &str, identity: &Identity) -> Option<AccountKey> {
        let email = identity.email.as_deref().and_then(normalize_email);
        let subject = identity
            .subject
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        (email.is_some() || subject.is_some()).then(|| AccountKey {
            provider: provider.to_owned(),
            email,
            subject,
        })
    }

    /// The key of a slot recorded before keys were stored: its account label is an e-mail
    /// when it has an `@`, else a subject (what login recorded: e-mail, else subject).
    pub fn from_label(provider: &str, label: &str) -> Option<AccountKey> {
        let identity = if label.contains('@') {
            Identity {
                email: Some(label.to_owned()),
                subject: None,
            }
        } else {
            Identity {
                email: None,
                subject: Some(label.to_owned()),
            }
        };
        AccountKey::new(provider, &identity)
    }

    /// How strongly `self` and `other` are known to be the same account.
    pub fn matches(&self, other: &AccountKey) -> Match {
        if self.provider != other.provider {
            return Match::None;
        }
        if let (Some(a), Some(b)) = (&self.email, &other.email)
            && a == b
        {
            return Match::Email;
        }
        match (&self.subject, &other.subject) {
            (Some(a), Some(b)) if a == b => Match::Subject,
            _ => Match::None,
        }
    }

    /// `self` with what it lacks taken from `older`, a key of the same account.
    #[must_use]
    pub fn merged_with(self, older: &AccountKey) -> AccountKey {
        AccountKey {
            provider: self.provider,
            email: self.email.or_else(|| older.email.clone()),
            subject: self.subject.or_else(|| older.subject.clone()),
        }
    }

    /// The account as people read it: the e-mail, else the subject.
    pub fn label(&self) -> &str {
        self.email
            .as_deref()
            .or(self.subject.as_deref())
            .unwrap_or("?")
    }
}

/// Why two keys are the same account, strongest first; `None` when they are not known to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    None,
    Subject,
    Email,
}

/// An e-mail as it is compared: surrounding whitespace trimmed, lower-cased; `None` when
/// nothing is left.
pub fn normalize_email(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(e: &str) -> Identity {
        Identity {
            email: Some(e.to_owned()),
            subject: None,
        }
    }

    fn key(provider: &str, identity: &Identity) -> AccountKey {
        AccountKey::new(provider, identity).unwrap()
    }

    #[test]
    fn email_case_and_whitespace_do_not_make_another_account() {
        let a = key("claude", &email("Alice@Example.COM"));
        let b = key("claude", &email("  alice@example.com\n"));
        assert_eq!(a, b);
        assert_eq!(a.matches(&b), Match::Email);
        assert_eq!(a.email.as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn the_same_email_at_another_provider_is_another_account() {
        let a = key("claude", &email("a@x"));
        let b = key("other", &email("a@x"));
        assert_eq!(a.matches(&b), Match::None);
    }

    #[test]
    fn the_subject_decides_when_an_email_is_missing_on_either_side() {
        let both = key(
            "p",
            &Identity {
                email: Some("a@x".into()),
                subject: Some("u1".into()),
            },
        );
        let subject_only = key(
            "p",
            &Identity {
                email: None,
                subject: Some("u1".into()),
            },
        );
        let other_subject = key(
            "p",
            &Identity {
                email: None,
                subject: Some("u2".into()),
            },
        );
        assert_eq!(both.matches(&subject_only), Match::Subject);
        assert_eq!(subject_only.matches(&other_subject), Match::None);
        assert_eq!(
            subject_only.merged_with(&both).email.as_deref(),
            Some("a@x")
        );
    }

    #[test]
    fn different_emails_are_different_accounts_unless_the_subject_is_shared() {
        let a = key("p", &email("a@x"));
        let b = key("p", &email("b@x"));
        assert_eq!(a.matches(&b), Match::None);
        // An account whose e-mail changed at the provider keeps its subject.
        let old = key(
            "p",
            &Identity {
                email: Some("old@x".into()),
                subject: Some("u1".into()),
            },
        );
        let new = key(
            "p",
            &Identity {
                email: Some("new@x".into()),
                subject: Some("u1".into()),
            },
        );
        assert_eq!(old.matches(&new), Match::Subject);
    }

    #[test]
    fn no_email_and_no_subject_is_no_key() {
        assert_eq!(AccountKey::new("p", &Identity::default()), None);
        assert_eq!(AccountKey::new("p", &email("   ")), None);
    }

    #[test]
    fn the_key_is_the_same_for_every_login_of_an_account() {
        // Built only from provider and identity: nothing time-dependent goes in.
        let first = serde_json::to_string(&key("claude", &email("a@x"))).unwrap();
        let second = serde_json::to_string(&key("claude", &email("A@X "))).unwrap();
        assert_eq!(first, second);
        assert_eq!(first, r#"{"provider":"claude","email":"a@x"}"#);
    }

    #[test]
    fn an_old_label_becomes_an_email_or_subject_key() {
        assert_eq!(
            AccountKey::from_label("p", "A@x").unwrap().email.as_deref(),
            Some("a@x")
        );
        assert_eq!(
            AccountKey::from_label("p", "user-1")
                .unwrap()
                .subject
                .as_deref(),
            Some("user-1")
        );
    }
}
