//! What the token, introspection, revocation and registration endpoints share: their
//! bodies (and their size limits), the RFC 6749 §5.2 error answer (with the RFC 7591 codes),
//! and JSON answers that no cache may keep.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::state::keys::KeyError;
use crate::store::{StoreError, Trouble};

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// The client tried HTTP Basic: a 401 must name that scheme.
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    /// A bearer token that does not authorize the caller (RFC 6750 §3.1).
    pub fn invalid_token(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// RFC 7591 §3.2.2: a client metadata field is invalid.
    pub fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            description,
        )
    }

    /// RFC 7591 §3.2.2: a redirect URI is invalid.
    pub fn invalid_redirect_uri(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", description)
    }

    fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    fn server_error(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "token endpoint failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the authorization server failed; try again later",
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        match error.trouble() {
            Trouble::Fault => OAuthError::server_error(&error),
            Trouble::Unavailable | Trouble::Full => {
                tracing::warn!(%error, "token endpoint: database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the authorization server's database is unavailable; try again shortly",
                )
            }
        }
    }
}

impl From<KeyError> for OAuthError {
    fn from(error: KeyError) -> Self {
        OAuthError::server_error(&error)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = no_store(self.status, body);
        let challenge = if self.error == "invalid_token" {
            Some("Bearer error=\"invalid_token\"")
        } else if self.basic_challenge && self.status == StatusCode::UNAUTHORIZED {
            Some("Basic realm=\"kiln\"")
        } else {
            None
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// A JSON answer with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The largest form body the token, introspection and revocation endpoints read: room for a
/// client assertion of [`super::assertion::MAX_BYTES`] and the other parameters.
pub const MAX_FORM_BYTES: usize = 32 * 1024;

/// Reads a request body of at most `limit` bytes; a larger one is refused (413). Past the
/// limit the body is read on and dropped, never kept, so the client has sent it all when the
/// answer comes and reads the answer instead of a reset connection; the server-wide body
/// limit and request timeout bound that reading.
pub async fn read_bounded(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, OAuthError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let mut too_large = declared.is_some_and(|length| length > limit as u64);
    let mut kept = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        // A connection gone, or past the server-wide limit: either way, too much or nothing.
        let chunk = chunk.map_err(|_| OAuthError::body_too_large(limit))?;
        if too_large || kept.len() + chunk.len() > limit {
            too_large = true;
            kept = Vec::new();
        } else {
            kept.extend_from_slice(&chunk);
        }
    }
    if too_large {
        return Err(OAuthError::body_too_large(limit));
    }
    Ok(kept)
}

/// The parameters of an `application/x-www-form-urlencoded` body, each sent at most once.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

/// The form body of a token, introspection or revocation request, as the handler's last
/// extractor.
impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = OAuthError;

    async fn from_request(request: Request, _: &S) -> Result<Params, OAuthError> {
        let (parts, body) = request.into_parts();
        Params::read(&parts.headers, body).await
    }
}

impl Params {
    /// Reads and parses a request body of at most [`MAX_FORM_BYTES`] (see [`read_bounded`]).
    pub async fn read(headers: &HeaderMap, body: Body) -> Result<Params, OAuthError> {
        let kept = read_bounded(headers, body, MAX_FORM_BYTES).await?;
        Self::parse(headers, &kept)
    }

    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| {
                media
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            // RFC 6749 §3.2: a parameter sent twice makes the request invalid.
            if params.insert(name.to_string(), value.to_string()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter {name} is repeated"
                )));
            }
        }
        Ok(Params(params))
    }

    /// A parameter's value; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("the parameter {name} is missing")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        headers
    }

    #[test]
    fn parses_forms_and_refuses_repeats_and_other_media() {
        let params = Params::parse(&form_headers(), b"a=1&b=x%20y&c=").unwrap();
        assert_eq!(params.get("b"), Some("x y"));
        assert_eq!(params.get("c"), None);
        assert_eq!(params.require("c").unwrap_err().error, "invalid_request");
        let repeated = Params::parse(&form_headers(), b"a=1&a=2").unwrap_err();
        assert_eq!(repeated.error, "invalid_request");
        let json = Params::parse(&HeaderMap::new(), b"{}").unwrap_err();
        assert_eq!(json.status, StatusCode::BAD_REQUEST);
    }
}
