//! The YAML configuration: defaults, the built-in `claude` provider, validation. A bad file
//! is refused with the file, line and key at fault; nothing here panics on input.
//!
//! Parsing runs in two passes over the text: first into a generic YAML value (syntax errors,
//! duplicate keys, an empty document), then into private `Raw*` structs that refuse unknown
//! keys and check durations and URLs while deserializing, so those errors carry the line the
//! YAML parser saw. Checks that need the whole provider (required fields, header names) run
//! afterwards and find their line with [`key_line`], a small indentation scanner.
//!
//! This module must never put a secret (`client_secret`, a header value) in an error
//! message, and never touches the network or the disk except to read the config file.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::secret::Secret;

mod statusline;
pub use statusline::StatuslineConfig;

/// Refresh this long before the access token expires: enough for a few retries with backoff
/// (and a late wake-up from a timer) before the token is actually dead.
pub const DEFAULT_REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Poll each slot's quota this often: fresh enough for a status line, rare enough to be
/// negligible load on the provider.
pub const DEFAULT_QUOTA_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// A slot's readings are shown as stale after this long without an update: three missed
/// quota polls at the default interval.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// Minimum gap between two usage requests for a provider other than `claude`.
pub const DEFAULT_USAGE_MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Minimum gap between two usage requests to Claude: its usage endpoint rate-limits
/// frequent polling, so sessctl stays well clear of it.
pub const CLAUDE_USAGE_MIN_INTERVAL: Duration = Duration::from_secs(180);
/// The name of the one built-in provider.
pub const CLAUDE: &str = "claude";

/// The `key` of an error the YAML parser found before any key could be named.
pub const SYNTAX_KEY: &str = "(yaml)";
/// The `key` of an error about the document as a whole (a list at top level, say).
pub const TOP_LEVEL_KEY: &str = "(top level)";

/// Where credentials are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStoreKind {
    /// The OS keychain (default).
    Keychain,
    /// One 0600 plaintext file; an explicit opt-in for machines without a keychain.
    File,
}

/// How a token request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRequestFormat {
    /// `application/x-www-form-urlencoded` (RFC 6749, the default).
    Form,
    /// A JSON object (Claude's token endpoint).
    Json,
}

/// One OAuth provider's endpoints and client. Its `Debug` shows header names only: a
/// header value may be a credential.
#[derive(Clone)]
pub struct Provider {
    pub name: String,
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    pub revoke_url: Option<Url>,
    pub usage_url: Option<Url>,
    pub userinfo_url: Option<Url>,
    pub token_request: TokenRequestFormat,
    /// Extra headers sent with every request to this provider. Names are lowercase.
    pub headers: BTreeMap<String, String>,
    /// Never ask the usage endpoint more often than this (180 s for claude, 60 s otherwise).
    pub usage_min_interval: Duration,
    /// How to read usage windows from the usage reply: window name to JSON pointers.
    /// Empty: Claude's shape (every top-level object with a numeric `utilization`).
    pub usage_windows: BTreeMap<String, WindowMapping>,
}

/// Where one usage window's figures are in a usage reply (RFC 6901 JSON pointers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowMapping {
    /// Pointer to the percent used (a number, 0-100), e.g. `/limits/0/used_percent`.
    pub utilization: String,
    /// Pointer to the reset time (RFC 3339 text or epoch seconds), if the reply has one.
    pub resets_at: Option<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = |u: &Option<Url>| u.as_ref().map(Url::to_string);
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scopes", &self.scopes)
            .field("revoke_url", &url(&self.revoke_url))
            .field("usage_url", &url(&self.usage_url))
            .field("userinfo_url", &url(&self.userinfo_url))
            .field("token_request", &self.token_request)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("usage_min_interval", &self.usage_min_interval)
            .field("usage_windows", &self.usage_windows)
            .finish()
    }
}

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub refresh_before_expiry: Duration,
    pub quota_interval: Duration,
    pub stale_after: Duration,
    pub credential_store: CredentialStoreKind,
    /// Every provider by name, the built-in `claude` included.
    pub providers: BTreeMap<String, Provider>,
    /// How `sessctl statusline` renders.
    pub statusline: StatuslineConfig,
}

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `line` is 1-based; `key` is the dotted path (`providers.acme.token_url`), or
    /// [`SYNTAX_KEY`] / [`TOP_LEVEL_KEY`] when no key can be named.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

impl Default for Config {
    fn default() -> Self {
        Config {
            refresh_before_expiry: DEFAULT_REFRESH_BEFORE_EXPIRY,
            quota_interval: DEFAULT_QUOTA_INTERVAL,
            stale_after: DEFAULT_STALE_AFTER,
            credential_store: CredentialStoreKind::Keychain,
            providers: BTreeMap::from([(CLAUDE.to_owned(), builtin_claude())]),
            statusline: StatuslineConfig::default(),
        }
    }
}

