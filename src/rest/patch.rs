//! `PATCH [type]/[id]` and conditional `PATCH [type]?criteria`: the body is a JSON Patch
//! (`application/json-patch+json`) or a FHIRPath Patch (`application/fhir+json`); any other
//! Content-Type is a 415. The engine applies it like an update.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::write::{conditional_target, if_match, run};
use crate::engine::patch::{PatchDocument, PatchFormat};
use crate::engine::transaction::{Interaction, WriteTarget};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::http::extract::{BoundedBody, InstancePath, TypePath};
use crate::http::negotiate::FhirRequest;
use crate::state::AppState;

pub async fn patch(
    State(state): State<AppState>,
    request: FhirRequest,
    InstancePath { resource_type, id }: InstancePath,
    headers: HeaderMap,
    BoundedBody(body): BoundedBody,
) -> FhirResult<Response> {
    let patch = PatchDocument::parse(patch_format(&headers)?, &body)?;
    run(
        &state,
        &request,
        Interaction::Patch {
            target: WriteTarget::Instance { resource_type, id },
            patch,
            if_match: if_match(&headers)?,
        },
    )
    .await
}

pub async fn conditional_patch(
    State(state): State<AppState>,
    request: FhirRequest,
    TypePath(resource_type): TypePath,
    headers: HeaderMap,
    BoundedBody(body): BoundedBody,
) -> FhirResult<Response> {
    let format = patch_format(&headers)?;
    let (target, if_match) = conditional_target(&resource_type, &request, &headers)?;
    let patch = PatchDocument::parse(format, &body)?;
    run(
        &state,
        &request,
        Interaction::Patch {
            target,
            patch,
            if_match,
        },
    )
    .await
}

/// The patch format the Content-Type names.
fn patch_format(headers: &HeaderMap) -> FhirResult<PatchFormat> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    PatchFormat::from_media_type(content_type).ok_or_else(|| {
        FhirError::not_supported(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "PATCH takes application/json-patch+json (JSON Patch) or application/fhir+json \
                 (FHIRPath Patch), not Content-Type {content_type:?}"
            ),
        )
    })
}
