//! `Secret`: a string that must never reach a log, an error message or `Debug` output.
//!
//! Tokens travel inside this type everywhere. It serializes transparently (the credential
//! store and the `token` reply need the value) but its `Debug` and `Display` print a
//! placeholder, so a token cannot leak through `{:?}` or `tracing` by accident.

use serde::{Deserialize, Serialize};

/// A secret string (an access or refresh token, a client secret).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that must be kept out of logs and output.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call this only where the value must leave the process:
    /// an HTTP request, the credential store, or `sessctl token`'s stdout.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty (a provider that sent `""`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("tok-123");
        assert!(!format!("{s:?}").contains("tok-123"));
        assert!(!format!("{s}").contains("tok-123"));
        assert_eq!(s.expose(), "tok-123");
    }

    #[test]
    fn serializes_transparently_for_the_store() {
        let s = Secret::new("tok-123");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"tok-123\"");
    }
}