/// The built-in `claude` provider; a `providers.claude` entry overrides it field by field.
fn builtin_claude() -> Provider {
    let url = |s: &str| Url::parse(s).expect("built-in URLs are valid (tested)");
    Provider {
        name: CLAUDE.to_owned(),
        token_url: url("https://platform.claude.com/v1/oauth/token"),
        client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e".to_owned(),
        client_secret: None,
        scopes: vec!["user:profile".to_owned(), "user:inference".to_owned()],
        revoke_url: None,
        usage_url: Some(url("https://api.anthropic.com/api/oauth/usage")),
        userinfo_url: None,
        token_request: TokenRequestFormat::Json,
        headers: BTreeMap::from([("anthropic-beta".to_owned(), "oauth-2025-04-20".to_owned())]),
        usage_min_interval: CLAUDE_USAGE_MIN_INTERVAL,
        usage_windows: BTreeMap::new(),
    }
}

impl Config {
    /// Loads `path`. A missing file gives the defaults unless `must_exist`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read (or is missing and `must_exist`),
    /// [`ConfigError::Invalid`] when its content is refused (see [`Config::parse`]).
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            ConfigError::Invalid {
                path: path.to_path_buf(),
                // n newlines make n + 1 pieces: the 1-based line of the first bad byte.
                line: valid.split(|&b| b == b'\n').count(),
                key: SYNTAX_KEY.to_owned(),
                message: "the file is not valid UTF-8".to_owned(),
            }
        })?;
        Config::parse(&text, path)
    }

    /// Parses YAML text; `path` only names the file in errors. An empty document (or one
    /// of only comments) gives the defaults.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a YAML syntax error, an unknown or duplicate key, a
    /// value of the wrong type, a bad duration, URL, provider name or header, or a new
    /// provider without `token_url` or `client_id`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let ctx = Ctx { text, path };
        let value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| ctx.yaml_error(&e, false))?;
        if value.is_null() {
            return Ok(Config::default());
        }
        let raw: RawConfig = serde_yaml::from_str(text).map_err(|e| ctx.yaml_error(&e, true))?;
        raw.into_config(&ctx)
    }
}

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

/// Quotes user text for a message, cut short so junk input cannot flood the error.
fn show(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

/// Checks an endpoint URL: https, or plain http to a loopback host (a local test server).
fn parse_endpoint(text: &str) -> Result<Url, String> {
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

fn is_loopback(url: &Url) -> bool {
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

/// The text being parsed and its file name, for building errors.
struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Ctx<'_> {
    /// An error found after deserializing, at the key `key` (its line is looked up).
    fn invalid(&self, key: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: key_line(self.text, key),
            key: key.join("."),
            message: message.into(),
        }
    }

    /// An error from the YAML parser or serde. `yaml_serde` starts a message with the dotted
    /// path of the value at fault (omitted at top level); that path becomes the key. With
    /// `typed` (the second pass) an error without a path is about the whole document;
    /// without, it is a syntax error.
    fn yaml_error(&self, err: &serde_yaml::Error, typed: bool) -> ConfigError {
        let mut text = err.to_string();
        let mut line = err.location().map_or(1, |l| l.line().max(1));
        if let Some(loc) = err.location() {
            let at = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(pos) = text.find(&at) {
                text.replace_range(pos..pos + at.len(), "");
            }
        }
        let (path, mut message) = match text.split_once(": ") {
            Some((head, rest)) if is_path(head) && (typed || duplicate(rest).is_some()) => {
                (Some(head.to_owned()), rest.to_owned())
            }
            _ => (None, text),
        };
        let join = |field: &str| {
            path.as_ref()
                .map_or(field.to_owned(), |p| format!("{p}.{field}"))
        };
        let key = if let Some(field) = duplicate(&message) {
            // The parser points at the mapping; the second occurrence is more useful.
            let key = join(field);
            line = key_line(self.text, &key.split('.').collect::<Vec<_>>());
            "given more than once".clone_into(&mut message);
            key
        } else if let Some(field) = unknown_field(&message) {
            join(field)
        } else if let Some(path) = path {
            path
        } else {
            (if typed { TOP_LEVEL_KEY } else { SYNTAX_KEY }).to_owned()
        };
        for internal in [
            "struct RawConfig",
            "struct RawProvider",
            "struct RawStatusline",
        ] {
            message = message.replace(internal, "a mapping of keys");
        }
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            key,
            message,
        }
    }
}

/// True when `head` looks like a `yaml_serde` value path (`providers.acme.scopes[0]`) rather
/// than the start of a message (`invalid type`).
fn is_path(head: &str) -> bool {
    !head.is_empty() && !head.contains(char::is_whitespace) && !head.contains('`')
}

