//! Validation of the path segments that name a resource type or a resource id.

use crate::fhir::id::is_valid_id;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::fhir::validate::is_resource_type;

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
