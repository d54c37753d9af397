//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::fhir::outcome::{FhirError, IssueCode};
use crate::store::Store;

/// The process is alive.
pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

/// The database answers.
pub async fn readyz(State(store): State<Store>) -> Result<impl IntoResponse, FhirError> {
    store.ping().await.map_err(|error| {
        tracing::warn!(%error, "readiness check failed");
        FhirError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueCode::Exception,
            "the database is not reachable",
        )
    })?;
    Ok((StatusCode::OK, "ready"))
}
