//! The YAML configuration: defaults, the built-in `claude` provider, validation. A bad file
//! is refused with the file, line and key at fault; nothing here panics on input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::secret::Secret;

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

/// One OAuth provider's endpoints and client.
#[derive(Debug, Clone)]
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
    /// Extra headers sent with every request to this provider.
    pub headers: BTreeMap<String, String>,
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
    /// `line` is 1-based; `key` is the dotted path (`providers.acme.token_url`).
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
        todo!("helper")
    }
}

impl Config {
    /// Loads `path`. A missing file gives the defaults unless `must_exist`.
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        todo!("helper {path:?} {must_exist}")
    }

    /// Parses YAML text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        todo!("helper {text} {path:?}")
    }
}

/// Parses `90s`, `5m`, `1h`, `1h30m`, `2d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    todo!("helper {text}")
}
