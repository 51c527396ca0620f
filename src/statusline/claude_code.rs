//! Claude Code integration: Claude Code runs its `statusLine` command with a JSON object on
//! stdin whose `rate_limits` (`five_hour` / `seven_day`, each `used_percentage` and
//! `resets_at` in epoch seconds) are fresher than anything the daemon polled. This module
//! reads that JSON with a hard time and size bound, picks the slot it belongs to, and lays
//! the figures over that slot's cached windows.
//!
//! It must never hang a prompt: stdin is read only when it is not a terminal, for at most
//! [`STDIN_WAIT`] overall and [`STDIN_MAX`] bytes, and any parse failure means "no data".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use super::attribute::claude_code_is_fresher;
use crate::cache::{QuotaCache, SlotQuota, Window};
use crate::state::SlotState;

/// How long to wait for Claude Code's JSON in all. Claude Code writes it as soon as it
/// spawns the command, so it is normally there before the process starts; an open pipe with
/// nothing in it (some prompt frameworks) costs this much once per render, never more.
pub const STDIN_WAIT: Duration = Duration::from_millis(50);
/// The most stdin read: Claude Code's object is a few KiB; anything bigger is not it.
pub const STDIN_MAX: usize = 64 * 1024;
/// The most of `~/.claude.json` read (it holds per-project history and can grow to
/// megabytes); a bigger file is skipped.
const CLAUDE_JSON_MAX: u64 = 16 * 1024 * 1024;

/// Reads stdin when it is not a terminal, within [`STDIN_WAIT`] and [`STDIN_MAX`]. `None`
/// when stdin is a terminal, stays silent, ends late, or is too big.
#[cfg(unix)]
pub fn read_stdin_bounded() -> Option<Vec<u8>> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return None;
    }
    read_fd_bounded(libc::STDIN_FILENO, STDIN_WAIT, STDIN_MAX)
}

/// Stdin is never read where `poll(2)` is unavailable.
#[cfg(not(unix))]
pub fn read_stdin_bounded() -> Option<Vec<u8>> {
    None
}

/// Reads `fd` to end of file, polling before every read so a silent writer can never block
/// past `wait`. `None` on timeout, error, or more than `max` bytes.
#[cfg(unix)]
fn read_fd_bounded(fd: libc::c_int, wait: Duration, max: usize) -> Option<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, and its count is 1.
        let ready = unsafe { libc::poll(&raw mut pfd, 1, timeout) };
        if ready < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if ready <= 0 {
            return None;
        }
        // SAFETY: reading into a live buffer of exactly the length passed.
        let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
        let n = usize::try_from(n).ok()?;
        if n == 0 {
            return Some(data);
        }
        if data.len() + n > max {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    }
}

/// The windows in Claude Code's statusLine JSON, by cache window name (`five_hour`, ...).
/// `None` when the bytes are not such an object or carry no usable `rate_limits` (Claude
/// Code omits them before the session's first reply, and for API-key users).
pub fn parse_rate_limits(bytes: &[u8]) -> Option<BTreeMap<String, Window>> {
    /// Only `rate_limits` is built; every other field is skipped as it is scanned.
    #[derive(Deserialize)]
    struct StatusLineInput {
        rate_limits: Option<serde_json::Map<String, serde_json::Value>>,
    }
    let input: StatusLineInput = serde_json::from_slice(bytes).ok()?;
    let windows: BTreeMap<String, Window> = input
        .rate_limits?
        .into_iter()
        .filter_map(|(name, limit)| {
            let utilization = limit.get("used_percentage")?.as_f64()?;
            let resets_at = limit.get("resets_at").and_then(epoch_seconds);
            Some((
                name,
                Window {
                    utilization,
                    resets_at,
                },
            ))
        })
        .collect();
    (!windows.is_empty()).then_some(windows)
}

/// Epoch seconds (integer or fractional) as a time; `None` out of chrono's range.
fn epoch_seconds(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    let secs = if let Some(secs) = value.as_i64() {
        secs
    } else {
        let f = value.as_f64()?;
        // Beyond ±1e15 s chrono has no date anyway; the check makes the cast exact.
        if !f.is_finite() || f.abs() > 1e15 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        let secs = f.floor() as i64;
        secs
    };
    DateTime::from_timestamp(secs, 0)
}

/// Where Claude Code keeps `.claude.json`: `$CLAUDE_CONFIG_DIR` when set, else `$HOME`.
pub fn claude_json_path() -> Option<PathBuf> {
    let dir = std::env::var_os("CLAUDE_CONFIG_DIR")
        .filter(|d| !d.is_empty())
        .or_else(|| std::env::var_os("HOME").filter(|d| !d.is_empty()))?;
    Some(PathBuf::from(dir).join(".claude.json"))
}

