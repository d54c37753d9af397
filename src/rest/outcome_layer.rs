//! Gives every error response an OperationOutcome body, including those produced outside
//! the FHIR handlers (unknown routes, wrong methods, body limits, timeouts, panics), and
//! every 503 a `Retry-After`.

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::fhir::outcome::{FhirError, IssueCode};

/// `Retry-After` of a 503 that did not set its own.
const RETRY_AFTER_SECS: &str = "5";

pub async fn ensure_outcome(request: Request<Body>, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        // A timeout or an overloaded database: worth trying again shortly.
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
            && response.headers()[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|value| value.contains("json") || value.starts_with("text/html"))
    {
        return response;
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
