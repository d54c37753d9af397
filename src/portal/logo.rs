//! `GET /apps/logo/{digest}`: an app's logo, served by Kiln from the store with the content
//! type it was stored with (PNG or JPEG, recognised by its bytes at upload), never sniffed,
//! cached for long (the name is the content's digest) and under a CSP that runs nothing.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// `GET /apps/logo/{digest}`: 404 for a name that is not a stored logo's hex digest.
pub async fn serve(State(state): State<AppState>, Path(digest): Path<String>) -> Response {
    let valid = digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !valid {
        return StatusCode::NOT_FOUND.into_response();
    }
    let row = match state.store.logo(&digest).await {
        Ok(Some(row)) => row,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            tracing::warn!(%error, "app logo: store failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let content_type = match row.content_type.as_str() {
        "image/png" => "image/png",
        "image/jpeg" => "image/jpeg",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = row.data.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    response
}
