//! The credentials document Claude Code stores (the `.credentials.json` file on Linux, the
//! keychain secret on macOS): `{"claudeAiOauth": {"accessToken", "refreshToken", "expiresAt"
//! (epoch ms), "scopes", …}, …}`.
//!
//! The document is kept as a JSON map so every field sessctl does not own (at the top level,
//! such as `mcpOAuth`, and inside `claudeAiOauth`, such as `subscriptionType`,
//! `rateLimitTier`, `clientId`, `accountUuid`) survives a rewrite unchanged. sessctl only
//! ever sets `accessToken`, `refreshToken`, `expiresAt` and (when it has them) `scopes`.
//!
//! Tokens leave this module only as [`Secret`]s; `Debug` shows key names, never values, and
//! parse errors name a position, never content.

use serde_json::{Map, Value};

use crate::secret::Secret;

/// The top-level key of Claude Code's OAuth login.
pub const OAUTH_KEY: &str = "claudeAiOauth";
const ACCESS_TOKEN: &str = "accessToken";
const REFRESH_TOKEN: &str = "refreshToken";
const EXPIRES_AT: &str = "expiresAt";
const SCOPES: &str = "scopes";
const LOGIN_ENDED: &str = "loginEnded";
const SUBSCRIPTION_TYPE: &str = "subscriptionType";
const RATE_LIMIT_TIER: &str = "rateLimitTier";

/// Why a store's bytes are not a credentials document sessctl can use. Messages never
/// quote the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not JSON at all (or truncated); the position of the first fault.
    #[error("not valid JSON (line {line}, column {column})")]
    Corrupt { line: usize, column: usize },
    /// Valid JSON, but not an object at the top.
    #[error("the top level is not a JSON object")]
    NotAnObject,
    /// `claudeAiOauth` (or a field sessctl reads inside it) has the wrong type.
    #[error("field `{field}` is not {expected}")]
    BadField {
        field: &'static str,
        expected: &'static str,
    },
}

/// The tokens sessctl reads from and writes into `claudeAiOauth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthTokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// `expiresAt`: epoch milliseconds; `None` when absent or null.
    pub expires_at_ms: Option<i64>,
    /// `scopes`; `None` when absent (a write then leaves the stored value alone).
    pub scopes: Option<Vec<String>>,
}

/// What a store holds, each case distinct so a caller can say exactly what it found.
#[derive(Debug, Clone)]
pub enum StoreContents {
    /// No file (or no keychain item).
    Missing,
    /// The file exists but holds nothing but whitespace.
    Empty,
    /// A document without `claudeAiOauth` (e.g. only MCP logins): not logged in.
    NoOAuth(StoreDocument),
    /// `claudeAiOauth` with an empty `refreshToken`: Claude Code blanked it after the grant
    /// died (`invalid_grant`) or a login ended. `login_ended` is its `loginEnded` reason.
    Blanked {
        document: StoreDocument,
        login_ended: Option<String>,
    },
    /// A usable login.
    Present {
        document: StoreDocument,
        tokens: OAuthTokens,
    },
}

/// The whole credentials document, every field kept.
#[derive(Clone, PartialEq)]
pub struct StoreDocument {
    root: Map<String, Value>,
}

