//! What a config may hold: the file's size, the number of providers, the longest duration,
//! and the one ordering between durations that matters (`usage_min_interval` below
//! `stale_after`). Beyond these the daemon would panic on time arithmetic, spend gigabytes
//! on a generated file, or show healthy slots as stale forever; each is refused at load with
//! the key to change, like every other config error (exit 78).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::locate::Ctx;
use super::{Config, ConfigError};

/// The largest config file read: a hand-written config is a few KiB; a larger one is
/// generated or not a config, and parsing tens of MB costs the daemon gigabytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// The most providers a config may name (the built-in `claude` included): each one is
/// an OAuth client someone registered by hand.
pub const MAX_PROVIDERS: usize = 100;
/// The longest duration any config key takes: a year. Far beyond any sensible interval,
/// and far below where adding it to a date or an `Instant` could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// [`MAX_DURATION`] as written in a config.
pub const MAX_DURATION_TEXT: &str = "365d";

/// Reads `path`, refusing a file over [`MAX_CONFIG_BYTES`] without reading all of it.
pub(super) fn read_bounded(path: &Path) -> std::io::Result<Result<Vec<u8>, ConfigError>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Ok(Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_CONFIG_BYTES,
        }));
    }
    Ok(Ok(bytes))
}

/// Refuses more than [`MAX_PROVIDERS`] providers, before any is built.
pub(super) fn check_provider_count(ctx: &Ctx, count: usize) -> Result<(), ConfigError> {
    if count > MAX_PROVIDERS {
        return Err(ctx.invalid(
            &["providers"],
            format!("{count} providers; a config may name at most {MAX_PROVIDERS}"),
        ));
    }
    Ok(())
}

/// A provider with a usage endpoint must be asked for usage more often than readings go
/// stale, or its slots show STALE between every two fetches. For a provider the file
/// names, that is refused (not clamped): the user chose both values, and only they know
/// which one they meant; the error names the provider's `usage_min_interval` when the file
/// sets it, else `stale_after`. The built-in `claude` is there whether the user has Claude
/// slots or not, so a short `stale_after` is not refused because of it: that gives a
/// warning (returned, logged by the daemon at start) instead, and Claude's interval is
/// never lowered (its endpoint rate-limits).
pub(super) fn check_usage_intervals(
    ctx: &Ctx,
    config: &Config,
    named: &BTreeSet<String>,
    intervals_given: &BTreeSet<String>,
) -> Result<Vec<String>, ConfigError> {
    let stale_after = config.stale_after;
    let mut warnings = Vec::new();
    for (name, provider) in &config.providers {
        let interval = provider.usage_min_interval;
        if provider.usage_url.is_none() || interval < stale_after {
            continue;
        }
        let (i, s) = (humantime(interval), humantime(stale_after));
        if intervals_given.contains(name) {
            return Err(ctx.invalid(
                &["providers", name, "usage_min_interval"],
                format!(
                    "{i} is not shorter than stale_after ({s}): quota readings would show STALE between fetches; make it shorter than {s} (or raise stale_after)"
                ),
            ));
        }
        let problem = format!(
            "{s} is not longer than provider {name}'s usage_min_interval ({i}): its quota readings would show STALE between fetches; make stale_after longer than {i}"
        );
        if named.contains(name) {
            return Err(ctx.invalid(&["stale_after"], problem));
        }
        warnings.push(format!("stale_after: {problem} (if you have {name} slots)"));
    }
    Ok(warnings)
}