/// The key named by `yaml_serde`'s `duplicate entry with key "x"` message.
fn duplicate(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("duplicate entry with key \"")?;
    rest.strip_suffix('"')
}

/// The key named by serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

/// The 1-based line of the key at `key` (one segment per nesting level) in block-style
/// YAML. Walks the nested `key:` lines by indentation; when a segment cannot be found (flow
/// style, quoting it does not understand) it returns the deepest ancestor's line, or 1.
/// Of two siblings with the same key it takes the last (the duplicate, for that error).
fn key_line(text: &str, key: &[&str]) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let (mut found_line, mut start, mut parent_indent) = (1, 0, None);
    for segment in key {
        let mut child_indent = None;
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let content = line.trim_start_matches(' ');
            if content.trim().is_empty() || content.starts_with('#') || content.starts_with("---") {
                continue;
            }
            let indent = line.len() - content.len();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            if indent == *child_indent.get_or_insert(indent) && line_key(content) == Some(segment) {
                hit = Some((i, indent));
            }
        }
        let Some((i, indent)) = hit else { break };
        (found_line, start, parent_indent) = (i + 1, i + 1, Some(indent));
    }
    found_line
}

/// The key of a `key: value` or `key:` line (plain, 'single' or "double" quoted).
fn line_key(content: &str) -> Option<&str> {
    let (key, after) = if let Some(q @ ('"' | '\'')) = content.chars().next() {
        let end = content[1..].find(q)? + 1;
        (&content[1..end], &content[end + 1..])
    } else {
        let end = content.find(':')?;
        (content[..end].trim_end(), &content[end..])
    };
    let after = after.trim_start().strip_prefix(':')?;
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some(key)
}

/// A duration; `ALLOW_ZERO` says whether `0s` is acceptable.
struct DurationField<const ALLOW_ZERO: bool>(Duration);

impl<'de, const ALLOW_ZERO: bool> Deserialize<'de> for DurationField<ALLOW_ZERO> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const Z: bool>;
        impl<const Z: bool> Visitor<'_> for V<Z> {
            type Value = DurationField<Z>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as 90s, 5m or 1h30m")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match parse_duration(v).map_err(E::custom)? {
                    d if d.is_zero() && !Z => Err(E::custom("must be greater than zero")),
                    d => Ok(DurationField(d)),
                }
            }
        }
        d.deserialize_str(V::<ALLOW_ZERO>)
    }
}

/// A provider endpoint, checked by [`parse_endpoint`].
struct EndpointUrl(Url);

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    refresh_before_expiry: Option<DurationField<true>>,
    quota_interval: Option<DurationField<false>>,
    stale_after: Option<DurationField<false>>,
    credential_store: Option<CredentialStoreKind>,
    providers: Option<BTreeMap<String, Option<RawProvider>>>,
    statusline: Option<statusline::RawStatusline>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    token_url: Option<EndpointUrl>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    scopes: Option<Vec<String>>,
    revoke_url: Option<EndpointUrl>,
    usage_url: Option<EndpointUrl>,
    userinfo_url: Option<EndpointUrl>,
    token_request: Option<RawTokenRequest>,
    headers: Option<BTreeMap<String, String>>,
    usage_min_interval: Option<DurationField<false>>,
    usage_windows: Option<BTreeMap<String, WindowMapping>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawTokenRequest {
    Form,
    Json,
}

impl RawConfig {
    fn into_config(self, ctx: &Ctx) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(d) = self.refresh_before_expiry {
            config.refresh_before_expiry = d.0;
        }
        if let Some(d) = self.quota_interval {
            config.quota_interval = d.0;
        }
        if let Some(d) = self.stale_after {
            config.stale_after = d.0;
        }
        if let Some(kind) = self.credential_store {
            config.credential_store = kind;
        }
        if let Some(raw) = self.statusline {
            config.statusline = raw.build(ctx)?;
        }
        for (name, raw) in self.providers.unwrap_or_default() {
            let builtin = config.providers.remove(&name);
            let provider = build_provider(ctx, &name, builtin, raw.unwrap_or_default())?;
            config.providers.insert(name, provider);
        }
        Ok(config)
    }
}