impl std::fmt::Debug for StoreDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key names only: values hold tokens (ours and other logins', such as mcpOAuth).
        f.debug_struct("StoreDocument")
            .field("keys", &self.root.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for StoreDocument {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreDocument {
    /// An empty document (a store that does not exist yet).
    pub fn new() -> Self {
        StoreDocument { root: Map::new() }
    }

    /// The tokens in `claudeAiOauth`, or `None` without one (or with a blank refresh token).
    pub fn tokens(&self) -> Result<Option<OAuthTokens>, FormatError> {
        let Some(oauth) = self.oauth()? else {
            return Ok(None);
        };
        let refresh_token = string_field(oauth, REFRESH_TOKEN)?.unwrap_or_default();
        if refresh_token.is_empty() {
            return Ok(None);
        }
        Ok(Some(OAuthTokens {
            access_token: Secret::new(string_field(oauth, ACCESS_TOKEN)?.unwrap_or_default()),
            refresh_token: Secret::new(refresh_token),
            expires_at_ms: expires_at(oauth)?,
            scopes: scopes(oauth)?,
        }))
    }

    /// Sets sessctl's fields in `claudeAiOauth` (creating it when missing), keeping every
    /// other field of the document as it was.
    pub fn set_tokens(&mut self, tokens: &OAuthTokens) {
        let entry = self
            .root
            .entry(OAUTH_KEY)
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(oauth) = entry else {
            return;
        };
        oauth.insert(
            ACCESS_TOKEN.into(),
            tokens.access_token.expose().to_owned().into(),
        );
        oauth.insert(
            REFRESH_TOKEN.into(),
            tokens.refresh_token.expose().to_owned().into(),
        );
        oauth.insert(
            EXPIRES_AT.into(),
            tokens.expires_at_ms.map_or(Value::Null, Value::from),
        );
        if let Some(scopes) = &tokens.scopes {
            oauth.insert(SCOPES.into(), Value::from(scopes.clone()));
        }
    }

    /// Puts a new login into the document as Claude Code's `/login` does: `claudeAiOauth`
    /// is replaced whole (fields of the login it replaces, such as `accountUuid` or
    /// `subscriptionType`, may be another account's), with `subscriptionType` and
    /// `rateLimitTier` null (sessctl does not know them; Claude Code fills them in from the
    /// profile); every top-level field (`mcpOAuth`, …) is kept.
    pub fn set_login(&mut self, tokens: &OAuthTokens) {
        let mut oauth = Map::new();
        oauth.insert(SUBSCRIPTION_TYPE.into(), Value::Null);
        oauth.insert(RATE_LIMIT_TIER.into(), Value::Null);
        self.root.insert(OAUTH_KEY.into(), Value::Object(oauth));
        self.set_tokens(&OAuthTokens {
            scopes: Some(tokens.scopes.clone().unwrap_or_default()),
            ..tokens.clone()
        });
    }

    /// Removes `claudeAiOauth` (the login moves to another store), keeping the rest.
    pub fn remove_oauth(&mut self) {
        self.root.remove(OAUTH_KEY);
    }

    /// The fields of `claudeAiOauth` that belong to the account rather than to its current
    /// tokens (scopes, subscriptionType, rateLimitTier, accountUuid, …): what goes with the
    /// account when `sessctl use` moves it out of this store. Never a token: the two token
    /// fields, and any other field whose name says it holds a token, are left out.
    pub fn account_fields(&self) -> Map<String, Value> {
        let Ok(Some(oauth)) = self.oauth() else {
            return Map::new();
        };
        oauth
            .iter()
            .filter(|(key, _)| !holds_a_token(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// Replaces the login in this store with another account's: `claudeAiOauth` becomes
    /// that account's `fields` (from [`StoreDocument::account_fields`]) with `tokens` set
    /// over them. Nothing of the previous login is kept in `claudeAiOauth`; every other
    /// top-level field of the document is.
    pub fn replace_account(&mut self, fields: &Map<String, Value>, tokens: &OAuthTokens) {
        let fields: Map<String, Value> = fields
            .iter()
            .filter(|(key, _)| !holds_a_token(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        self.root.insert(OAUTH_KEY.into(), Value::Object(fields));
        self.set_tokens(tokens);
    }

    /// The document as Claude Code writes it (compact JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A map of JSON values always serializes.
        serde_json::to_vec(&self.root).unwrap_or_default()
    }

    /// The raw value of a top-level field, for callers that need one sessctl does not own.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.root.get(key)
    }

    fn oauth(&self) -> Result<Option<&Map<String, Value>>, FormatError> {
        match self.root.get(OAUTH_KEY) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(FormatError::BadField {
                field: OAUTH_KEY,
                expected: "an object",
            }),
        }
    }
}

/// Whether a `claudeAiOauth` field holds a token (its name mentions one and it is not a
/// time such as `refreshTokenExpiresAt`): such a field never leaves the store with the
/// account's other fields.
fn holds_a_token(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("token") && !key.ends_with("expiresat")
}

/// Parses a store's bytes into one of the distinct [`StoreContents`] cases.
pub fn parse(bytes: &[u8]) -> Result<StoreContents, FormatError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(StoreContents::Empty);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|err| FormatError::Corrupt {
        line: err.line(),
        column: err.column(),
    })?;
    let Value::Object(root) = value else {
        return Err(FormatError::NotAnObject);
    };
    let document = StoreDocument { root };
    let Some(oauth) = document.oauth()? else {
        return Ok(StoreContents::NoOAuth(document));
    };
    if string_field(oauth, REFRESH_TOKEN)?.is_none_or(|token| token.is_empty()) {
        let login_ended = string_field(oauth, LOGIN_ENDED).ok().flatten();
        return Ok(StoreContents::Blanked {
            document,
            login_ended,
        });
    }
    match document.tokens()? {
        Some(tokens) => Ok(StoreContents::Present { document, tokens }),
        None => Ok(StoreContents::NoOAuth(document)),
    }
}

fn string_field(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, FormatError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FormatError::BadField {
            field,
            expected: "a string",
        }),
    }
}

fn expires_at(map: &Map<String, Value>) -> Result<Option<i64>, FormatError> {
    let bad = FormatError::BadField {
        field: EXPIRES_AT,
        expected: "a number of epoch milliseconds",
    };
    match map.get(EXPIRES_AT) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ms) => Ok(Some(ms)),
            // JavaScript numbers may carry a fraction; whole milliseconds are enough.
            #[allow(clippy::cast_possible_truncation)]
            None => n.as_f64().map(|ms| Some(ms as i64)).ok_or(bad),
        },
        Some(_) => Err(bad),
    }
}

fn scopes(map: &Map<String, Value>) -> Result<Option<Vec<String>>, FormatError> {
    let bad = FormatError::BadField {
        field: SCOPES,
        expected: "a list of strings",
    };
    match map.get(SCOPES) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or(bad.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad),
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
