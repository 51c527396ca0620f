//! The `oauth2` crate's async HTTP client, implemented over our own reqwest client (no second
//! HTTP stack, the same timeouts, size cap and no-redirect policy as every other provider
//! request). It also adapts oauth2's requests to providers that differ from RFC 6749: a
//! `token_request: json` provider gets the form body re-encoded as a JSON object, and every
//! request carries the provider's extra headers. With `token_headers: minimal` oauth2's own
//! `Accept: application/json` is taken off, as Claude Code sends none.
//!
//! A 200 over the parse limit is not handed to oauth2 whole: it is reduced to its refresh
//! token (read from up to 4 MiB), which the flows then keep (`flow::salvage`).
//!
//! Never puts a request or response body in an error: both may hold a token or a code.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::Utc;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};

use super::cause::{Cause, SendError};
use crate::config::{TokenHeaders, TokenRequestFormat};

/// Why a request sent for oauth2 got no usable HTTP reply.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Network, timeout, or an over-long reply (the text never holds a body).
    #[error("{0}")]
    Send(SendError),
    /// A 5xx or 429: reported as a transport error so that oauth2's device poll backs off
    /// and tries again instead of ending the login, and so that a failed code exchange
    /// says the provider is failing rather than that its error page does not parse.
    #[error("the token endpoint answered HTTP {status}")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// oauth2 built a request reqwest cannot send (not expected).
    #[error("cannot build the request: {0}")]
    Build(String),
}

/// An oauth2 HTTP client for one provider.
pub struct OAuth2Http<'a> {
    pub http: &'a reqwest::Client,
    pub format: TokenRequestFormat,
    pub headers: HeaderMap,
    /// Whether oauth2's `Accept` header stays.
    pub client_headers: TokenHeaders,
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuth2Http<'_> {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let url = reqwest::Url::parse(&parts.uri.to_string())
                .map_err(|e| HttpError::Build(e.to_string()))?;
            let mut headers = parts.headers;
            let body = match self.format {
                TokenRequestFormat::Json if is_form(&headers) => {
                    headers.insert(
                        CONTENT_TYPE,
                        reqwest::header::HeaderValue::from_static("application/json"),
                    );
                    form_to_json(&body)
                }
                _ => body,
            };
            if self.client_headers == TokenHeaders::Minimal {
                headers.remove(ACCEPT);
            }
            for (name, value) in &self.headers {
                headers.insert(name, value.clone());
            }
            let request = self
                .http
                .request(parts.method, url)
                .headers(headers)
                .body(body);
            let mut reply = super::send_reading(request, super::MAX_TOKEN_REPLY_BYTES)
                .await
                .map_err(HttpError::Send)?;
            if reply.status == 200 && (!reply.complete || reply.body.len() > super::MAX_BODY_BYTES)
            {
                reply.body = only_refresh_token(&reply.body, reply.complete);
            } else if !reply.complete || reply.body.len() > super::MAX_BODY_BYTES {
                return Err(HttpError::Send(SendError {
                    cause: Cause::Other,
                    detail: format!(
                        "reply over {} bytes (HTTP {})",
                        super::MAX_BODY_BYTES,
                        reply.status
                    ),
                }));
            }
            if reply.status >= 500 || reply.status == 429 {
                return Err(HttpError::Unavailable {
                    status: reply.status,
                    retry_after: reply
                        .retry_after
                        .as_deref()
                        .and_then(|v| super::parse_retry_after(v, Utc::now())),
                });
            }
            let mut response = http::Response::builder().status(reply.status);
            if let Some(content_type) = reply.content_type {
                response = response.header(CONTENT_TYPE, content_type);
            }
            response
                .body(reply.body)
                .map_err(|e| HttpError::Build(e.to_string()))
        })
    }
}

/// A 200 too large to be parsed, reduced to the one thing that must not be lost: its
/// refresh token, as `{"refresh_token":"..."}` (or `{}`). oauth2 then refuses it for want of
/// an access token, and `flow::salvage` keeps the refresh token (a grant with a defect).
fn only_refresh_token(body: &[u8], complete: bool) -> Vec<u8> {
    let object = match super::grant::salvage_refresh_token(body, complete) {
        Some(token) => serde_json::json!({ "refresh_token": token.expose() }),
        None => serde_json::json!({}),
    };
    serde_json::to_vec(&object).unwrap_or_else(|_| b"{}".to_vec())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// `a=1&b=x+y` as `{"a":"1","b":"x y"}` (every value a string, as Claude's endpoint takes).
fn form_to_json(body: &[u8]) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::from(v.into_owned())))
        .collect();
    serde_json::to_vec(&object).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_body_becomes_a_json_object_of_strings() {
        let json = form_to_json(b"grant_type=authorization_code&code=a%2Bb&state=x+y");
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"grant_type": "authorization_code", "code": "a+b", "state": "x y"})
        );
    }
}
