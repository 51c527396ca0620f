//! The YAML configuration: defaults, the built-in `claude` provider, validation. A bad file
//! is refused with the file, line and key at fault; nothing here panics on input.
//!
//! Parsing runs in two passes over the text: first into a generic YAML value (syntax errors,
//! duplicate keys, an empty document), then into private `Raw*` structs that refuse unknown
//! keys and check durations and URLs while deserializing, so those errors carry the line the
//! YAML parser saw. Checks that need the whole provider (required fields, header names) run
//! afterwards and find their line with a small indentation scanner (`locate`).
//!
//! This module must never put a secret (`client_secret`, a header value) in an error
//! message, and never touches the network or the disk except to read the config file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::secret::Secret;

mod alerting;
mod bounds;
mod limits;
mod locate;
mod logs;
mod provider;
mod shape;
mod statusline;
#[cfg(test)]
pub(crate) mod tests;
mod values;

pub use alerting::{
    AlertCommand, AlertsConfig, DEFAULT_COMMAND_TIMEOUT, DEFAULT_REMIND_EVERY, MIN_REMIND_EVERY,
    Notifications,
};
use alerting::{RawAlertCommand, RawAlerts};
pub use bounds::{MAX_CONFIG_BYTES, MAX_DURATION, MAX_PROVIDERS};
use locate::Ctx;
pub use logs::{DEFAULT_LOG_RETENTION, LogRotation};
use provider::{RawProvider, build_provider};
pub use shape::{CLAUDE_CODE_LOGIN_SCOPES, RedirectHost, RequestShape, TokenHeaders};
pub use statusline::StatuslineConfig;
use values::DurationField;
pub use values::parse_duration;

/// Refresh this long before the access token expires: enough for a few retries with backoff
/// (and a late wake-up from a timer) before the token is actually dead.
pub const DEFAULT_REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Poll each slot's quota this often: fresh enough for a status line, rare enough to be
/// negligible load on the provider.
pub const DEFAULT_QUOTA_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// A slot's readings are shown as stale after this long without an update: three missed
/// quota polls at the default interval.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// First wait before a failed revocation is retried: long enough not to hammer a provider
/// that is down, short enough that a blip costs the user nothing.
pub const DEFAULT_REVOCATION_RETRY: Duration = Duration::from_secs(30);
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
    /// The authorization endpoint, for the browser (PKCE) and pasted-code logins.
    pub authorize_url: Option<Url>,
    /// The RFC 8628 device authorization endpoint, for `login --device`.
    pub device_authorization_url: Option<Url>,
    /// The redirect URI registered for pasted-code logins (`login --manual`): its page
    /// shows the code to paste.
    pub manual_redirect_uri: Option<Url>,
    pub token_request: TokenRequestFormat,
    /// Extra headers sent with every request to this provider. Names are lowercase.
    pub headers: BTreeMap<String, String>,
    /// Never ask the usage endpoint more often than this (180 s for claude, 60 s otherwise).
    pub usage_min_interval: Duration,
    /// How to read usage windows from the usage reply: window name to JSON pointers.
    /// Empty: Claude's shape (every top-level object with a numeric `utilization`).
    pub usage_windows: BTreeMap<String, WindowMapping>,
    /// Redirect host, refresh `scope`, revocation body, client headers, usage headers.
    pub shape: RequestShape,
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
            .field("authorize_url", &url(&self.authorize_url))
            .field(
                "device_authorization_url",
                &url(&self.device_authorization_url),
            )
            .field("manual_redirect_uri", &url(&self.manual_redirect_uri))
            .field("token_request", &self.token_request)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("usage_min_interval", &self.usage_min_interval)
            .field("usage_windows", &self.usage_windows)
            .field("redirect_host", &self.shape.redirect_host)
            .field("refresh_scopes", &self.shape.refresh_scopes)
            .field("revoke_request", &self.shape.revoke_request)
            .field("token_headers", &self.shape.token_headers)
            .field(
                "usage_headers",
                &self.shape.usage_headers.keys().collect::<Vec<_>>(),
            )
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
    /// Whether alerts also show as desktop notifications.
    pub notifications: Notifications,
    /// A program run with each alert event as JSON on stdin.
    pub alert_command: Option<AlertCommand>,
    /// The `alerts:` section (reminders).
    pub alerts: AlertsConfig,
    /// When the daemon starts a new log file, and how many log files are kept (≥ 1).
    pub log_rotation: LogRotation,
    pub log_retention: usize,
    /// Accepted but doubtful settings, for the daemon to log at start (see `bounds`).
    pub warnings: Vec<String>,
    /// The first wait before a failed revocation is tried again; it doubles per attempt up
    /// to [`crate::revocation::MAX_RETRY_INTERVAL`].
    pub revocation_retry: Duration,
    /// Requests to the token and revocation endpoints out at once (refreshes, logins of
    /// every kind and revocations together).
    pub max_token_requests: usize,
    /// Usage fetches out at once.
    pub max_usage_requests: usize,
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
    /// The file is over [`MAX_CONFIG_BYTES`]; it was not parsed.
    #[error(
        "{path}: the file is larger than {} KiB, the most a config may be; is it the right file?",
        limit / 1024
    )]
    TooLarge { path: PathBuf, limit: u64 },
}

