//! Providers in the config: overlaying a file's entry on the built-in provider, building a
//! new one, and the checks that need the whole provider (required fields, headers, usage
//! windows). Never quotes a secret (a client secret, a header value) in an error.

use std::collections::BTreeMap;

use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::secret::Secret;

use super::locate::{Ctx, show};
use super::values::{DurationField, EndpointUrl};
use super::{
    CLAUDE, ConfigError, DEFAULT_USAGE_MIN_INTERVAL, Provider, RedirectHost, RequestShape,
    TokenHeaders, TokenRequestFormat, WindowMapping,
};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    token_url: Option<EndpointUrl>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    scopes: Option<Vec<String>>,
    revoke_url: Option<EndpointUrl>,
    usage_url: Option<EndpointUrl>,
    userinfo_url: Option<EndpointUrl>,
    authorize_url: Option<EndpointUrl>,
    device_authorization_url: Option<EndpointUrl>,
    manual_redirect_uri: Option<EndpointUrl>,
    token_request: Option<RawTokenRequest>,
    headers: Option<BTreeMap<String, String>>,
    usage_min_interval: Option<DurationField<false>>,
    usage_windows: Option<BTreeMap<String, WindowMapping>>,
    redirect_host: Option<RedirectHost>,
    refresh_scopes: Option<Vec<String>>,
    revoke_request: Option<RawTokenRequest>,
    token_headers: Option<TokenHeaders>,
    usage_headers: Option<BTreeMap<String, String>>,
}

impl RawProvider {
    /// True when the file sets this provider's `usage_min_interval`.
    pub(super) fn sets_usage_min_interval(&self) -> bool {
        self.usage_min_interval.is_some()
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawTokenRequest {
    Form,
    Json,
}

impl RawTokenRequest {
    fn format(self) -> TokenRequestFormat {
        match self {
            RawTokenRequest::Form => TokenRequestFormat::Form,
            RawTokenRequest::Json => TokenRequestFormat::Json,
        }
    }
}

/// Overlays the request-shape fields the file gives (see `shape.rs`).
fn overlay_shape(
    ctx: &Ctx,
    name: &str,
    shape: &mut RequestShape,
    raw: &RawProvider,
) -> Result<(), ConfigError> {
    shape.redirect_host = raw.redirect_host.unwrap_or(shape.redirect_host);
    if let Some(scopes) = &raw.refresh_scopes {
        check_scopes(ctx, name, "refresh_scopes", scopes)?;
        shape.refresh_scopes.clone_from(scopes);
    }
    shape.revoke_request = raw
        .revoke_request
        .map_or(shape.revoke_request, RawTokenRequest::format);
    shape.token_headers = raw.token_headers.unwrap_or(shape.token_headers);
    if let Some(headers) = &raw.usage_headers {
        shape.usage_headers = check_headers(ctx, name, "usage_headers", headers.clone())?;
    }
    Ok(())
}

/// Overlays the fields given in the file on the built-in provider of that name, or builds
/// a new provider (then `token_url` and `client_id` are required).
pub(super) fn build_provider(
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
    overlay_shape(ctx, name, &mut p.shape, &raw)?;
    p.token_url = raw.token_url.map_or(p.token_url, |u| u.0);
    p.client_id = raw.client_id.unwrap_or(p.client_id);
    p.client_secret = raw.client_secret.or(p.client_secret);
    p.scopes = raw.scopes.unwrap_or(p.scopes);
    p.revoke_url = raw.revoke_url.map(|u| u.0).or(p.revoke_url);
    p.usage_url = raw.usage_url.map(|u| u.0).or(p.usage_url);
    p.userinfo_url = raw.userinfo_url.map(|u| u.0).or(p.userinfo_url);
    p.authorize_url = raw.authorize_url.map(|u| u.0).or(p.authorize_url);
    p.device_authorization_url = raw
        .device_authorization_url
        .map(|u| u.0)
        .or(p.device_authorization_url);
    p.manual_redirect_uri = raw
        .manual_redirect_uri
        .map(|u| u.0)
        .or(p.manual_redirect_uri);
    p.token_request = raw
        .token_request
        .map_or(p.token_request, RawTokenRequest::format);
    if let Some(headers) = raw.headers {
        p.headers = check_headers(ctx, name, "headers", headers)?;
    }
    p.usage_min_interval = raw.usage_min_interval.map_or(p.usage_min_interval, |d| d.0);
    if let Some(windows) = raw.usage_windows {
        p.usage_windows = check_usage_windows(ctx, name, windows)?;
    }
    check_provider(ctx, &p)?;
    Ok(p)
}

pub(super) fn new_provider(
    ctx: &Ctx,
    name: &str,
    raw: &RawProvider,
) -> Result<Provider, ConfigError> {
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
        authorize_url: None,
        device_authorization_url: None,
        manual_redirect_uri: None,
        token_request: TokenRequestFormat::Form,
        headers: BTreeMap::new(),
        usage_min_interval: DEFAULT_USAGE_MIN_INTERVAL,
        usage_windows: BTreeMap::new(),
        shape: RequestShape::default(),
    })
}

/// Window names follow the slot-name alphabet; pointers must be RFC 6901 (start with `/`).
pub(super) fn check_usage_windows(
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

pub(super) fn check_provider(ctx: &Ctx, p: &Provider) -> Result<(), ConfigError> {
    let at = |field: &'static str| ["providers", p.name.as_str(), field];
    if p.client_id.trim().is_empty() {
        return Err(ctx.invalid(&at("client_id"), "must not be empty"));
    }
    if p.client_secret.as_ref().is_some_and(Secret::is_empty) {
        let message = "is empty; remove the key if the provider needs no secret";
        return Err(ctx.invalid(&at("client_secret"), message));
    }
    check_scopes(ctx, &p.name, "scopes", &p.scopes)
}

/// Each scope non-empty, without spaces or control characters.
fn check_scopes(
    ctx: &Ctx,
    provider: &str,
    field: &str,
    scopes: &[String],
) -> Result<(), ConfigError> {
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c.is_control()))
    {
        let message = format!(
            "scope {} must be non-empty with no spaces (list each one)",
            show(bad)
        );
        return Err(ctx.invalid(&["providers", provider, field], message));
    }
    Ok(())
}

/// Checks header names and values; names are stored lowercase, so two spellings of one
/// name are refused. Values are never quoted in errors: they may hold a credential.
pub(super) fn check_headers(
    ctx: &Ctx,
    provider: &str,
    field: &str,
    headers: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut checked = BTreeMap::new();
    for (name, value) in headers {
        let at = ["providers", provider, field, name.as_str()];
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
