//! `POST [base]`: transaction and batch Bundles.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::audit::RecordedWithWrite;
use crate::engine::prepare::parse_json_object;
use crate::engine::transaction::process_bundle;
use crate::fhir::outcome::FhirResult;
use crate::http::extract::FhirBody;
use crate::http::negotiate::{FhirRequest, json_value};
use crate::state::AppState;

pub async fn transaction(
    State(state): State<AppState>,
    request: FhirRequest,
    FhirBody(body): FhirBody,
) -> FhirResult<Response> {
    let bundle = parse_json_object(&body)?;
    let response = process_bundle(
        &state.store,
        bundle,
        &state.config.fhir_base(),
        request.preference,
        &request.access,
        request.audit.as_ref(),
    )
    .await?;
    let mut response = json_value(StatusCode::OK, request.format, &response);
    response.extensions_mut().insert(RecordedWithWrite);
    Ok(response)
}
