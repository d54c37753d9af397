//! `POST [base]`: transaction and batch Bundles.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::engine::prepare::parse_json_object;
use crate::engine::transaction::process_bundle;
use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};
use crate::http::negotiate::{FhirRequest, check_body_type, json_value};
use crate::state::AppState;

pub async fn transaction(
    State(state): State<AppState>,
    request: FhirRequest,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult<Response> {
    check_body_type(&headers)?;
    let body = body.map_err(|rejection| {
        FhirError::new(
            rejection.status(),
            IssueCode::TooCostly,
            rejection.body_text(),
        )
    })?;
    let bundle = parse_json_object(&body)?;
    let response = process_bundle(
        &state.store,
        bundle,
        &state.config.fhir_base(),
        request.preference,
        &request.access,
    )
    .await?;
    Ok(json_value(StatusCode::OK, request.format, &response))
}
