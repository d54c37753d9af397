//! Turning a request body into a resource that may be stored.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::fhir::id::is_valid_id;
use crate::fhir::outcome::{FhirError, FhirResult, Issue, IssueCode};
use crate::fhir::validate::{IssueKind, validate_resource};

/// Parses a JSON body into a JSON object, or a 400 that says why it is not one.
pub fn parse_json_object(body: &[u8]) -> FhirResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(FhirError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::Structure,
            "the request body must be a JSON object (a FHIR resource)",
        )),
        Err(error) => Err(FhirError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::Structure,
            format!("the request body is not valid JSON: {error}"),
        )),
    }
}

/// What the URL says about the resource in the body.
pub enum Expect<'a> {
    /// POST `[type]`: the body's id, if any, is ignored.
    Create { resource_type: &'a str },
    /// PUT `[type]/[id]`: the body must carry the same id.
    Update { resource_type: &'a str, id: &'a str },
    /// A resource whose own `resourceType`/`id` decide (import, Bundle entries).
    Any,
}

/// Checks `resourceType`, `id` and the R4 structure; returns the resource ready to stamp.
pub fn prepare_resource(
    mut resource: Map<String, Value>,
    expect: Expect<'_>,
) -> FhirResult<Map<String, Value>> {
    let resource_type = match resource.get("resourceType") {
        Some(Value::String(resource_type)) => resource_type.clone(),
        _ => {
            return Err(FhirError::new(
                StatusCode::BAD_REQUEST,
                IssueCode::Required,
                "the resource has no resourceType",
            )
            .expression_at("resourceType"));
        }
    };
    super::append_only::refuse_write(&resource_type)?;
    match expect {
        Expect::Create {
            resource_type: url_type,
        } => {
            check_type(&resource_type, url_type)?;
            resource.shift_remove("id");
        }
        Expect::Update {
            resource_type: url_type,
            id,
        } => {
            check_type(&resource_type, url_type)?;
            match resource.get("id") {
                Some(Value::String(body_id)) if body_id == id => {}
                Some(Value::String(body_id)) => {
                    return Err(FhirError::bad_request(format!(
                        "the resource id {body_id:?} does not match the id {id:?} in the URL"
                    ))
                    .expression_at(format!("{resource_type}.id")));
                }
                _ => {
                    return Err(FhirError::bad_request(
                        "an update must carry the resource id in the body, equal to the id in the URL",
                    )
                    .expression_at(format!("{resource_type}.id")));
                }
            }
        }
        Expect::Any => {
            if let Some(Value::String(id)) = resource.get("id")
                && !is_valid_id(id)
            {
                return Err(FhirError::bad_request(format!(
                    "{id:?} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})"
                ))
                .expression_at(format!("{resource_type}.id")));
            }
        }
    }
    let object = Value::Object(resource);
    let issues = validate_resource(&object);
    if !issues.is_empty() {
        return Err(FhirError::unprocessable(
            issues
                .into_iter()
                .map(|issue| Issue::error(issue_code(issue.kind), issue.message).at(issue.path))
                .collect(),
        ));
    }
    let Value::Object(resource) = object else {
        unreachable!("validated value is the object built above")
    };
    Ok(resource)
}

fn check_type(body_type: &str, url_type: &str) -> FhirResult<()> {
    if body_type == url_type {
        Ok(())
    } else {
        Err(FhirError::bad_request(format!(
            "the resourceType {body_type:?} does not match the type {url_type:?} in the URL"
        ))
        .expression_at("resourceType"))
    }
}

fn issue_code(kind: IssueKind) -> IssueCode {
    match kind {
        IssueKind::Structure => IssueCode::Structure,
        IssueKind::Required => IssueCode::Required,
        IssueKind::Value => IssueCode::Value,
        IssueKind::Invalid => IssueCode::Invalid,
    }
}