/// Overlays the fields given in the file on the built-in provider of that name, or builds
/// a new provider (then `token_url` and `client_id` are required).
fn build_provider(
    ctx: &Ctx,
    name: &str,
    builtin: Option<Provider>,
    raw: RawProvider,
) -> Result<Provider, ConfigError> {
    crate::slot_name::validate(name).map_err(|m| {
        ctx.invalid(
            &["providers", name],
            m.replacen("slot name", "provider name", 1),
        )
    })?;
    let mut p = match builtin {
        Some(p) => p,
        None => new_provider(ctx, name, &raw)?,
    };
    p.token_url = raw.token_url.map_or(p.token_url, |u| u.0);
    p.client_id = raw.client_id.unwrap_or(p.client_id);
    p.client_secret = raw.client_secret.or(p.client_secret);
    p.scopes = raw.scopes.unwrap_or(p.scopes);
    p.revoke_url = raw.revoke_url.map(|u| u.0).or(p.revoke_url);
    p.usage_url = raw.usage_url.map(|u| u.0).or(p.usage_url);
    p.userinfo_url = raw.userinfo_url.map(|u| u.0).or(p.userinfo_url);
    p.token_request = match raw.token_request {
        Some(RawTokenRequest::Form) => TokenRequestFormat::Form,
        Some(RawTokenRequest::Json) => TokenRequestFormat::Json,
        None => p.token_request,
    };
    if let Some(headers) = raw.headers {
        p.headers = check_headers(ctx, name, headers)?;
    }
    p.usage_min_interval = raw.usage_min_interval.map_or(p.usage_min_interval, |d| d.0);
    if let Some(windows) = raw.usage_windows {
        p.usage_windows = check_usage_windows(ctx, name, windows)?;
    }
    check_provider(ctx, &p)?;
    Ok(p)
}

fn new_provider(ctx: &Ctx, name: &str, raw: &RawProvider) -> Result<Provider, ConfigError> {
    let missing = |field: &str| {
        let message = format!("{field} is required (only {CLAUDE} is built in)");
        ctx.invalid(&["providers", name], message)
    };
    Ok(Provider {
        name: name.to_owned(),
        token_url: raw
            .token_url
            .as_ref()
            .ok_or_else(|| missing("token_url"))?
            .0
            .clone(),
        client_id: raw.client_id.clone().ok_or_else(|| missing("client_id"))?,
        client_secret: None,
        scopes: Vec::new(),
        revoke_url: None,
        usage_url: None,
        userinfo_url: None,
        token_request: TokenRequestFormat::Form,
        headers: BTreeMap::new(),
        usage_min_interval: DEFAULT_USAGE_MIN_INTERVAL,
        usage_windows: BTreeMap::new(),
    })
}

/// Window names follow the slot-name alphabet; pointers must be RFC 6901 (start with `/`).
fn check_usage_windows(
    ctx: &Ctx,
    provider: &str,
    windows: BTreeMap<String, WindowMapping>,
) -> Result<BTreeMap<String, WindowMapping>, ConfigError> {
    for (window, mapping) in &windows {
        let at = ["providers", provider, "usage_windows", window.as_str()];
        crate::slot_name::validate(window)
            .map_err(|m| ctx.invalid(&at, m.replacen("slot name", "window name", 1)))?;
        for pointer in std::iter::once(&mapping.utilization).chain(&mapping.resets_at) {
            if !pointer.starts_with('/') {
                return Err(ctx.invalid(
                    &at,
                    format!("{pointer:?} is not a JSON pointer (RFC 6901: it starts with '/')"),
                ));
            }
        }
    }
    Ok(windows)
}

fn check_provider(ctx: &Ctx, p: &Provider) -> Result<(), ConfigError> {
    let at = |field: &'static str| ["providers", p.name.as_str(), field];
    if p.client_id.trim().is_empty() {
        return Err(ctx.invalid(&at("client_id"), "must not be empty"));
    }
    if p.client_secret.as_ref().is_some_and(Secret::is_empty) {
        let message = "is empty; remove the key if the provider needs no secret";
        return Err(ctx.invalid(&at("client_secret"), message));
    }
    if let Some(bad) = p
        .scopes
        .iter()
        .find(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c.is_control()))
    {
        let message = format!(
            "scope {} must be non-empty with no spaces (list each one)",
            show(bad)
        );
        return Err(ctx.invalid(&at("scopes"), message));
    }
    Ok(())
}

