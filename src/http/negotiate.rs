//! Content negotiation (`Accept`, `_format`, `Content-Type`), `_pretty` and `Prefer`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::access::reach::Access;
use crate::audit::Origin;
use crate::engine::transaction::ReturnPreference;
use crate::fhir::outcome::{FhirError, FhirResult};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
const PLAIN_JSON: &str = "application/json; charset=utf-8";

/// How a response body is written.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    pub pretty: bool,
    pub content_type: &'static str,
}

/// Everything a FHIR handler needs from the request line and headers.
#[derive(Debug, Clone)]
pub struct FhirRequest {
    pub format: Format,
    pub preference: ReturnPreference,
    /// Query parameters in order, repeats kept.
    pub params: Vec<(String, String)>,
    /// Who is asking (set by the bearer-token middleware).
    pub access: Access,
    /// Where the request came from, when it is audited (set by the audit layer).
    pub audit: Option<Origin>,
}

impl FhirRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FhirRequest {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> FhirResult<Self> {
        let params: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let format = negotiate(&parts.headers, &params)?;
        let access = parts
            .extensions
            .get::<Access>()
            .cloned()
            .unwrap_or(Access::Nobody);
        Ok(FhirRequest {
            format,
            preference: return_preference(&parts.headers),
            params,
            access,
            audit: parts.extensions.get::<Origin>().cloned(),
        })
    }
}

fn negotiate(headers: &HeaderMap, params: &[(String, String)]) -> FhirResult<Format> {
    let pretty = match params.iter().find(|(key, _)| key == "_pretty") {
        None => false,
        Some((_, value)) if value == "true" => true,
        Some((_, value)) if value == "false" => false,
        Some((_, value)) => {
            return Err(FhirError::bad_request(format!(
                "_pretty must be true or false, not {value:?}"
            ))
            .expression_at("_pretty"));
        }
    };
    let content_type = if let Some((_, format)) = params.iter().find(|(key, _)| key == "_format") {
        format_param_type(format)?
    } else {
        accept_type(headers)?
    };
    Ok(Format {
        pretty,
        content_type,
    })
}

fn format_param_type(format: &str) -> FhirResult<&'static str> {
    let mime = format
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "json" | "application/fhir+json" | "application/json+fhir" => Ok(FHIR_JSON),
        "application/json" => Ok(PLAIN_JSON),
        "xml"
        | "application/fhir+xml"
        | "application/xml+fhir"
        | "application/xml"
        | "text/xml" => Err(not_acceptable("XML is not supported yet; use _format=json")),
        _ => Err(not_acceptable(&format!(
            "_format {format:?} is not supported; use json"
        ))),
    }
}

/// Picks the JSON flavour the client accepts, or 406 when it accepts neither.
fn accept_type(headers: &HeaderMap) -> FhirResult<&'static str> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(FHIR_JSON);
    };
    let accept = accept.to_str().unwrap_or("").to_ascii_lowercase();
    if accept.trim().is_empty() {
        return Ok(FHIR_JSON);
    }
    let mut plain_json = false;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let mime = parts.next().unwrap_or("").trim();
        let refused = parts.any(|param| {
            let param = param.trim().replace(' ', "");
            param == "q=0" || param == "q=0.0" || param == "q=0.00" || param == "q=0.000"
        });
        if refused {
            continue;
        }
        match mime {
            "application/fhir+json" | "application/json+fhir" | "*/*" | "application/*" => {
                return Ok(FHIR_JSON);
            }
            "application/json" => plain_json = true,
            _ => {}
        }
    }
    if plain_json {
        return Ok(PLAIN_JSON);
    }
    Err(not_acceptable(&format!(
        "cannot produce {accept:?}: this server speaks application/fhir+json (XML is not supported yet)"
    )))
}

fn not_acceptable(message: &str) -> FhirError {
    FhirError::not_supported(StatusCode::NOT_ACCEPTABLE, message)
}

/// Request bodies must be FHIR JSON; a missing Content-Type is read as JSON.
pub fn check_body_type(headers: &HeaderMap) -> FhirResult<()> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or("").to_ascii_lowercase();
    let mime = value.split(';').next().unwrap_or("").trim();
    match mime {
        "application/fhir+json" | "application/json+fhir" | "application/json" => Ok(()),
        "application/fhir+xml" | "application/xml+fhir" | "application/xml" | "text/xml" => {
            Err(FhirError::not_supported(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "XML request bodies are not supported yet; send application/fhir+json",
            ))
        }
        other => Err(FhirError::not_supported(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {other:?} is not supported; send application/fhir+json"),
        )),
    }
}

fn return_preference(headers: &HeaderMap) -> ReturnPreference {
    for value in headers.get_all("prefer") {
        for token in value.to_str().unwrap_or("").split([',', ';']) {
            match token.trim().replace(' ', "").as_str() {
                "return=minimal" => return ReturnPreference::Minimal,
                "return=representation" => return ReturnPreference::Representation,
                "return=OperationOutcome" => return ReturnPreference::OperationOutcome,
                _ => {}
            }
        }
    }
    ReturnPreference::Representation
}

/// A response carrying a FHIR JSON body (stored bytes, re-indented only for `_pretty`).
pub fn json_body(status: StatusCode, format: Format, body: Vec<u8>) -> Response {
    let body = if format.pretty {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| serde_json::to_vec_pretty(&value).ok())
            .unwrap_or(body)
    } else {
        body
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type),
    );
    response
}

/// A response holding a JSON value built by the server (Bundles, CapabilityStatement…).
pub fn json_value(status: StatusCode, format: Format, value: &serde_json::Value) -> Response {
    let body = if format.pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    .unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type),
    );
    response
}