/// A duration as a config would write it (`3m`, `1h30m`, `90s`, `500ms`).
fn humantime(d: Duration) -> String {
    let ms = d.as_millis();
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    if rest > 0 || out.is_empty() {
        let _ = write!(out, "{rest}ms");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_shown_as_a_config_writes_them() {
        assert_eq!(humantime(Duration::from_secs(180)), "3m");
        assert_eq!(humantime(Duration::from_secs(5400)), "1h30m");
        assert_eq!(humantime(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(humantime(Duration::ZERO), "0ms");
        assert_eq!(humantime(MAX_DURATION), MAX_DURATION_TEXT);
    }
}

#[cfg(test)]
mod refusals {
    use super::super::tests::{parse, refused};
    use super::*;

    const ACME: &str = "providers:\n  acme:\n    token_url: https://auth.example.com/t\n    client_id: id\n    usage_url: https://auth.example.com/u\n";

    #[test]
    fn every_duration_key_is_bounded_by_a_year() {
        for (yaml, key) in [
            ("refresh_before_expiry: 366d\n", "refresh_before_expiry"),
            ("quota_interval: 100000000d\n", "quota_interval"),
            ("stale_after: 100000000d\n", "stale_after"),
            (
                "alerts:\n  remind_every: 200000000d\n",
                "alerts.remind_every",
            ),
            (
                "alerts:\n  command_timeout: 400d\n",
                "alerts.command_timeout",
            ),
            (
                "providers:\n  claude:\n    usage_min_interval: 100000000d\n",
                "providers.claude.usage_min_interval",
            ),
        ] {
            let (line, k, message) = refused(yaml);
            assert_eq!(k, key, "{yaml}");
            assert_eq!(line, yaml.lines().count(), "{yaml}");
            assert!(message.contains("at most 365d"), "{yaml}: {message}");
        }
        let c = parse("stale_after: 365d\nquota_interval: 365d\nalerts:\n  remind_every: 365d\n")
            .unwrap();
        assert_eq!(c.stale_after, MAX_DURATION);
    }

    #[test]
    fn a_usage_interval_not_below_stale_after_names_the_key_to_change() {
        let (line, key, message) = refused(&format!("{ACME}    usage_min_interval: 20m\n"));
        assert_eq!(
            (line, key.as_str()),
            (6, "providers.acme.usage_min_interval")
        );
        assert!(message.contains("shorter than 15m"), "{message}");
        // A provider named in the file but whose interval is not: stale_after is the key.
        let (line, key, message) = refused(&format!("stale_after: 30s\n{ACME}"));
        assert_eq!((line, key.as_str()), (1, "stale_after"));
        assert!(message.contains("acme"), "{message}");
        assert!(message.contains("longer than 1m"), "{message}");
        // The built-in claude, not named: a warning, and its interval is kept.
        let c = parse("stale_after: 3m\n").unwrap();
        assert_eq!(
            c.providers["claude"].usage_min_interval,
            Duration::from_secs(180)
        );
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("longer than 3m"), "{:?}", c.warnings);
        assert!(parse("").unwrap().warnings.is_empty());
        assert!(
            parse(&format!(
                "stale_after: 5m\n{ACME}    usage_min_interval: 4m\n"
            ))
            .is_ok()
        );
        // Without a usage endpoint there is nothing to go stale.
        assert!(
            parse(&format!(
                "stale_after: 5m\n{}    usage_min_interval: 4m\n",
                ACME.replace("    usage_url: https://auth.example.com/u\n", "")
            ))
            .is_ok_and(|c| c.providers["acme"].usage_min_interval == Duration::from_secs(240))
        );
    }

    #[test]
    fn too_many_providers_are_refused_at_the_providers_key() {
        let mut yaml = String::from("# many\nproviders:\n");
        for i in 0..=MAX_PROVIDERS {
            let _ = write!(
                yaml,
                "  p{i}:\n    token_url: https://a.example/t\n    client_id: c\n"
            );
        }
        let (line, key, message) = refused(&yaml);
        assert_eq!((line, key.as_str()), (2, "providers"));
        assert!(message.contains("at most 100"), "{message}");
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_unparsed() {
        let dir = crate::test_dirs::fresh("config-size");
        let path = dir.join("config.yaml");
        let line = "# padding padding padding padding padding padding padding\n";
        let big = line.repeat(usize::try_from(MAX_CONFIG_BYTES).unwrap() / line.len() + 1);
        std::fs::write(&path, &big).unwrap();
        let error = Config::load(&path, true).unwrap_err();
        assert!(matches!(error, ConfigError::TooLarge { .. }), "{error:?}");
        assert!(
            error.to_string().contains("larger than 1024 KiB"),
            "{error}"
        );
        std::fs::write(&path, &big[..big.len() - line.len() * 2]).unwrap();
        assert!(Config::load(&path, true).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
