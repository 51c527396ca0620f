//! Reading a provider's usage reply into quota windows. Pure: no I/O, every rule
//! unit-tested. Claude's shape is the default: every top-level object with a numeric
//! `utilization` is a window (`{"five_hour": {"utilization": 16.0, "resets_at": "..."}}`:
//! `five_hour`, `seven_day`, `seven_day_opus`, `seven_day_sonnet`, `seven_day_oauth_apps`,
//! and any new one), `null` windows and other keys (the `limits` list) are ignored.
//! `extra_usage` is not a window but credit spend ([`ExtraUsage`]), read apart. Other
//! providers map window names to JSON pointers in the config (`usage_windows`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::cache::{ExtraUsage, Window};
use crate::config::WindowMapping;
use crate::oauth::{Reply, parse_retry_after};

/// The key of Claude's credit spend, which has a `utilization` but is no quota window.
pub const EXTRA_USAGE: &str = "extra_usage";

/// Longest currency code kept (ISO 4217 codes are 3 letters).
const MAX_CURRENCY_CHARS: usize = 8;

/// What a good usage reply says.
#[derive(Debug, Default, PartialEq)]
pub struct Usage {
    pub windows: BTreeMap<String, Window>,
    /// Claude's `extra_usage`, when the reply carries it as an object.
    pub extra_usage: Option<ExtraUsage>,
}

/// What a usage request came to.
#[derive(Debug, PartialEq)]
pub enum UsageOutcome {
    Fetched(Usage),
    /// 401: the access token is not accepted; refresh once and retry once.
    Unauthorized,
    /// Anything else: keep the last good data, record the error, wait (at least
    /// `retry_after` when the server said so).
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

/// Classifies a usage reply.
pub fn classify_usage(
    reply: &Reply,
    mapping: &BTreeMap<String, WindowMapping>,
    now: DateTime<Utc>,
) -> UsageOutcome {
    let retry_after = reply
        .retry_after
        .as_deref()
        .and_then(|v| parse_retry_after(v, now));
    match reply.status {
        200 => match parse_usage(&reply.body, mapping) {
            Ok(usage) => UsageOutcome::Fetched(usage),
            Err(error) => UsageOutcome::Failed {
                error: format!("usage reply unreadable: {error}"),
                retry_after: None,
            },
        },
        401 => UsageOutcome::Unauthorized,
        429 => UsageOutcome::Failed {
            error: "usage endpoint: HTTP 429 (rate limited)".into(),
            retry_after,
        },
        status => UsageOutcome::Failed {
            error: format!("usage endpoint: HTTP {status}"),
            retry_after,
        },
    }
}

/// Reads the windows and the credit spend out of a usage reply body.
pub fn parse_usage(
    body: &[u8],
    mapping: &BTreeMap<String, WindowMapping>,
) -> Result<Usage, String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_owned())?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    let extra_usage = object.get(EXTRA_USAGE).and_then(extra_usage);
    let windows = if mapping.is_empty() {
        claude_windows(object)
    } else {
        mapped_windows(&value, mapping)?
    };
    Ok(Usage {
        windows,
        extra_usage,
    })
}

/// Reads the windows out of a usage reply body.
pub fn parse_windows(
    body: &[u8],
    mapping: &BTreeMap<String, WindowMapping>,
) -> Result<BTreeMap<String, Window>, String> {
    parse_usage(body, mapping).map(|usage| usage.windows)
}

/// `extra_usage` read field by field; `None` unless it is an object.
fn extra_usage(value: &Value) -> Option<ExtraUsage> {
    let object = value.as_object()?;
    let number = |key: &str| object.get(key).and_then(Value::as_f64);
    Some(ExtraUsage {
        is_enabled: object.get("is_enabled").and_then(Value::as_bool),
        monthly_limit: number("monthly_limit"),
        used_credits: number("used_credits"),
        utilization: number("utilization"),
        currency: object
            .get("currency")
            .and_then(Value::as_str)
            .map(|c| {
                c.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(MAX_CURRENCY_CHARS)
                    .collect::<String>()
            })
            .filter(|c| !c.is_empty()),
    })
}

/// Claude's shape: every top-level object with a numeric `utilization`, but `extra_usage`.
fn claude_windows(object: &serde_json::Map<String, Value>) -> BTreeMap<String, Window> {
    object
        .iter()
        .filter(|(name, _)| name.as_str() != EXTRA_USAGE)
        .filter_map(|(name, window)| {
            let utilization = window.get("utilization")?.as_f64()?;
            Some((
                name.clone(),
                Window {
                    utilization,
                    resets_at: window.get("resets_at").and_then(reset_time),
                },
            ))
        })
        .collect()
}

