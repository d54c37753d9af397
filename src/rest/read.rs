//! read and vread, with conditional read (`If-None-Match`, `If-Modified-Since`) and
//! `_summary` / `_elements`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::audit::Detail;
use crate::engine::read::{self, ReadTarget};
use crate::engine::transaction::parse_etag;
use crate::fhir::instant::{parse_http_date, to_http_date};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::fhir::subset::Subset;
use crate::http::extract::InstancePath;
use crate::http::negotiate::{FhirRequest, json_body};
use crate::search::patient_compartments_in;
use crate::state::AppState;
use crate::store::StoredResource;

/// `{version}` in the vread route.
#[derive(Deserialize)]
pub struct VersionSegment {
    version: String,
}

pub async fn read(
    State(state): State<AppState>,
    request: FhirRequest,
    InstancePath { resource_type, id }: InstancePath,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let subset = Subset::from_params(request.param("_summary"), request.param("_elements"))?;
    let mut stored = read_live(&state, &request, &resource_type, &id, None).await?;
    let detail = audit_detail(&request, &stored, true);
    if not_modified(&headers, &stored) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        add_version_headers(response.headers_mut(), &stored);
        response.extensions_mut().insert(detail);
        return Ok(response);
    }
    stored.body = subset.apply(stored.body);
    let mut response = resource_response(StatusCode::OK, &request, stored);
    response.extensions_mut().insert(detail);
    Ok(response)
}

pub async fn vread(
    State(state): State<AppState>,
    request: FhirRequest,
    InstancePath { resource_type, id }: InstancePath,
    Path(VersionSegment { version }): Path<VersionSegment>,
) -> FhirResult<Response> {
    let subset = Subset::from_params(request.param("_summary"), request.param("_elements"))?;
    let version_id: i64 = version.parse().map_err(|_| {
        FhirError::bad_request(format!(
            "{version:?} is not a version id (a positive integer)"
        ))
    })?;
    let mut stored = read_live(&state, &request, &resource_type, &id, Some(version_id)).await?;
    let detail = audit_detail(&request, &stored, false);
    stored.body = subset.apply(stored.body);
    let mut response = resource_response(StatusCode::OK, &request, stored);
    response.extensions_mut().insert(detail);
    Ok(response)
}

/// What the audit log records about a resource read beyond its URL: its version, and the
/// Patient whose compartment it is in. A `current` version was read with that Patient
/// ([`StoredResource::patient`]); an older one's body is parsed for it, when auditing.
fn audit_detail(request: &FhirRequest, stored: &StoredResource, current: bool) -> Detail {
    let patient = match request.audit {
        Some(_) if stored.resource_type == "Patient" => None,
        Some(_) if current => stored.patient.clone(),
        Some(_) => Some(patient_compartments_in(&stored.resource_type, &stored.body))
            .filter(|patients| patients.len() == 1)
            .and_then(|mut patients| patients.pop()),
        None => None,
    };
    Detail {
        patient,
        version: Some(stored.version_id),
    }
}

/// The live resource (or version) the caller may read, through the engine's read check.
pub(super) async fn read_live(
    state: &AppState,
    request: &FhirRequest,
    resource_type: &str,
    id: &str,
    version: Option<i64>,
) -> FhirResult<StoredResource> {
    let target = ReadTarget {
        resource_type,
        id,
        version,
    };
    let base = state.config.fhir_base();
    read::read(&state.store, &base, &request.access, &target)
        .await?
        .live()
}

/// `If-None-Match` wins over `If-Modified-Since`, as HTTP says.
fn not_modified(headers: &HeaderMap, stored: &StoredResource) -> bool {
    if let Some(value) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return value
            .split(',')
            .any(|tag| tag.trim() == "*" || parse_etag(tag) == Some(stored.version_id));
    }
    if let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
    {
        // HTTP dates have whole seconds: compare at that precision.
        return stored.last_updated.div_euclid(1_000_000) <= since.div_euclid(1_000_000);
    }
    false
}

pub fn add_version_headers(headers: &mut HeaderMap, stored: &StoredResource) {
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", stored.version_id)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(modified) = HeaderValue::from_str(&to_http_date(stored.last_updated)) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
}

/// The stored bytes with ETag and Last-Modified.
pub fn resource_response(
    status: StatusCode,
    request: &FhirRequest,
    stored: StoredResource,
) -> Response {
    let mut headers = HeaderMap::new();
    add_version_headers(&mut headers, &stored);
    let mut response = json_body(status, request.format, stored.body);
    response.headers_mut().extend(headers);
    response
}
