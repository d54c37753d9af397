//! A `FhirError` as an HTTP response: its status and an OperationOutcome body.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::negotiate::FHIR_JSON;
use crate::fhir::outcome::FhirError;

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.outcome()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        response
    }
}
