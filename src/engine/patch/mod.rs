//! FHIR PATCH: a patch document — JSON Patch ([`json_patch`]) or FHIRPath Patch
//! ([`fhirpath_patch`]) — parsed from a request body or a transaction entry, and applied
//! to the current version of a resource. The result is checked like the body of an update
//! (same `id` and type, R4 structure); the write itself is planned by the transaction
//! module like an update.

mod fhirpath_patch;
mod json_patch;

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::prepare::{Expect, parse_json_object, prepare_resource};
use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};

/// Operations one patch may hold (each is applied in turn).
pub const MAX_OPERATIONS: usize = 1000;

/// The media types of the patch formats, as the CapabilityStatement lists them.
pub const PATCH_FORMATS: [&str; 2] = ["application/json-patch+json", "application/fhir+json"];

/// How a patch document is written, named by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchFormat {
    /// `application/json-patch+json` (RFC 6902).
    JsonPatch,
    /// `application/fhir+json`: a `Parameters` resource (FHIRPath Patch).
    FhirPath,
}

impl PatchFormat {
    /// The format of a media type (parameters such as `charset` ignored); `None` for one
    /// that is no patch format.
    pub fn from_media_type(content_type: &str) -> Option<Self> {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        match mime.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(PatchFormat::JsonPatch),
            "application/fhir+json" | "application/json+fhir" | "application/json" => {
                Some(PatchFormat::FhirPath)
            }
            _ => None,
        }
    }
}

/// A parsed patch document.
#[derive(Debug, Clone)]
pub enum PatchDocument {
    Json(::json_patch::Patch),
    FhirPath(Vec<fhirpath_patch::Operation>),
}

impl PatchDocument {
    /// Parses a request body in `format`; a malformed document is a 400.
    pub fn parse(format: PatchFormat, body: &[u8]) -> FhirResult<Self> {
        match format {
            PatchFormat::JsonPatch => json_patch::parse(body).map(PatchDocument::Json),
            PatchFormat::FhirPath => Self::from_parameters(&parse_json_object(body)?),
        }
    }

    /// The `resource` of a PATCH entry in a Bundle: a `Binary` holding a JSON Patch, or a
    /// `Parameters` resource (FHIRPath Patch).
    pub fn from_entry_resource(resource: &Map<String, Value>) -> FhirResult<Self> {
        match resource.get("resourceType").and_then(Value::as_str) {
            Some("Parameters") => Self::from_parameters(resource),
            Some("Binary") => {
                let content_type = resource
                    .get("contentType")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if PatchFormat::from_media_type(content_type) != Some(PatchFormat::JsonPatch) {
                    return Err(unsupported(format!(
                        "a Binary patch must have the contentType application/json-patch+json, not {content_type:?}"
                    )));
                }
                let data = resource.get("data").and_then(Value::as_str).unwrap_or("");
                let body = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|error| {
                        FhirError::bad_request(format!("Binary.data is not base64: {error}"))
                    })?;
                json_patch::parse(&body).map(PatchDocument::Json)
            }
            _ => Err(FhirError::bad_request(
                "a PATCH entry's resource is a Binary (JSON Patch) or a Parameters resource (FHIRPath Patch)",
            )),
        }
    }

    fn from_parameters(parameters: &Map<String, Value>) -> FhirResult<Self> {
        let operations = fhirpath_patch::parse_parameters(parameters)?;
        if operations.len() > MAX_OPERATIONS {
            return Err(json_patch::too_many(operations.len()));
        }
        Ok(PatchDocument::FhirPath(operations))
    }

    /// The values the patch puts into the resource (references in them are rewritten in
    /// transactions).
    pub fn values_mut(&mut self) -> Vec<&mut Value> {
        match self {
            PatchDocument::Json(patch) => json_patch::values_mut(patch).collect(),
            PatchDocument::FhirPath(operations) => fhirpath_patch::values_mut(operations).collect(),
        }
    }

    /// Applies the patch to `current` (the stored body of `resource_type`/`id`) and checks
    /// the result as an update's body: a patch that cannot be applied or that leaves an
    /// invalid resource is a 422.
    pub fn apply_to(
        &self,
        resource_type: &str,
        id: &str,
        current: &[u8],
    ) -> FhirResult<Map<String, Value>> {
        let mut resource = Value::Object(
            parse_json_object(current)
                .map_err(|error| FhirError::internal("patching", error.summary()))?,
        );
        match self {
            PatchDocument::Json(patch) => json_patch::apply(&mut resource, patch)?,
            PatchDocument::FhirPath(operations) => {
                fhirpath_patch::apply(&mut resource, operations)?;
            }
        }
        let Value::Object(resource) = resource else {
            return Err(FhirError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                IssueCode::Processing,
                "the patch replaced the resource with something that is not a resource",
            ));
        };
        let same = |name: &str, expected: &str| {
            if resource.get(name).and_then(Value::as_str) == Some(expected) {
                Ok(())
            } else {
                Err(FhirError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    IssueCode::Processing,
                    format!("a patch may not change the resource's {name} (it is {expected:?})"),
                )
                .expression_at(name))
            }
        };
        same("resourceType", resource_type)?;
        same("id", id)?;
        prepare_resource(resource, Expect::Update { resource_type, id })
    }
}

fn unsupported(message: String) -> FhirError {
    FhirError::not_supported(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
}