/// Windows found by configured JSON pointers; a window whose pointer finds nothing (or
/// null) is absent, one that finds a non-number is an error.
fn mapped_windows(
    value: &Value,
    mapping: &BTreeMap<String, WindowMapping>,
) -> Result<BTreeMap<String, Window>, String> {
    let mut windows = BTreeMap::new();
    for (name, map) in mapping {
        let utilization = match value.pointer(&map.utilization) {
            None | Some(Value::Null) => continue,
            Some(found) => found
                .as_f64()
                .ok_or_else(|| format!("window {name}: {} is not a number", map.utilization))?,
        };
        let resets_at = map
            .resets_at
            .as_deref()
            .and_then(|p| value.pointer(p))
            .and_then(reset_time);
        windows.insert(
            name.clone(),
            Window {
                utilization,
                resets_at,
            },
        );
    }
    Ok(windows)
}

/// A reset time given as RFC 3339 text or epoch seconds (milliseconds when huge).
fn reset_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => {
            let secs = n.as_f64()?;
            let secs = if secs > 1e12 { secs / 1000.0 } else { secs };
            #[allow(
                clippy::cast_possible_truncation,
                reason = "`as` saturates; a time out of chrono's range is None"
            )]
            let secs = secs as i64;
            DateTime::from_timestamp(secs, 0)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "utilizations parsed from JSON literals compare exactly"
)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            content_type: None,
            body: body.as_bytes().to_vec(),
            complete: true,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn claudes_shape_gives_its_windows_and_ignores_the_rest() {
        let body = r#"{"five_hour":{"utilization":16.0,"resets_at":"2026-09-23T06:40:00+00:00"},
            "seven_day":{"utilization":42,"resets_at":null},"seven_day_opus":null,
            "extra_usage":{"is_enabled":false},"other":7}"#;
        let UsageOutcome::Fetched(Usage { windows: w, .. }) =
            classify_usage(&reply(200, body), &BTreeMap::new(), now())
        else {
            panic!()
        };
        assert_eq!(w.keys().collect::<Vec<_>>(), vec!["five_hour", "seven_day"]);
        assert_eq!(w["five_hour"].utilization, 16.0);
        assert_eq!(
            w["five_hour"].resets_at.unwrap().to_rfc3339(),
            "2026-09-23T06:40:00+00:00"
        );
        assert_eq!(w["seven_day"].resets_at, None);
    }

    /// A reply as Claude sends it today (2.1.332's keys), with spend turned on.
    const FULL_REPLY: &str = r#"{
        "five_hour":{"utilization":3.0,"resets_at":"2026-09-23T06:40:00+00:00"},
        "seven_day":{"utilization":85.0,"resets_at":"2026-09-25T18:00:00+00:00"},
        "seven_day_oauth_apps":{"utilization":1.0,"resets_at":null},
        "seven_day_opus":{"utilization":12.5,"resets_at":"2026-09-25T18:00:00+00:00"},
        "seven_day_sonnet":{"utilization":0.0,"resets_at":null},
        "cinder_cove":null,
        "extra_usage":{"is_enabled":true,"monthly_limit":10000,"used_credits":2763.0,
                       "utilization":27.63,"currency":"USD","disabled_reason":null},
        "limits":[{"kind":"weekly","percent":85,"resets_at":"2026-09-25T18:00:00Z",
                   "scope":{"model":{"display_name":"Opus"}}}]}"#;

    #[test]
    fn extra_usage_is_spend_not_a_window() {
        let UsageOutcome::Fetched(usage) =
            classify_usage(&reply(200, FULL_REPLY), &BTreeMap::new(), now())
        else {
            panic!()
        };
        assert!(!usage.windows.contains_key(EXTRA_USAGE), "{usage:?}");
        let spend = usage.extra_usage.unwrap();
        assert_eq!(
            spend,
            ExtraUsage {
                is_enabled: Some(true),
                monthly_limit: Some(10000.0),
                used_credits: Some(2763.0),
                utilization: Some(27.63),
                currency: Some("USD".into()),
            }
        );
        assert_eq!(spend.summary().as_deref(), Some("extra 27.63/100.00 USD"));
    }

    #[test]
    fn the_per_model_and_oauth_app_windows_show_when_present_and_limits_is_tolerated() {
        let usage = parse_usage(FULL_REPLY.as_bytes(), &BTreeMap::new()).unwrap();
        assert_eq!(
            usage.windows.keys().collect::<Vec<_>>(),
            [
                "five_hour",
                "seven_day",
                "seven_day_oauth_apps",
                "seven_day_opus",
                "seven_day_sonnet"
            ]
        );
        assert_eq!(usage.windows["seven_day_opus"].utilization, 12.5);
        let only_two = r#"{"five_hour":{"utilization":1},"seven_day":{"utilization":2},
            "seven_day_opus":null,"seven_day_sonnet":null,"limits":[]}"#;
        let usage = parse_usage(only_two.as_bytes(), &BTreeMap::new()).unwrap();
        assert_eq!(usage.windows.len(), 2);
        assert_eq!(usage.extra_usage, None);
    }

    #[test]
    fn odd_extra_usage_is_read_field_by_field_and_shown_only_when_enabled() {
        let body = r#"{"extra_usage":{"is_enabled":"yes","monthly_limit":"lots",
            "used_credits":150,"currency":"U$D\u001b[31m-very-long"}}"#;
        let spend = parse_usage(body.as_bytes(), &BTreeMap::new())
            .unwrap()
            .extra_usage
            .unwrap();
        assert_eq!(spend.is_enabled, None);
        assert_eq!(spend.monthly_limit, None);
        assert_eq!(spend.used_credits, Some(150.0));
        assert_eq!(spend.currency.as_deref(), Some("UD31mver"));
        assert_eq!(spend.summary(), None, "not known to be enabled");
        let off =
            r#"{"extra_usage":{"is_enabled":false,"monthly_limit":null,"used_credits":null}}"#;
        let off = parse_usage(off.as_bytes(), &BTreeMap::new()).unwrap();
        assert_eq!(off.extra_usage.unwrap().summary(), None);
        for junk in [
            r#"{"extra_usage":null}"#,
            r#"{"extra_usage":[1]}"#,
            r#"{"extra_usage":7}"#,
        ] {
            let usage = parse_usage(junk.as_bytes(), &BTreeMap::new()).unwrap();
            assert_eq!(usage, Usage::default(), "{junk}");
        }
        let uncapped = ExtraUsage {
            is_enabled: Some(true),
            monthly_limit: None,
            used_credits: Some(5.0),
            utilization: None,
            currency: None,
        };
        assert_eq!(uncapped.summary().as_deref(), Some("extra 0.05"));
    }

    #[test]
    fn a_configured_mapping_reads_json_pointers() {
        let mapping = BTreeMap::from([
            (
                "daily".to_owned(),
                WindowMapping {
                    utilization: "/limits/0/pct".into(),
                    resets_at: Some("/limits/0/reset".into()),
                },
            ),
            (
                "monthly".to_owned(),
                WindowMapping {
                    utilization: "/limits/1/pct".into(),
                    resets_at: None,
                },
            ),
        ]);
        let body = r#"{"limits":[{"pct":5.5,"reset":1800003600}]}"#;
        let w = parse_windows(body.as_bytes(), &mapping).unwrap();
        assert_eq!(w.len(), 1, "a pointer that finds nothing is no window");
        assert_eq!(w["daily"].utilization, 5.5);
        assert_eq!(
            w["daily"].resets_at,
            DateTime::from_timestamp(1_800_003_600, 0)
        );
        let bad = parse_windows(br#"{"limits":[{"pct":"high"}]}"#, &mapping).unwrap_err();
        assert!(bad.contains("daily"), "{bad}");
    }

    #[test]
    fn a_401_asks_for_a_refresh_and_a_429_keeps_its_retry_after() {
        assert_eq!(
            classify_usage(&reply(401, ""), &BTreeMap::new(), now()),
            UsageOutcome::Unauthorized
        );
        let mut limited = reply(429, "");
        limited.retry_after = Some("0".into());
        assert!(matches!(
            classify_usage(&limited, &BTreeMap::new(), now()),
            UsageOutcome::Failed { retry_after: Some(d), .. } if d.is_zero()
        ));
    }

    #[test]
    fn junk_is_a_failure_never_a_panic() {
        for (status, body) in [
            (200, "not json"),
            (200, "[1,2]"),
            (200, "null"),
            (500, "{}"),
            (403, ""),
        ] {
            assert!(
                matches!(
                    classify_usage(&reply(status, body), &BTreeMap::new(), now()),
                    UsageOutcome::Failed { .. }
                ),
                "{status} {body}"
            );
        }
        let odd = r#"{"w":{"utilization":1e308,"resets_at":-99999999999999}}"#;
        assert!(parse_windows(odd.as_bytes(), &BTreeMap::new()).is_ok());
    }
}
