//! Operations: `Patient/[id]/$everything` and US Core's `DocumentReference/$docref`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::negotiate::{FhirRequest, json_value};
use super::resource_id;
use crate::app::AppState;
use crate::engine::search::{SearchRequest, searchset};
use crate::fhir::outcome::{FhirError, FhirResult};

/// The Patient, everything in their compartment, and what those resources reference.
/// `_since`, `_type`, `_count` and paging as the operation defines them.
pub async fn patient_everything(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: FhirRequest,
) -> FhirResult<Response> {
    let id = resource_id(&id)?;
    match state.store.read("Patient", id).await? {
        Some(stored) if !stored.deleted => {}
        Some(_) => return Err(FhirError::gone(format!("Patient/{id} was deleted"))),
        None => return Err(FhirError::not_found(format!("Patient/{id} is not known"))),
    }
    let mut params: Vec<(String, String)> = vec![("_include".into(), "*".into())];
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
    let bundle = searchset(
        &state.store,
        &SearchRequest {
            resource_type: None,
            params: &params,
            patient_compartment: Some(id),
            strict: true,
            limits: state.page_limits(),
            base: &state.config.fhir_base(),
            link: Some((&path, &request.params)),
        },
    )
    .await?;
    Ok(json_value(StatusCode::OK, request.format, &bundle))
}

/// `DocumentReference/$docref?patient=…[&start=…][&end=…][&type=…]`: the patient's
/// documents, those whose period overlaps `start`..`end` when given.
pub async fn docref(State(state): State<AppState>, request: FhirRequest) -> FhirResult<Response> {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut patient = None;
    for (name, value) in &request.params {
        match name.as_str() {
            "patient" => {
                patient = Some(value.clone());
                params.push(("patient".into(), value.clone()));
            }
            "start" => params.push(("period".into(), format!("ge{value}"))),
            "end" => params.push(("period".into(), format!("le{value}"))),
            "type" => params.push(("type".into(), value.clone())),
            "_count" | "_cursor" => params.push((name.clone(), value.clone())),
            // Accepted and answered with the stored documents.
            "on-demand" | "profile" | "_format" | "_pretty" => {}
            other => {
                return Err(FhirError::bad_request(format!(
                    "$docref takes patient, start, end and type, not {other:?}"
                ))
                .expression_at(other.to_string()));
            }
        }
    }
    if patient.is_none() {
        return Err(
            FhirError::bad_request("$docref needs the patient parameter").expression_at("patient"),
        );
    }
    let bundle = searchset(
        &state.store,
        &SearchRequest {
            resource_type: Some("DocumentReference"),
            params: &params,
            patient_compartment: None,
            strict: true,
            limits: state.page_limits(),
            base: &state.config.fhir_base(),
            link: Some(("DocumentReference/$docref", &request.params)),
        },
    )
    .await?;
    Ok(json_value(StatusCode::OK, request.format, &bundle))
}
