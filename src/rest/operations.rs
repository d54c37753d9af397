//! `Patient/[id]/$everything` (US Core's `DocumentReference/$docref` is in `docref`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::engine::read::{ReadTarget, read};
use crate::engine::search::{SearchRequest, everything};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::http::extract::IdPath;
use crate::http::negotiate::{FhirRequest, json_value};
use crate::state::AppState;

/// The Patient, everything in their compartment, and what those resources reference, each
/// once in a walk of the pages. `_since`, `_type`, `_count` and paging as the operation
/// defines them.
pub async fn patient_everything(
    State(state): State<AppState>,
    request: FhirRequest,
    IdPath(id): IdPath,
) -> FhirResult<Response> {
    let base = state.config.fhir_base();
    let patient = ReadTarget {
        resource_type: "Patient",
        id: &id,
        version: None,
    };
    read(&state.store, &base, &request.access, &patient)
        .await?
        .live()?;
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in &request.params {
        match name.as_str() {
            "_since" => params.push(("_lastUpdated".into(), format!("ge{value}"))),
            "_type" | "_count" | "_cursor" => params.push((name.clone(), value.clone())),
            "_format" | "_pretty" | "_include" => {}
            other => {
                return Err(FhirError::bad_request(format!(
                    "$everything takes _since, _type and _count, not {other:?}"
                ))
                .expression_at(other.to_string()));
            }
        }
    }
    let path = format!("Patient/{id}/$everything");
    let bundle = everything(
        &state.store,
        &SearchRequest {
            resource_type: None,
            params: &params,
            patient_compartment: Some(&id),
            strict: true,
            limits: state.page_limits(),
            base: &base,
            link: Some((&path, &request.params)),
            access: &request.access,
        },
    )
    .await?;
    Ok(json_value(StatusCode::OK, request.format, &bundle))
}
