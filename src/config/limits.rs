//! The outbound request limits of the config: `max_token_requests` (requests to the token
//! and revocation endpoints out at once: refreshes, logins of every kind and revocations
//! together) and `max_usage_requests` (usage
//! fetches out at once). Each is a whole number from 1 to [`MAX_REQUESTS`], checked while
//! deserializing, so a bad value is refused with its line.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Token requests out at once by default: a restart with every token expired refreshes a
/// few at a time, most urgent first, instead of all at once.
pub const DEFAULT_MAX_TOKEN_REQUESTS: usize = 4;
/// Usage fetches out at once by default.
pub const DEFAULT_MAX_USAGE_REQUESTS: usize = 4;
/// The most either limit may be: beyond this it is no limit a provider would call polite.
pub const MAX_REQUESTS: usize = 64;

/// A limit of requests at once: 1 to [`MAX_REQUESTS`].
pub(super) struct RequestLimit(pub(super) usize);

impl<'de> Deserialize<'de> for RequestLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RequestLimit;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "a whole number of requests from 1 to {MAX_REQUESTS} (e.g. 4)"
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match usize::try_from(v) {
                    Ok(0) => Err(E::custom("must be at least 1 (0 would send nothing)")),
                    Ok(n) if n <= MAX_REQUESTS => Ok(RequestLimit(n)),
                    _ => Err(E::custom(format!(
                        "{v} is too many; at most {MAX_REQUESTS} requests at once"
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is negative; give a number of requests from 1 to {MAX_REQUESTS}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{parse, refused};

    #[test]
    fn both_limits_default_to_4_and_take_a_whole_number_from_1_to_the_most() {
        let c = parse("").unwrap();
        assert_eq!((c.max_token_requests, c.max_usage_requests), (4, 4));
        let c = parse("max_token_requests: 1\nmax_usage_requests: 64\n").unwrap();
        assert_eq!(
            (c.max_token_requests, c.max_usage_requests),
            (1, MAX_REQUESTS)
        );
    }

    #[test]
    fn a_limit_out_of_range_or_not_a_number_is_refused_at_its_line() {
        for (value, says) in [
            ("0", "at least 1"),
            ("65", "too many"),
            ("-2", "negative"),
            ("1.5", "whole number"),
            ("many", "whole number"),
        ] {
            for key in ["max_token_requests", "max_usage_requests"] {
                let (line, named, message) =
                    refused(&format!("quota_interval: 5m\n{key}: {value}\n"));
                assert_eq!((line, named.as_str()), (2, key), "{value}");
                assert!(message.contains(says), "{key}: {value}: {message}");
            }
        }
    }
}
