//! Rendering a page, the choice lists, redirects and the headers every page gets. Each page's
//! own template is in its file; errors are in `error.rs`.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::error::PageError;
use crate::config::ServeConfig;

/// One choice in a list (a patient, an encounter, an app).
pub struct Choice {
    pub id: String,
    pub label: String,
}

/// Renders a page with a status.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => PageError::internal(error).into_response(),
    }
}

/// Every page and its redirects: never cached (they carry codes and personal data), never
/// framed (clickjacking of the consent button), and a CSP that runs no script and loads
/// styles and images from Kiln only.
pub async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    set_page_headers(response.headers_mut());
    response
}

/// The headers of [`page_headers`], for a page answered outside the pages' routers.
pub fn set_page_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   base-uri 'none'; frame-ancestors 'none'";

/// The absolute URL of Kiln's `path` (starting with `/`), under the public base URL.
pub fn url(config: &ServeConfig, path: &str) -> String {
    format!("{}{path}", config.base_url.trim_end_matches('/'))
}

/// A time (seconds since the epoch) as a page shows it (RFC 3339, UTC).
pub fn date(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A `303 See Other` to `location`: the browser follows it with a GET.
pub fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(error) => PageError::internal(error).into_response(),
    }
}
