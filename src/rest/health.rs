//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::fhir::outcome::{FhirError, IssueCode};
use crate::state::AppState;

/// The process is alive.
pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

/// The database answers and the process is not shutting down: from the shutdown signal on,
/// the load balancer's health check sees 503 and sends new requests elsewhere.
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, FhirError> {
    if state.draining.is_draining() {
        return Err(FhirError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueCode::Exception,
            "this server is shutting down",
        ));
    }
    state.store.ping().await.map_err(|error| {
        tracing::warn!(%error, "readiness check failed");
        FhirError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueCode::Exception,
            "the database is not reachable",
        )
    })?;
    Ok((StatusCode::OK, "ready"))
}
