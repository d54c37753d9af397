//! `GET /fhir/metadata`: the CapabilityStatement, built from what this server implements.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::auth::Endpoints;
use crate::fhir::instant::{now_micros, to_fhir_instant};
use crate::fhir::outcome::FhirResult;
use crate::fhir::validate::resource_types;
use crate::http::negotiate::{FhirRequest, json_value};
use crate::search::{ParamType, params};
use crate::state::AppState;

/// Interactions every resource type supports.
const TYPE_INTERACTIONS: [&str; 8] = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

const SYSTEM_INTERACTIONS: [&str; 4] = ["transaction", "batch", "history-system", "search-system"];

pub async fn metadata(State(state): State<AppState>, request: FhirRequest) -> FhirResult<Response> {
    Ok(json_value(
        StatusCode::OK,
        request.format,
        &state.capability,
    ))
}

/// The US Core versions whose server searches this server supports.
const US_CORE_VERSIONS: [&str; 4] = ["3.1.1", "4.0.0", "6.1.0", "7.0.0"];

/// The Bulk Data Access server CapabilityStatement this server implements.
const BULK_DATA_SERVER: &str = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data";

/// The operations a resource type offers.
fn operations(resource_type: &str) -> Option<Value> {
    match resource_type {
        "Patient" => Some(json!([
            {
                "name": "everything",
                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            },
            {
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
            },
        ])),
        "Group" => Some(json!([{
            "name": "export",
            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
        }])),
        "DocumentReference" => Some(json!([{
            "name": "docref",
            "definition": "http://hl7.org/fhir/us/core/OperationDefinition/docref",
            "documentation": "GET with query parameters or POST with a Parameters body: the \
                patient's stored DocumentReferences, those whose context.period overlaps \
                start..end when given, of any of the given types. on-demand and profile are \
                accepted; no document is generated on demand.",
        }])),
        _ => None,
    }
}

/// `Type:param` for each reference parameter, and `*`.
fn search_includes(resource_type: &str) -> Vec<String> {
    let mut includes: Vec<String> = params(resource_type)
        .iter()
        .filter(|param| param.kind == ParamType::Reference)
        .map(|param| format!("{resource_type}:{}", param.code))
        .collect();
    includes.push("*".into());
    includes
}

/// Builds the CapabilityStatement once at startup.
pub fn capability_statement(fhir_base: &str, endpoints: &Endpoints) -> Value {
    let resources: Vec<Value> = resource_types()
        .iter()
        .map(|resource_type| {
            let mut resource = json!({
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
                "conditionalCreate": true,
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "searchInclude": search_includes(resource_type),
                "searchRevInclude": ["*"],
                "searchParam": params(resource_type)
                    .iter()
                    .map(|param| json!({
                        "name": param.code,
                        "definition": param.url,
                        "type": param.kind.as_str(),
                    }))
                    .collect::<Vec<_>>(),
            });
            if let Some(operations) = operations(resource_type) {
                resource["operation"] = operations;
            }
            resource
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
        "instantiates": US_CORE_VERSIONS
            .iter()
            .map(|version| format!("http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server|{version}"))
            .chain([BULK_DATA_SERVER.to_owned()])
            .collect::<Vec<_>>(),
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": security(endpoints),
            "resource": resources,
            "interaction": SYSTEM_INTERACTIONS
                .iter()
                .map(|code| json!({"code": code}))
                .collect::<Vec<_>>(),
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            }],
        }],
    })
}

/// SMART on FHIR: the service coding and the OAuth endpoints (the `oauth-uris` extension).
fn security(endpoints: &Endpoints) -> Value {
    json!({
        "cors": true,
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
                "display": "SMART-on-FHIR",
            }],
            "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
        }],
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                {"url": "authorize", "valueUri": endpoints.authorize},
                {"url": "token", "valueUri": endpoints.token},
                {"url": "introspect", "valueUri": endpoints.introspect},
                {"url": "revoke", "valueUri": endpoints.revoke},
                {"url": "manage", "valueUri": endpoints.manage},
            ],
        }],
    })
}
