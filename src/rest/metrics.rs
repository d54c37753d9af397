//! `GET /metrics`: the Prometheus text exposition of `telemetry`, with the gauges read from
//! the store at scrape time (pool use, export jobs by state). Outside the FHIR API and its
//! SMART token; with `--metrics-token` the scraper sends that secret as a bearer token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::ServeConfig;
use crate::fhir::outcome::{FhirError, IssueCode};
use crate::store::{ExportStatus, Store};
use crate::telemetry;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(
    State(store): State<Store>,
    State(config): State<Arc<ServeConfig>>,
    headers: HeaderMap,
) -> Response {
    if let Some(secret) = &config.metrics.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, secret)| secret);
        if !crate::crypto::same(presented, secret.expose()) {
            let mut response = FhirError::new(
                StatusCode::UNAUTHORIZED,
                IssueCode::Login,
                "/metrics needs the metrics secret as a bearer token",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kiln-metrics\""),
            );
            return response;
        }
    }
    refresh(&store).await;
    match telemetry::render() {
        Some(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        None => FhirError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotFound,
            "metrics are turned off",
        )
        .into_response(),
    }
}

/// Sets the gauges that describe the store now. A database that does not answer leaves the
/// export gauges as they were; the rest of the scrape still answers.
async fn refresh(store: &Store) {
    let pool = store.pool_use();
    telemetry::pool_use("primary", pool.size, pool.idle, pool.max);
    match store.export_jobs_by_status().await {
        Ok(counts) => {
            for status in [
                ExportStatus::Queued,
                ExportStatus::Running,
                ExportStatus::Done,
                ExportStatus::Failed,
            ] {
                let count = counts
                    .iter()
                    .find(|(name, _)| name == status.as_str())
                    .map_or(0, |(_, count)| *count);
                telemetry::export_jobs(status.as_str(), count);
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: cannot count export jobs"),
    }
}
