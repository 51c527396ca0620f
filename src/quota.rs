//! Reading a provider's usage reply into quota windows. Pure: no I/O, every rule
//! unit-tested. Claude's shape is the default: every top-level object with a numeric
//! `utilization` is a window (`{"five_hour": {"utilization": 16.0, "resets_at": "..."}}`),
//! `null` windows and other keys are ignored. Other providers map window names to JSON
//! pointers in the config (`usage_windows`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::cache::Window;
use crate::config::WindowMapping;
use crate::oauth::{Reply, parse_retry_after};

/// What a usage request came to.
#[derive(Debug, PartialEq)]
pub enum UsageOutcome {
    Fetched(BTreeMap<String, Window>),
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
        200 => match parse_windows(&reply.body, mapping) {
            Ok(windows) => UsageOutcome::Fetched(windows),
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

/// Reads the windows out of a usage reply body.
pub fn parse_windows(
    body: &[u8],
    mapping: &BTreeMap<String, WindowMapping>,
) -> Result<BTreeMap<String, Window>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_owned())?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    if !mapping.is_empty() {
        return mapped_windows(&value, mapping);
    }
    Ok(object
        .iter()
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
        .collect())
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
        let UsageOutcome::Fetched(w) = classify_usage(&reply(200, body), &BTreeMap::new(), now())
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
