//! HTTP handlers, one module per FHIR interaction. They parse the request, call the engine
//! and write the answer; they import the engine, `http`, the application state and, for
//! routes and links, `auth` and `bulk` — never `app` or the CLI.

pub mod body_budget;
pub mod capability;
pub mod docref;
pub mod health;
pub mod history;
pub mod operations;
pub mod outcome_layer;
pub mod read;
pub mod search;
pub mod system;
pub mod write;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The FHIR REST API, mounted at `/fhir`.
pub fn fhir_routes() -> Router<AppState> {
    Router::new()
        .route("/", post(system::transaction).get(search::search_system))
        .route("/_search", post(search::search_system_post))
        .route("/metadata", get(capability::metadata))
        .route(
            "/Patient/{id}/$everything",
            get(operations::patient_everything),
        )
        .route(
            "/DocumentReference/$docref",
            get(docref::docref).post(docref::docref_post),
        )
        .route("/_history", get(history::system_history))
        .merge(crate::bulk::routes())
        .route(
            "/{resource_type}",
            get(search::search_type)
                .post(write::create)
                .put(write::conditional_update)
                .delete(write::conditional_delete),
        )
        .route("/{resource_type}/_search", post(search::search_type_post))
        .route("/{resource_type}/_history", get(history::type_history))
        .route(
            "/{resource_type}/{id}",
            get(read::read).put(write::update).delete(write::delete),
        )
        .route(
            "/{resource_type}/{id}/_history",
            get(history::instance_history),
        )
        .route(
            "/{compartment}/{id}/{resource_type}",
            get(search::search_compartment),
        )
        .route("/{resource_type}/{id}/_history/{version}", get(read::vread))
}