/// The e-mail of the account Claude Code is logged in with (`oauthAccount.emailAddress`).
pub fn logged_in_email(path: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct ClaudeJson {
        #[serde(rename = "oauthAccount")]
        oauth_account: Option<OauthAccount>,
    }
    #[derive(Deserialize)]
    struct OauthAccount {
        #[serde(rename = "emailAddress")]
        email_address: Option<String>,
    }
    if std::fs::metadata(path).ok()?.len() > CLAUDE_JSON_MAX {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let parsed: ClaudeJson = serde_json::from_slice(&bytes).ok()?;
    parsed.oauth_account?.email_address
}

/// Lays Claude Code's `windows` over slot `name`'s cached ones where they are the fresher
/// ([`claude_code_is_fresher`]), and then marks its data fetched `now`. A named slot missing
/// from the cache is added (active, no account); its state is otherwise kept, so an inactive
/// slot still asks for a re-login.
pub fn apply(
    cache: &mut QuotaCache,
    name: &str,
    windows: BTreeMap<String, Window>,
    now: DateTime<Utc>,
) {
    let slot = cache
        .slots
        .entry(name.to_owned())
        .or_insert_with(|| SlotQuota {
            account: None,
            provider: Some(crate::config::CLAUDE.to_owned()),
            state: SlotState::Active,
            fetched_at: None,
            windows: BTreeMap::new(),
            error: None,
            extra_usage: None,
            claude_code: None,
        });
    let mut taken = false;
    for (window, figure) in windows {
        if claude_code_is_fresher(slot.windows.get(&window), &figure) {
            slot.windows.insert(window, figure);
            taken = true;
        }
    }
    if taken {
        slot.fetched_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_codes_rate_limits_become_windows() {
        let json = br#"{"session_id":"x","model":{"id":"m"},"rate_limits":{
            "five_hour":{"used_percentage":23.5,"resets_at":1738425600},
            "seven_day":{"used_percentage":41,"resets_at":1738857600.7},
            "weird":{"nope":1}}}"#;
        let w = parse_rate_limits(json).unwrap();
        assert_eq!(w.len(), 2);
        assert!((w["five_hour"].utilization - 23.5).abs() < 1e-9);
        assert_eq!(w["five_hour"].resets_at.unwrap().timestamp(), 1_738_425_600);
        assert_eq!(w["seven_day"].resets_at.unwrap().timestamp(), 1_738_857_600);
    }

    #[test]
    fn anything_but_usable_rate_limits_is_no_data() {
        for junk in [
            &b""[..],
            b"not json",
            b"{}",
            b"[]",
            b"{\"rate_limits\":null}",
            b"{\"rate_limits\":{}}",
            b"{\"rate_limits\":{\"five_hour\":{\"used_percentage\":\"12\"}}}",
            b"{\"rate_limits\":[1,2]}",
            b"\xff\xfe{",
        ] {
            assert_eq!(parse_rate_limits(junk), None, "{junk:?}");
        }
        let far = br#"{"rate_limits":{"five_hour":{"used_percentage":1e308,"resets_at":1e300}}}"#;
        let w = parse_rate_limits(far).unwrap();
        assert_eq!(
            w["five_hour"].resets_at, None,
            "out of range: no reset time"
        );
        let neg =
            br#"{"rate_limits":{"five_hour":{"used_percentage":-5,"resets_at":-99999999999999}}}"#;
        assert!(parse_rate_limits(neg).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn an_open_pipe_with_no_data_times_out_instead_of_hanging() {
        let mut fds = [0; 2];
        // SAFETY: a two-element array for pipe(2) to fill.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let started = Instant::now();
        assert_eq!(
            read_fd_bounded(fds[0], Duration::from_millis(30), 1024),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // Data then end of file: read whole; too much: refused.
        // SAFETY: writing from a live buffer to the pipe we own, then closing our ends.
        unsafe {
            libc::write(fds[1], b"{}".as_ptr().cast(), 2);
            libc::close(fds[1]);
        }
        let got = read_fd_bounded(fds[0], Duration::from_millis(500), 1024);
        assert_eq!(got.as_deref(), Some(&b"{}"[..]));
        let mut big = [0; 2];
        // SAFETY: as above.
        unsafe {
            assert_eq!(libc::pipe(big.as_mut_ptr()), 0);
            libc::write(big[1], [b' '; 100].as_ptr().cast(), 100);
            libc::close(big[1]);
        }
        assert_eq!(
            read_fd_bounded(big[0], Duration::from_millis(500), 10),
            None
        );
        // SAFETY: closing the read ends we own.
        unsafe {
            libc::close(fds[0]);
            libc::close(big[0]);
        }
    }

    #[test]
    fn an_older_figure_from_claude_code_leaves_the_cached_one_and_its_age() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let fetched = at("2026-11-23T11:00:00Z");
        let cached = Window {
            utilization: 30.0,
            resets_at: Some(at("2026-11-23T19:00:00Z")),
        };
        let mut cache = QuotaCache {
            updated_at: fetched,
            stale_after_secs: None,
            slots: BTreeMap::from([(
                "work".to_owned(),
                SlotQuota {
                    account: None,
                    provider: Some("claude".into()),
                    state: SlotState::Active,
                    fetched_at: Some(fetched),
                    windows: BTreeMap::from([("five_hour".to_owned(), cached.clone())]),
                    error: None,
                    extra_usage: None,
                    claude_code: None,
                },
            )]),
        };
        // The window before the cached one, from an idle session's last reply.
        let old = br#"{"rate_limits":{"five_hour":{"used_percentage":80,"resets_at":1795428000}}}"#;
        let now = at("2026-11-23T12:00:00Z");
        apply(&mut cache, "work", parse_rate_limits(old).unwrap(), now);
        assert_eq!(cache.slots["work"].windows["five_hour"], cached);
        assert_eq!(cache.slots["work"].fetched_at, Some(fetched));
    }

    #[test]
    fn logged_in_email_reads_oauth_account_and_tolerates_junk() {
        let dir = crate::test_dirs::fresh("cc-test");
        let file = dir.join(".claude.json");
        std::fs::write(
            &file,
            r#"{"projects":{"/a":{"x":[1,2]}},"oauthAccount":{"emailAddress":"me@x.y","uuid":"u"}}"#,
        )
        .unwrap();
        assert_eq!(logged_in_email(&file).as_deref(), Some("me@x.y"));
        std::fs::write(&file, "{\"oauthAccount\": 5}").unwrap();
        assert_eq!(logged_in_email(&file), None);
        assert_eq!(logged_in_email(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
