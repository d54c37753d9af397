//! The response Bundle's entries: status, ETag, location and body of each entry's outcome.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::ReturnPreference;
use crate::engine::write::WriteOutcome;
use crate::fhir::id::new_id;
use crate::fhir::instant::to_fhir_instant;
use crate::fhir::outcome::{FhirError, informational};

/// The outcome of one entry, ready for the response Bundle.
#[derive(Debug, Clone)]
pub(super) enum EntryResult {
    Written(WriteOutcome),
    /// A conditional create that found its match: nothing was written.
    Existing {
        resource_type: String,
        id: String,
    },
    Read(Vec<u8>, i64, i64),
    /// A search's `searchset` Bundle.
    Found(Value),
    Failed(FhirError),
}

/// The `transaction-response` or `batch-response` Bundle.
pub(super) fn response_bundle(
    response_type: &str,
    results: Vec<EntryResult>,
    base: &str,
    preference: ReturnPreference,
) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": new_id(),
        "type": response_type,
        "entry": results
            .into_iter()
            .map(|result| response_entry(result, base, preference))
            .collect::<Vec<_>>(),
    })
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}

fn response_entry(result: EntryResult, base: &str, preference: ReturnPreference) -> Value {
    match result {
        EntryResult::Written(outcome) if outcome.unchanged => json!({
            "response": {"status": status_line(StatusCode::NO_CONTENT)}
        }),
        EntryResult::Written(outcome) => {
            let status = if outcome.body.is_none() {
                StatusCode::NO_CONTENT
            } else if outcome.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = json!({
                "status": status_line(status),
                "etag": format!("W/\"{}\"", outcome.version_id),
                "lastModified": to_fhir_instant(outcome.last_updated),
            });
            if outcome.body.is_some() {
                response["location"] = json!(format!(
                    "{base}/{}/{}/_history/{}",
                    outcome.resource_type, outcome.id, outcome.version_id
                ));
            }
            let mut entry = json!({"response": response});
            if let Some(body) = outcome.body {
                entry["fullUrl"] =
                    json!(format!("{base}/{}/{}", outcome.resource_type, outcome.id));
                match preference {
                    ReturnPreference::Representation => {
                        entry["resource"] = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    }
                    ReturnPreference::OperationOutcome => {
                        entry["response"]["outcome"] = informational("the resource was stored");
                    }
                    ReturnPreference::Minimal => {}
                }
            }
            entry
        }
        EntryResult::Existing { resource_type, id } => json!({
            "fullUrl": format!("{base}/{resource_type}/{id}"),
            "response": {
                "status": status_line(StatusCode::OK),
                "location": format!("{base}/{resource_type}/{id}"),
            }
        }),
        EntryResult::Found(bundle) => json!({
            "resource": bundle,
            "response": {"status": status_line(StatusCode::OK)},
        }),
        EntryResult::Read(body, version_id, last_updated) => json!({
            "resource": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            "response": {
                "status": status_line(StatusCode::OK),
                "etag": format!("W/\"{version_id}\""),
                "lastModified": to_fhir_instant(last_updated),
            }
        }),
        EntryResult::Failed(error) => json!({
            "response": {
                "status": status_line(error.status),
                "outcome": error.outcome(),
            }
        }),
    }
}