/// Checks header names and values; names are stored lowercase, so two spellings of one
/// name are refused. Values are never quoted in errors: they may hold a credential.
fn check_headers(
    ctx: &Ctx,
    provider: &str,
    headers: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut checked = BTreeMap::new();
    for (name, value) in headers {
        let at = ["providers", provider, "headers", name.as_str()];
        let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(ctx.invalid(&at, "not a valid HTTP header name"));
        };
        if HeaderValue::from_str(&value).is_err() {
            let message = "the value is not a valid HTTP header value (control characters?)";
            return Err(ctx.invalid(&at, message));
        }
        if checked.insert(header.as_str().to_owned(), value).is_some() {
            return Err(ctx.invalid(&at, "header given twice (names ignore case)"));
        }
    }
    Ok(checked)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parses `text` as a config file named `test.yaml`.
    pub(crate) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.yaml"))
    }

    /// The (line, key, message) of an error that must be `Invalid`.
    pub(crate) fn refused(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected Invalid for {text:?}, got {other:?}"),
        }
    }

    const ACME: &str =
        "providers:\n  acme:\n    token_url: https://auth.example.com/t\n    client_id: id\n";

    #[test]
    fn empty_or_comment_only_files_give_the_defaults() {
        for text in ["", "\n\n", "# nothing\n  # here\n", "~\n", "---\n"] {
            let c = parse(text).unwrap();
            assert_eq!(c.refresh_before_expiry, Duration::from_secs(300));
            assert_eq!(c.quota_interval, Duration::from_secs(300));
            assert_eq!(c.stale_after, Duration::from_secs(900));
            assert_eq!(c.credential_store, CredentialStoreKind::Keychain);
            assert_eq!(c.providers.keys().collect::<Vec<_>>(), ["claude"]);
        }
    }

    #[test]
    fn builtin_claude_has_the_documented_endpoints() {
        let c = Config::default();
        let p = &c.providers["claude"];
        assert_eq!(p.name, "claude");
        assert_eq!(
            p.token_url.as_str(),
            "https://platform.claude.com/v1/oauth/token"
        );
        assert_eq!(p.client_id, "9d1c250a-e61b-44d9-88ed-5944d1962f5e");
        assert_eq!(p.token_request, TokenRequestFormat::Json);
        assert_eq!(
            p.usage_url.as_ref().map(Url::as_str),
            Some("https://api.anthropic.com/api/oauth/usage")
        );
        assert_eq!(p.headers["anthropic-beta"], "oauth-2025-04-20");
        assert_eq!(p.scopes, ["user:profile", "user:inference"]);
        assert_eq!(p.usage_min_interval, Duration::from_secs(180));
        assert!(p.revoke_url.is_none() && p.userinfo_url.is_none() && p.client_secret.is_none());
    }

    #[test]
    fn a_claude_entry_overrides_only_the_fields_it_gives() {
        let c = parse("providers:\n  claude:\n    token_url: http://127.0.0.1:8080/t\n    usage_min_interval: 10m\n").unwrap();
        let p = &c.providers["claude"];
        assert_eq!(p.token_url.as_str(), "http://127.0.0.1:8080/t");
        assert_eq!(p.usage_min_interval, Duration::from_secs(600));
        assert_eq!(p.client_id, "9d1c250a-e61b-44d9-88ed-5944d1962f5e");
        assert_eq!(p.token_request, TokenRequestFormat::Json);
        assert_eq!(p.headers.len(), 1);
        let c = parse("providers:\n  claude:\n").unwrap();
        assert_eq!(c.providers["claude"].scopes.len(), 2);
    }

    #[test]
    fn a_new_provider_gets_form_requests_and_a_60s_usage_interval() {
        let c = parse(ACME).unwrap();
        let p = &c.providers["acme"];
        assert_eq!(p.name, "acme");
        assert_eq!(p.token_request, TokenRequestFormat::Form);
        assert_eq!(p.usage_min_interval, Duration::from_secs(60));
        assert!(p.scopes.is_empty() && p.headers.is_empty());
        assert!(c.providers.contains_key("claude"));
    }

    #[test]
    fn a_new_provider_without_token_url_or_client_id_is_refused_at_its_name() {
        let (line, key, message) = refused("providers:\n  acme:\n    client_id: x\n");
        assert_eq!((line, key.as_str()), (2, "providers.acme"));
        assert!(message.contains("token_url is required"), "{message}");
        let (_, _, message) = refused("providers:\n  acme:\n    token_url: https://a/t\n");
        assert!(message.contains("client_id is required"), "{message}");
        let (line, _, _) = refused("providers:\n  acme:\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn every_key_is_read() {
        let text = "refresh_before_expiry: 0s\nquota_interval: 1h30m\nstale_after: 2d\n\
            credential_store: file\nstatusline:\n  format: '{name}'\n\
            providers:\n  acme:\n    token_url: https://a.example/t\n    client_id: id\n\
            \x20   client_secret: 12345\n    scopes: [openid, 'user:inference']\n\
            \x20   revoke_url: https://a.example/r\n    usage_url: https://a.example/u\n\
            \x20   userinfo_url: https://a.example/i\n    token_request: json\n\
            \x20   headers:\n      X-Client: sessctl\n    usage_min_interval: 500ms\n";
        let c = parse(text).unwrap();
        assert_eq!(c.refresh_before_expiry, Duration::ZERO);
        assert_eq!(c.quota_interval, Duration::from_secs(5400));
        assert_eq!(c.stale_after, Duration::from_secs(2 * 86400));
        assert_eq!(c.credential_store, CredentialStoreKind::File);
        let p = &c.providers["acme"];
        assert_eq!(p.client_secret.as_ref().map(Secret::expose), Some("12345"));
        assert_eq!(p.scopes, ["openid", "user:inference"]);
        assert_eq!(
            p.revoke_url.as_ref().unwrap().as_str(),
            "https://a.example/r"
        );
        assert_eq!(
            p.usage_url.as_ref().unwrap().as_str(),
            "https://a.example/u"
        );
        assert_eq!(
            p.userinfo_url.as_ref().unwrap().as_str(),
            "https://a.example/i"
        );
        assert_eq!(p.token_request, TokenRequestFormat::Json);
        assert_eq!(
            p.headers["x-client"], "sessctl",
            "header names are lowercased"
        );
        assert_eq!(p.usage_min_interval, Duration::from_millis(500));
    }

    #[test]
    fn durations_need_units_in_descending_order() {
        let ok = [
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("2d", 172_800_000),
            ("1h30m", 5_400_000),
            ("1d2h3m4s5ms", 93_784_005),
            ("500ms", 500),
            (" 0s ", 0),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        let err = parse_duration("300").unwrap_err();
        assert!(err.contains("add one") && err.contains("300s"), "{err}");
        for bad in [
            "", "m", "5", "5M", "5 m", "1.5h", "-5m", "30m1h", "1m1m", "5min", "1e3s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        let err = parse_duration("99999999999999999999d").unwrap_err();
        assert!(err.contains("too large"), "{err}");
        assert!(
            parse_duration("213503982334601d").is_err(),
            "u64 ms overflow"
        );
    }

    #[test]
    fn zero_is_refused_for_intervals_but_not_for_refresh_margin() {
        assert!(parse("refresh_before_expiry: 0s\n").is_ok());
        for key in ["quota_interval", "stale_after"] {
            let (line, k, message) = refused(&format!("# c\n{key}: 0ms\n"));
            assert_eq!((line, k.as_str()), (2, key));
            assert!(message.contains("greater than zero"), "{message}");
        }
    }

    #[test]
    fn a_bare_number_duration_says_to_add_a_unit_at_its_line() {
        let (line, key, message) = refused("stale_after: 5m\nquota_interval: 300\n");
        assert_eq!((line, key.as_str()), (2, "quota_interval"));
        assert!(message.contains("add one"), "{message}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name_and_line() {
        let (line, key, message) = refused("quota_interval: 5m\nquota_intervall: 5m\n");
        assert_eq!((line, key.as_str()), (2, "quota_intervall"));
        assert!(message.contains("unknown field"), "{message}");
        let (line, key, _) = refused(&format!("{ACME}    tokn_url: https://a/t\n"));
        assert_eq!((line, key.as_str()), (5, "providers.acme.tokn_url"));
    }

    #[test]
    fn urls_must_be_https_unless_loopback() {
        for url in [
            "http://localhost:9/t",
            "http://127.0.0.1/t",
            "http://127.8.9.10/t",
            "http://[::1]:80/t",
            "https://auth.example.com/t",
        ] {
            assert!(parse_endpoint(url).is_ok(), "{url}");
        }
        for url in [
            "http://example.com/t",
            "http://10.0.0.1/t",
            "ftp://x/t",
            "file:///t",
        ] {
            assert!(parse_endpoint(url).is_err(), "{url}");
        }
        let text = "providers:\n  acme:\n    token_url: https://a/t\n    client_id: x\n    revoke_url: http://evil.example/r\n";
        let (line, key, message) = refused(text);
        assert_eq!((line, key.as_str()), (5, "providers.acme.revoke_url"));
        assert!(message.contains("https"), "{message}");
        let (line, key, message) = refused("providers:\n  claude:\n    usage_url: not a url\n");
        assert_eq!((line, key.as_str()), (3, "providers.claude.usage_url"));
        assert!(message.contains("not a valid URL"), "{message}");
    }

    #[test]
    fn credentials_in_a_url_are_refused_without_echoing_them() {
        let (_, _, message) =
            refused("providers:\n  claude:\n    token_url: https://u:hunter2@a/t\n");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn provider_names_follow_the_slot_name_rule() {
        let (line, key, message) =
            refused("# x\nproviders:\n  Acme:\n    token_url: https://a/t\n    client_id: x\n");
        assert_eq!((line, key.as_str()), (3, "providers.Acme"));
        assert!(message.starts_with("provider name"), "{message}");
    }

    #[test]
    fn bad_headers_are_refused_without_showing_the_value() {
        let (line, key, _) = refused(&format!("{ACME}    headers:\n      'bad name': x\n"));
        assert_eq!((line, key.as_str()), (6, "providers.acme.headers.bad name"));
        let text = format!("{ACME}    headers:\n      authorization: \"Bearer hunter2\\n\"\n");
        let (line, key, message) = refused(&text);
        assert_eq!(
            (line, key.as_str()),
            (6, "providers.acme.headers.authorization")
        );
        assert!(!message.contains("hunter2"), "{message}");
        let (_, _, message) = refused(&format!("{ACME}    headers:\n      X-A: 1\n      x-a: 2\n"));
        assert!(message.contains("twice"), "{message}");
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() {
        let text = format!("{ACME}    client_secret: hunter2\n    scopes: 5\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let text = format!("{ACME}    client_secret: hunter2\n    headers: {{x-key: hunter3}}\n");
        let c = parse(&text).unwrap();
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("hunter3"),
            "{debug}"
        );
        assert!(debug.contains("x-key"), "{debug}");
        let (_, key, message) = refused(&format!("{ACME}    client_secret: ''\n"));
        assert_eq!(key, "providers.acme.client_secret");
        assert!(message.contains("empty"), "{message}");
    }

    #[test]
    fn scopes_must_be_single_tokens() {
        let (line, key, _) = refused(&format!("{ACME}    scopes: ['a b']\n"));
        assert_eq!((line, key.as_str()), (5, "providers.acme.scopes"));
        assert!(parse(&format!("{ACME}    scopes: ['']\n")).is_err());
    }

    #[test]
    fn type_and_syntax_errors_carry_the_parsers_line() {
        let (line, key, message) = refused(&format!("{ACME}    scopes: 5\n"));
        assert_eq!((line, key.as_str()), (5, "providers.acme.scopes"));
        assert!(message.contains("invalid type"), "{message}");
        let (line, key, message) = refused("quota_interval: 5m\ncredential_store: vault\n");
        assert_eq!((line, key.as_str()), (2, "credential_store"));
        assert!(message.contains("keychain"), "{message}");
        let (line, key, _) = refused("quota_interval: 5m\nstale_after: [\n");
        assert_eq!(key, SYNTAX_KEY);
        assert!(line >= 2, "{line}");
        let (_, key, message) = refused("- a\n- b\n");
        assert_eq!(key, TOP_LEVEL_KEY);
        assert!(!message.contains("Raw"), "internal names leak: {message}");
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_second_occurrence() {
        let (line, key, _) = refused("quota_interval: 5m\n\nquota_interval: 6m\n");
        assert_eq!((line, key.as_str()), (3, "quota_interval"));
        let (line, key, _) = refused("providers:\n  claude: {}\n  claude: {}\n");
        assert_eq!((line, key.as_str()), (3, "providers.claude"));
    }

    #[test]
    fn flow_style_and_anchors_work() {
        let c =
            parse("providers: {acme: {token_url: &u 'https://a/t', client_id: x, usage_url: *u}}")
                .unwrap();
        assert_eq!(
            c.providers["acme"].usage_url.as_ref().unwrap().as_str(),
            "https://a/t"
        );
        let (line, key, _) = refused("providers: {acme: {token_url: 'ftp://a', client_id: x}}");
        assert_eq!((line, key.as_str()), (1, "providers.acme.token_url"));
    }

    #[test]
    fn nasty_inputs_are_refused_without_panicking() {
        let laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
            e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
            g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
        let deep = "[".repeat(10_000);
        let nasty = [
            "\tquota_interval: 5m\n",
            "quota_interval:\t5m\n\t\n",
            "a: &x 1\nb: *x\n",
            "quota_interval: *nowhere\n",
            "- 1\n- 2\n",
            "just a string",
            "42",
            "\0\x01\x02\u{7f}\u{feff}junk: \u{fffd}",
            "quota_interval: 999999999999999999999999999999999999999999999s\n",
            "quota_interval: 1e400\n",
            "quota_interval: 5m\nquota_interval: 5m\n",
            "providers:\n  acme: {}\n  acme: {}\n",
            "---\na: 1\n---\nb: 2\n",
            "? [complex, key]\n: value\n",
            "providers:\n  ? [a]\n  : x\n",
            "<<: {quota_interval: 5m}\n",
            "providers: {claude: {headers: {'': ''}}}\n",
            "providers:\n  \"ünïcödé\":\n    token_url: https://a/t\n",
            "!!binary aGVsbG8=\n",
            "quota_interval: !!int 5\n",
            laughs,
            &deep,
            &format!("{}{}", "[".repeat(1000), "]".repeat(1000)),
            &"a:\n ".repeat(500),
        ];
        for text in nasty {
            match parse(text) {
                Err(ConfigError::Invalid { line, .. }) => assert!(line >= 1),
                other => panic!("{text:?} should be refused, got {other:?}"),
            }
        }
    }

    #[test]
    fn key_line_follows_indentation_and_falls_back_to_the_ancestor() {
        let text = "# top\nproviders:\n  # c\n  acme:\n    headers:\n      x: 1\n  other:\n    headers:\n      'x': 2\n";
        assert_eq!(key_line(text, &["providers", "acme", "headers", "x"]), 6);
        assert_eq!(key_line(text, &["providers", "other", "headers", "x"]), 9);
        assert_eq!(key_line(text, &["providers", "other", "nope"]), 7);
        assert_eq!(key_line(text, &["nope"]), 1);
        assert_eq!(key_line("", &["a"]), 1);
        assert_eq!(
            key_line("a:\n  b: 1\nb: 2\n", &["b"]),
            3,
            "nested b is not top-level b"
        );
    }

    #[test]
    fn load_distinguishes_a_missing_file_from_an_unreadable_one() {
        let dir = std::env::temp_dir().join(format!("sessctl-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.yaml");
        assert!(Config::load(&missing, false).is_ok());
        assert!(matches!(
            Config::load(&missing, true),
            Err(ConfigError::Read { .. })
        ));
        assert!(matches!(
            Config::load(&dir, false),
            Err(ConfigError::Read { .. })
        ));
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, b"quota_interval: 5m\n\xff\xfe\n").unwrap();
        match Config::load(&bad, false) {
            Err(ConfigError::Invalid { line, path, .. }) => assert_eq!((line, path), (2, bad)),
            other => panic!("{other:?}"),
        }
        let good = dir.join("good.yaml");
        std::fs::write(&good, "stale_after: 1h\n").unwrap();
        assert_eq!(
            Config::load(&good, true).unwrap().stale_after,
            Duration::from_secs(3600)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const EXAMPLE: &str = include_str!("../config/config.yaml");

    /// The lines between `# BEGIN name` and `# END name`, uncommented.
    fn example_block(name: &str) -> String {
        let lines = EXAMPLE.lines();
        let inside = lines
            .skip_while(|l| *l != format!("# BEGIN {name}"))
            .skip(1)
            .take_while(|l| *l != format!("# END {name}"));
        inside.fold(String::new(), |mut out, l| {
            out.push_str(l.strip_prefix("# ").unwrap_or(""));
            out.push('\n');
            out
        })
    }

    #[test]
    fn the_example_config_parses_to_the_defaults() {
        let c = parse(EXAMPLE).unwrap();
        let d = Config::default();
        assert_eq!(c.refresh_before_expiry, d.refresh_before_expiry);
        assert_eq!(c.quota_interval, d.quota_interval);
        assert_eq!(c.stale_after, d.stale_after);
        assert_eq!(c.credential_store, d.credential_store);
        assert_eq!(c.providers.keys().collect::<Vec<_>>(), ["claude"]);
    }

    #[test]
    fn the_documented_statusline_block_parses_to_the_defaults_but_the_slot() {
        let c = parse(&example_block("statusline")).unwrap();
        let (doc, default) = (&c.statusline, StatuslineConfig::default());
        assert_eq!(doc.format, default.format);
        assert_eq!(doc.separator, default.separator);
        assert_eq!((doc.ascii, doc.color), (default.ascii, default.color));
        assert_eq!(
            doc.stale_marker.as_deref(),
            Some(crate::statusline::STALE_MARKER)
        );
        assert_eq!(doc.claude_code_slot.as_deref(), Some("work"));
        assert_eq!(parse(EXAMPLE).unwrap().statusline, default);
    }

    #[test]
    fn the_commented_example_provider_parses() {
        let block = example_block("example provider");
        let c = parse(&block).unwrap();
        let p = &c.providers["acme"];
        assert!(p.client_secret.is_some() && p.revoke_url.is_some() && p.userinfo_url.is_some());
        assert_eq!(p.headers.len(), 1);
    }

    #[test]
    fn the_documented_claude_block_matches_the_builtin() {
        let c = parse(&example_block("built-in claude")).unwrap();
        let (doc, builtin) = (&c.providers["claude"], builtin_claude());
        assert_eq!(format!("{doc:?}"), format!("{builtin:?}"));
        assert_eq!(doc.headers, builtin.headers, "Debug hides header values");
    }

    #[test]
    fn usage_windows_map_names_to_json_pointers() {
        let base = "providers:\n  acme:\n    token_url: https://a.example/t\n    client_id: x\n    usage_windows:\n";
        let c = parse(&format!(
            "{base}      daily:\n        utilization: /limits/0/pct\n        resets_at: /limits/0/reset\n"
        ))
        .unwrap();
        let w = &c.providers["acme"].usage_windows["daily"];
        assert_eq!(w.utilization, "/limits/0/pct");
        assert_eq!(w.resets_at.as_deref(), Some("/limits/0/reset"));
        assert!(c.providers["claude"].usage_windows.is_empty());
        let err = parse(&format!(
            "{base}      daily:\n        utilization: limits.pct\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("providers.acme.usage_windows.daily"), "{err}");
        assert!(err.contains("JSON pointer"), "{err}");
        let err = parse(&format!("{base}      Daily:\n        utilization: /a\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("window name"), "{err}");
    }
}