impl Default for Config {
    fn default() -> Self {
        Config {
            refresh_before_expiry: DEFAULT_REFRESH_BEFORE_EXPIRY,
            quota_interval: DEFAULT_QUOTA_INTERVAL,
            stale_after: DEFAULT_STALE_AFTER,
            revocation_retry: DEFAULT_REVOCATION_RETRY,
            credential_store: CredentialStoreKind::Keychain,
            providers: BTreeMap::from([(CLAUDE.to_owned(), builtin_claude())]),
            statusline: StatuslineConfig::default(),
            notifications: Notifications::default(),
            alert_command: None,
            alerts: AlertsConfig::default(),
            log_rotation: LogRotation::default(),
            log_retention: DEFAULT_LOG_RETENTION,
            warnings: Vec::new(),
            max_token_requests: limits::DEFAULT_MAX_TOKEN_REQUESTS,
            max_usage_requests: limits::DEFAULT_MAX_USAGE_REQUESTS,
        }
    }
}

/// The built-in `claude` provider, shaped like Claude Code's own requests; a
/// `providers.claude` entry overrides it field by field.
fn builtin_claude() -> Provider {
    let url = |s: &str| Url::parse(s).expect("built-in URLs are valid (tested)");
    Provider {
        name: CLAUDE.to_owned(),
        token_url: url("https://platform.claude.com/v1/oauth/token"),
        client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e".to_owned(),
        client_secret: None,
        scopes: CLAUDE_CODE_LOGIN_SCOPES.map(str::to_owned).to_vec(),
        revoke_url: Some(url("https://platform.claude.com/v1/oauth/token/revoke")),
        usage_url: Some(url("https://api.anthropic.com/api/oauth/usage")),
        userinfo_url: None,
        // `code=true` asks Claude's authorize page to show `code#state` when the redirect
        // is the pasted-code page, as Claude Code does; oauth2 keeps this query.
        authorize_url: Some(url("https://claude.com/cai/oauth/authorize?code=true")),
        device_authorization_url: None,
        manual_redirect_uri: Some(url("https://platform.claude.com/oauth/code/callback")),
        token_request: TokenRequestFormat::Json,
        // `anthropic-beta` goes with the usage request only (`shape.usage_headers`).
        headers: BTreeMap::new(),
        usage_min_interval: CLAUDE_USAGE_MIN_INTERVAL,
        usage_windows: BTreeMap::new(),
        shape: RequestShape::claude_code(),
    }
}

impl Config {
    /// Loads `path`. A missing file gives the defaults unless `must_exist`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read (or is missing and `must_exist`),
    /// [`ConfigError::Invalid`] when its content is refused (see [`Config::parse`]).
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        let bytes = match bounds::read_bounded(path) {
            Ok(bytes) => bytes?,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    refresh_before_expiry: Option<DurationField<true>>,
    quota_interval: Option<DurationField<false>>,
    stale_after: Option<DurationField<false>>,
    credential_store: Option<CredentialStoreKind>,
    providers: Option<BTreeMap<String, Option<RawProvider>>>,
    statusline: Option<statusline::RawStatusline>,
    notifications: Option<Notifications>,
    alert_command: Option<RawAlertCommand>,
    alerts: Option<RawAlerts>,
    log_rotation: Option<LogRotation>,
    log_retention: Option<logs::LogRetention>,
    revocation_retry: Option<DurationField<false>>,
    max_token_requests: Option<limits::RequestLimit>,
    max_usage_requests: Option<limits::RequestLimit>,
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
        if let Some(d) = self.revocation_retry {
            config.revocation_retry = d.0;
        }
        if let Some(limit) = self.max_token_requests {
            config.max_token_requests = limit.0;
        }
        if let Some(limit) = self.max_usage_requests {
            config.max_usage_requests = limit.0;
        }
        if let Some(kind) = self.credential_store {
            config.credential_store = kind;
        }
        config.log_rotation = self.log_rotation.unwrap_or_default();
        config.log_retention = self.log_retention.map_or(DEFAULT_LOG_RETENTION, |r| r.0);
        if let Some(raw) = self.statusline {
            config.statusline = raw.build(ctx)?;
        }
        if let Some(notifications) = self.notifications {
            config.notifications = notifications;
        }
        config.alert_command = self.alert_command.map(|c| c.0);
        config.alerts = self.alerts.map(RawAlerts::build).unwrap_or_default();
        let providers = self.providers.unwrap_or_default();
        bounds::check_provider_count(ctx, providers.len())?;
        let named = providers.keys().cloned().collect();
        let mut intervals_given = std::collections::BTreeSet::new();
        for (name, raw) in providers {
            if raw
                .as_ref()
                .is_some_and(RawProvider::sets_usage_min_interval)
            {
                intervals_given.insert(name.clone());
            }
            let builtin = config.providers.remove(&name);
            let provider = build_provider(ctx, &name, builtin, raw.unwrap_or_default())?;
            config.providers.insert(name, provider);
        }
        config.warnings = bounds::check_usage_intervals(ctx, &config, &named, &intervals_given)?;
        Ok(config)
    }
}
