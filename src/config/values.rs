//! Value types of the config: durations (`90s`, `5m`, `1h30m`) and provider endpoints
//! (https, or http on loopback), each checked while deserializing so errors carry the line.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::locate::show;

/// Parses `90s`, `5m`, `1h`, `1h30m`, `2d`, `500ms`: whole numbers, each followed by a unit
/// (`d`, `h`, `m`, `s`, `ms`), units from largest to smallest and each at most once. A bare
/// number is refused: `300` could mean seconds or minutes.
///
/// # Errors
/// A message saying what is wrong, for the user: no unit, an unknown unit, units out of
/// order or repeated, or a value too large for a `Duration` in milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let shown = show(s);
    let usage = "write whole numbers with units (d, h, m, s, ms), e.g. 90s, 5m, 1h30m";
    if s.is_empty() {
        return Err(format!("empty duration; {usage}"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n = if s.len() <= 12 { s } else { "300" };
        return Err(format!(
            "{shown} has no unit; add one, e.g. {n}s or {n}m (units: d, h, m, s, ms)"
        ));
    }
    let (mut rest, mut total_ms, mut last_rank) = (s, 0u64, usize::MAX);
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, after) = rest.split_at(digits);
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let (rank, unit_ms) = match unit {
            "d" => (4, 86_400_000),
            "h" => (3, 3_600_000),
            "m" => (2, 60_000),
            "s" => (1, 1_000),
            "ms" => (0, 1),
            _ => return Err(format!("{shown} is not a duration; {usage}")),
        };
        if digits == 0 {
            return Err(format!("{shown} is not a duration; {usage}"));
        }
        if rank >= last_rank {
            return Err(format!(
                "{shown}: give each unit once, largest first (e.g. 1h30m)"
            ));
        }
        total_ms = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ms))
            .and_then(|ms| ms.checked_add(total_ms))
            .ok_or_else(|| format!("{shown} is too large"))?;
        (rest, last_rank) = (after, rank);
    }
    Ok(Duration::from_millis(total_ms))
}

/// Checks an endpoint URL: https, or plain http to a loopback host (a local test server).
pub(super) fn parse_endpoint(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not a valid URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password (use client_secret)".to_owned());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "must use https; plain http is allowed only for localhost, 127.0.0.0/8 and [::1], \
             not {}",
            url.host_str().unwrap_or("")
        )),
        other => Err(format!("must be an https URL, not {}:", show(other))),
    }
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// [`parse_duration`] for a config key: at most [`super::MAX_DURATION`].
pub(super) fn parse_config_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d > super::MAX_DURATION {
        return Err(format!(
            "{} is too long: a config duration is at most {}",
            show(text.trim()),
            super::bounds::MAX_DURATION_TEXT
        ));
    }
    Ok(d)
}

/// A duration of at most [`super::MAX_DURATION`]; `ALLOW_ZERO` says whether `0s` is
/// acceptable.
pub(super) struct DurationField<const ALLOW_ZERO: bool>(pub(super) Duration);

impl<'de, const ALLOW_ZERO: bool> Deserialize<'de> for DurationField<ALLOW_ZERO> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const Z: bool>;
        impl<const Z: bool> Visitor<'_> for V<Z> {
            type Value = DurationField<Z>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as 90s, 5m or 1h30m")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match parse_config_duration(v).map_err(E::custom)? {
                    d if d.is_zero() && !Z => Err(E::custom("must be greater than zero")),
                    d => Ok(DurationField(d)),
                }
            }
        }
        d.deserialize_str(V::<ALLOW_ZERO>)
    }
}

/// A provider endpoint, checked by [`parse_endpoint`].
pub(super) struct EndpointUrl(pub(super) Url);

impl<'de> Deserialize<'de> for EndpointUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EndpointUrl;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an https URL")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_endpoint(v).map(EndpointUrl).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}
