//! Slot names: `[a-z0-9_-]{1,32}`. The one place that rule lives.

/// Longest slot name accepted.
pub const MAX_SLOT_NAME_LEN: usize = 32;

/// Checks a slot name, returning a message that says what is wrong.
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_SLOT_NAME_LEN {
        return Err(format!(
            "slot name must be 1 to {MAX_SLOT_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "slot name {name:?} has {bad:?}; use only a-z, 0-9, '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_the_documented_alphabet() {
        assert!(validate("work").is_ok());
        assert!(validate("a_b-9").is_ok());
        assert!(validate(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn refuses_everything_else() {
        for bad in ["", "Work", "a b", "a/b", "é", "../x", &"x".repeat(33)] {
            assert!(validate(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
