//! Bulk Data Access (Flat FHIR) export: kick-off, a database-backed job queue with a
//! worker, status and manifest, and the ndjson files. Imports the engine, `access`, `http`,
//! the application state and the bearer check of `auth`; never `rest`, `app` or the CLI.

mod job;
mod kickoff;
mod members;
mod organize;
mod output;
mod params;
mod run;
mod status;
mod stream;
pub mod worker;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

/// The export routes, merged into the FHIR API (behind its bearer-token check) ahead of
/// the `/{resource_type}/{id}` patterns.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/$export", get(kickoff::system).post(kickoff::system))
        .route(
            "/Patient/$export",
            get(kickoff::patient).post(kickoff::patient),
        )
        .route(
            "/Group/{id}/$export",
            get(kickoff::group).post(kickoff::group),
        )
        .route(
            "/$export-status/{id}",
            get(status::status).delete(status::cancel),
        )
        .route("/$export-file/{id}/{index}", get(status::file))
}
