//! Gives every error response an OperationOutcome body, including those produced outside
//! the FHIR handlers (unknown routes, wrong methods, body limits, timeouts, panics) — except
//! a form of Kiln's own pages over the body limit, which gets an HTML page — and
//! bounds the request head (URI and header sizes) with an OperationOutcome of its own, and
//! gives every 503 a `Retry-After`.
//!
//! hyper refuses what it cannot parse before any of this runs, with a bare status and no
//! body: a request line or header it cannot read (400), a URI over 65,534 bytes (414), more
//! than 100 headers or a head over ~400 KB (431). The bounds here sit below hyper's, so every
//! request hyper can parse gets a FHIR answer.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::fhir::outcome::{FhirError, IssueCode};
use crate::store::RETRY_AFTER_SECS;

/// Longest request target (path and query) served; above it, 414. hyper's own limit is
/// 65,534 bytes; long searches belong in `POST [type]/_search`.
pub const MAX_URI_BYTES: usize = 32 * 1024;
/// Most bytes of header names and values served; above it, 431. hyper's own buffer holds
/// about 400 KB.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

pub async fn bound_request_head(request: Request<Body>, next: Next) -> Response {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return FhirError::new(
            StatusCode::URI_TOO_LONG,
            IssueCode::TooCostly,
            format!(
                "the request URI is {uri_bytes} bytes, more than the {MAX_URI_BYTES} this \
                 server accepts; send long searches as POST [type]/_search"
            ),
        )
        .into_response();
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return FhirError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            IssueCode::TooCostly,
            format!(
                "the request headers hold {header_bytes} bytes, more than the \
                 {MAX_HEADER_BYTES} this server accepts"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

pub async fn ensure_outcome(request: Request<Body>, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        // A timeout or an unavailable or overloaded database: worth trying again shortly.
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
    }
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
            && response.headers()[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|value| value.contains("json") || value.starts_with("text/html"))
    {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE && is_page_form(&path) {
        // A browser's form post (an upload) over the body limit: a page, not FHIR JSON.
        let mut page = crate::web::error::PageError::too_large().into_response();
        crate::web::html::set_page_headers(page.headers_mut());
        return page;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (IssueCode::NotFound, format!("no such endpoint: {path}")),
        StatusCode::METHOD_NOT_ALLOWED => (
            IssueCode::NotSupported,
            format!("{method} is not supported on {path}"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            IssueCode::TooCostly,
            "the request body is larger than this server accepts".to_string(),
        ),
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
            (IssueCode::Exception, "the request timed out".to_string())
        }
        status if status.is_server_error() => {
            (IssueCode::Exception, "internal server error".to_string())
        }
        status => (
            IssueCode::Invalid,
            status
                .canonical_reason()
                .unwrap_or("bad request")
                .to_string(),
        ),
    };
    let mut replaced = FhirError::new(status, code, message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            replaced.headers_mut().insert(name, value.clone());
        }
    }
    replaced
}

/// The paths of Kiln's own HTML forms (the developer portal, the admin console).
fn is_page_form(path: &str) -> bool {
    ["/developer/", "/admin/"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}
