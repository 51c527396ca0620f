//! Where a finished login goes: the slot that already holds its account, whatever name was
//! typed; else the typed name. A typed name that holds another account is refused, never
//! overwritten. Pure: the manager applies the decision (`crate::daemon::core::login`).

use crate::account::{AccountKey, Match};

/// A slot as placement sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub provider: &'a str,
    /// `None`: the slot's account is not known (the provider named none).
    pub key: Option<&'a AccountKey>,
    /// What `status` shows as the slot's account.
    pub label: Option<&'a str>,
}

/// Which slot a login updates or creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// No slot holds this account and the typed name is free: create it.
    Create,
    /// Update the typed slot: it holds this account, or one nobody can name.
    Update,
    /// Another slot already holds this account: update that one (named here) instead.
    UpdateAccountSlot(String),
}

/// Why a login cannot go where it was typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "slot {slot} holds {held}, but this login is for {new}; log out of it first (sessctl logout {slot}) or log in under another name"
)]
pub struct Refusal {
    pub slot: String,
    pub held: String,
    pub new: String,
}

/// Decides where a login of `key` at `provider`, typed as `typed`, goes among `slots`.
pub fn place(
    typed: &str,
    provider: &str,
    key: Option<&AccountKey>,
    slots: &[Candidate<'_>],
) -> Result<Placement, Refusal> {
    if let Some(key) = key {
        // The typed slot wins a tie, so an account held twice (from before keys existed)
        // keeps updating the slot the user named.
        let best = slots
            .iter()
            .filter_map(|slot| Some((slot.key?.matches(key), slot.name == typed, slot.name)))
            .filter(|(strength, _, _)| *strength != Match::None)
            .max_by_key(|(strength, is_typed, _)| (*strength, *is_typed));
        if let Some((_, is_typed, name)) = best {
            return Ok(if is_typed {
                Placement::Update
            } else {
                Placement::UpdateAccountSlot(name.to_owned())
            });
        }
    }
    let Some(existing) = slots.iter().find(|slot| slot.name == typed) else {
        return Ok(Placement::Create);
    };
    let refuse = || Refusal {
        slot: typed.to_owned(),
        held: describe(existing.label, existing.provider),
        new: describe(key.map(AccountKey::label), provider),
    };
    if existing.provider != provider {
        return Err(refuse());
    }
    match existing.key {
        // Nobody can say which account the slot holds: the typed name decides.
        None => Ok(Placement::Update),
        // Known, and not this login's account (or this login's account is unknown).
        Some(_) => Err(refuse()),
    }
}

/// "account a@x at provider claude", or "an unnamed account at provider claude".
fn describe(label: Option<&str>, provider: &str) -> String {
    match label {
        Some(label) => format!("account {label} at provider {provider}"),
        None => format!("an account provider {provider} did not name"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Identity;

    fn key(provider: &str, email: &str) -> AccountKey {
        AccountKey::new(
            provider,
            &Identity {
                email: Some(email.to_owned()),
                subject: None,
            },
        )
        .unwrap()
    }

    fn slot<'a>(name: &'a str, key: Option<&'a AccountKey>) -> Candidate<'a> {
        Candidate {
            name,
            provider: "p",
            key,
            label: key.map(AccountKey::label),
        }
    }

    #[test]
    fn a_new_account_under_a_free_name_creates_the_slot() {
        let a = key("p", "a@x");
        assert_eq!(
            place(
                "work",
                "p",
                Some(&a),
                &[slot("home", Some(&key("p", "b@x")))]
            ),
            Ok(Placement::Create)
        );
        assert_eq!(place("work", "p", None, &[]), Ok(Placement::Create));
    }

    #[test]
    fn an_account_that_has_a_slot_updates_it_whatever_name_was_typed() {
        let a = key("p", "a@x");
        let slots = [slot("work", Some(&a))];
        assert_eq!(
            place("work", "p", Some(&key("p", "A@X")), &slots),
            Ok(Placement::Update)
        );
        assert_eq!(
            place("personal", "p", Some(&a), &slots),
            Ok(Placement::UpdateAccountSlot("work".into()))
        );
    }

    #[test]
    fn the_account_slot_wins_even_when_the_typed_name_holds_another_account() {
        let a = key("p", "a@x");
        let b = key("p", "b@x");
        let slots = [slot("work", Some(&a)), slot("home", Some(&b))];
        assert_eq!(
            place("home", "p", Some(&a), &slots),
            Ok(Placement::UpdateAccountSlot("work".into()))
        );
    }

    #[test]
    fn a_typed_name_holding_another_account_is_refused() {
        let a = key("p", "a@x");
        let refusal = place(
            "work",
            "p",
            Some(&key("p", "b@x")),
            &[slot("work", Some(&a))],
        )
        .unwrap_err();
        assert_eq!(refusal.slot, "work");
        let message = refusal.to_string();
        assert!(
            message.contains("a@x") && message.contains("b@x"),
            "{message}"
        );
        assert!(message.contains("sessctl logout work"), "{message}");
    }

    #[test]
    fn a_typed_name_at_another_provider_is_refused() {
        let a = key("other", "a@x");
        let slots = [Candidate {
            name: "work",
            provider: "other",
            key: Some(&a),
            label: Some("a@x"),
        }];
        assert!(place("work", "p", Some(&key("p", "a@x")), &slots).is_err());
    }

    #[test]
    fn an_unnamed_login_updates_only_a_slot_whose_account_is_unknown_too() {
        let a = key("p", "a@x");
        assert_eq!(
            place("work", "p", None, &[slot("work", None)]),
            Ok(Placement::Update)
        );
        assert!(place("work", "p", None, &[slot("work", Some(&a))]).is_err());
        // A named login may adopt a slot whose account was never known.
        assert_eq!(
            place("work", "p", Some(&a), &[slot("work", None)]),
            Ok(Placement::Update)
        );
    }
}
