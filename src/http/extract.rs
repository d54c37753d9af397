//! Typed extractors for FHIR handlers: the validated path segments naming a resource type,
//! an id, or both, and a FHIR JSON request body. Their rejections are `FhirError` responses
//! (OperationOutcome); a path that cannot be decoded at all keeps axum's own rejection.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::negotiate::check_body_type;
use super::path::{resource_id, resource_type};
use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};

/// `{resource_type}` in the route: an R4 resource type (404 otherwise).
pub struct TypePath(pub String);

/// `{id}` in the route: a FHIR id (400 otherwise).
pub struct IdPath(pub String);

/// `{resource_type}` and `{id}` in the route: an R4 resource type (404 otherwise) and a FHIR
/// id (400 otherwise), checked in that order. Other segments of the route are ignored.
pub struct InstancePath {
    pub resource_type: String,
    pub id: String,
}

/// `{compartment}/{id}/{resource_type}` in the route: the Patient compartment (404 for any
/// other), a FHIR id (400 otherwise), and an R4 resource type or `*` for any (404 otherwise),
/// checked in that order.
pub struct CompartmentPath {
    pub patient: String,
    /// `None` for `*`.
    pub resource_type: Option<String>,
}

#[derive(Deserialize)]
struct CompartmentSegments {
    compartment: String,
    id: String,
    resource_type: String,
}

#[derive(Deserialize)]
struct TypeSegment {
    resource_type: String,
}

#[derive(Deserialize)]
struct IdSegment {
    id: String,
}

#[derive(Deserialize)]
struct InstanceSegments {
    resource_type: String,
    id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for TypePath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(segment) = Path::<TypeSegment>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        resource_type(&segment.resource_type).map_err(IntoResponse::into_response)?;
        Ok(TypePath(segment.resource_type))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(segment) = Path::<IdSegment>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        resource_id(&segment.id).map_err(IntoResponse::into_response)?;
        Ok(IdPath(segment.id))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for InstancePath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(segments) = Path::<InstanceSegments>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        resource_type(&segments.resource_type).map_err(IntoResponse::into_response)?;
        resource_id(&segments.id).map_err(IntoResponse::into_response)?;
        Ok(InstancePath {
            resource_type: segments.resource_type,
            id: segments.id,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CompartmentPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(segments) = Path::<CompartmentSegments>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        compartment_path(segments).map_err(IntoResponse::into_response)
    }
}

fn compartment_path(segments: CompartmentSegments) -> FhirResult<CompartmentPath> {
    if segments.compartment != "Patient" {
        return Err(FhirError::not_found(format!(
            "compartment searches are supported for Patient, not {:?}",
            segments.compartment
        )));
    }
    resource_id(&segments.id)?;
    let resource_type = if segments.resource_type == "*" {
        None
    } else {
        resource_type(&segments.resource_type)?;
        Some(segments.resource_type)
    };
    Ok(CompartmentPath {
        patient: segments.id,
        resource_type,
    })
}

/// The whole request body, within the size limit: a body too large (or broken off) is
/// rejected with its status as `too-costly`.
pub struct BoundedBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BoundedBody {
    type Rejection = FhirError;

    async fn from_request(request: Request, state: &S) -> Result<Self, FhirError> {
        Bytes::from_request(request, state)
            .await
            .map(BoundedBody)
            .map_err(|rejection| {
                FhirError::new(
                    rejection.status(),
                    IssueCode::TooCostly,
                    rejection.body_text(),
                )
            })
    }
}

/// A FHIR JSON request body: the Content-Type is checked (415 for anything but JSON; a
/// missing one is read as JSON) before the body is read, within the size limit.
pub struct FhirBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for FhirBody {
    type Rejection = FhirError;

    async fn from_request(request: Request, state: &S) -> Result<Self, FhirError> {
        check_body_type(request.headers())?;
        let BoundedBody(body) = BoundedBody::from_request(request, state).await?;
        Ok(FhirBody(body))
    }
}
