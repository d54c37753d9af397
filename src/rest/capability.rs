//! `GET /fhir/metadata`: the CapabilityStatement, built from what this server implements.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::negotiate::{FhirRequest, json_value};
use crate::app::AppState;
use crate::fhir::instant::{now_micros, to_fhir_instant};
use crate::fhir::outcome::FhirResult;
use crate::fhir::validate::resource_types;

/// Interactions every resource type supports.
const TYPE_INTERACTIONS: [&str; 7] = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
];

const SYSTEM_INTERACTIONS: [&str; 3] = ["transaction", "batch", "history-system"];

pub async fn metadata(State(state): State<AppState>, request: FhirRequest) -> FhirResult<Response> {
    Ok(json_value(
        StatusCode::OK,
        request.format,
        &state.capability,
    ))
}

/// Builds the CapabilityStatement once at startup.
pub fn capability_statement(fhir_base: &str) -> Value {
    let resources: Vec<Value> = resource_types()
        .iter()
        .map(|resource_type| {
            json!({
                "type": resource_type,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{resource_type}"),
                "interaction": TYPE_INTERACTIONS
                    .iter()
                    .map(|code| json!({"code": code}))
                    .collect::<Vec<_>>(),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalRead": "full-support",
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": to_fhir_instant(now_micros()),
        "publisher": "Kiln",
        "kind": "instance",
        "software": {"name": "Kiln", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Kiln FHIR R4 server", "url": fhir_base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": SYSTEM_INTERACTIONS
                .iter()
                .map(|code| json!({"code": code}))
                .collect::<Vec<_>>(),
        }],
    })
}
