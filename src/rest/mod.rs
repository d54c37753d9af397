//! HTTP handlers, one module per FHIR interaction.

pub mod body_budget;
pub mod capability;
pub mod docref;
pub mod health;
pub mod history;
pub mod negotiate;
pub mod operations;
pub mod outcome_layer;
pub mod read;
pub mod search;
pub mod system;
pub mod write;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::fhir::id::is_valid_id;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::fhir::validate::is_resource_type;

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

/// Checks that a path segment names an R4 resource type.
pub fn resource_type(name: &str) -> FhirResult<&str> {
    if is_resource_type(name) {
        Ok(name)
    } else {
        Err(FhirError::not_found(format!(
            "{name:?} is not a FHIR R4 resource type"
        )))
    }
}

/// Checks that a path segment is a FHIR id.
pub fn resource_id(id: &str) -> FhirResult<&str> {
    if is_valid_id(id) {
        Ok(id)
    } else {
        Err(FhirError::bad_request(format!(
            "{id:?} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})"
        )))
    }
}
