//! JSON Patch (RFC 6902, `application/json-patch+json`) through the `json-patch` crate.

use axum::http::StatusCode;
use json_patch::{Patch, PatchErrorKind, PatchOperation};
use serde_json::Value;

use super::MAX_OPERATIONS;
use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};

/// Parses a JSON Patch document; one that is not an array of known operations with valid
/// JSON Pointers is a 400.
pub fn parse(body: &[u8]) -> FhirResult<Patch> {
    let document: Value = serde_json::from_slice(body).map_err(|error| {
        FhirError::bad_request(format!("the JSON Patch is not valid JSON: {error}"))
    })?;
    let Value::Array(operations) = &document else {
        return Err(FhirError::bad_request(
            "a JSON Patch document is an array of operations",
        ));
    };
    if operations.len() > MAX_OPERATIONS {
        return Err(too_many(operations.len()));
    }
    serde_json::from_value(document)
        .map_err(|error| FhirError::bad_request(format!("invalid JSON Patch: {error}")))
}

pub(super) fn too_many(count: usize) -> FhirError {
    FhirError::new(
        StatusCode::BAD_REQUEST,
        IssueCode::TooCostly,
        format!("the patch has {count} operations; at most {MAX_OPERATIONS} are allowed"),
    )
}

/// The values the operations add, replace or test (references in them are rewritten in
/// transactions).
pub fn values_mut(patch: &mut Patch) -> impl Iterator<Item = &mut Value> {
    patch.0.iter_mut().filter_map(|operation| match operation {
        PatchOperation::Add(add) => Some(&mut add.value),
        PatchOperation::Replace(replace) => Some(&mut replace.value),
        PatchOperation::Test(test) => Some(&mut test.value),
        _ => None,
    })
}

/// Applies the patch to `resource`. A failing `test` and a path the resource does not have
/// are 422: the document is well-formed, but cannot be applied to this resource.
pub fn apply(resource: &mut Value, patch: &Patch) -> FhirResult<()> {
    json_patch::patch(resource, patch).map_err(|error| {
        let what = match error.kind {
            PatchErrorKind::TestFailed => "test failed: the value differs".to_string(),
            ref kind => kind.to_string(),
        };
        FhirError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            IssueCode::Processing,
            format!(
                "JSON Patch operation {} (path \"{}\"): {what}",
                error.operation, error.path
            ),
        )
    })
}
