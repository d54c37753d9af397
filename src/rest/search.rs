//! Search: `GET [type]`, `POST [type]/_search`, `GET Patient/[id]/[type]`, and system-level
//! `GET [base]` / `POST [base]/_search`, answered with a `searchset` Bundle.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::audit::SearchQuery;
use crate::engine::search::{SearchRequest, searchset};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::http::extract::{BoundedBody, CompartmentPath, TypePath};
use crate::http::negotiate::{FhirRequest, json_value};
use crate::rest::read_routing::reads;
use crate::state::AppState;

pub async fn search_type(
    State(state): State<AppState>,
    request: FhirRequest,
    TypePath(resource_type): TypePath,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let params = request.params.clone();
    search(
        &state,
        &request,
        &headers,
        Some(&resource_type),
        params,
        None,
    )
    .await
}

pub async fn search_type_post(
    State(state): State<AppState>,
    request: FhirRequest,
    TypePath(resource_type): TypePath,
    headers: HeaderMap,
    BoundedBody(body): BoundedBody,
) -> Response {
    let params = match form_params(&request, &headers, &body) {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    let query = SearchQuery::of(&params);
    let answer = search(
        &state,
        &request,
        &headers,
        Some(&resource_type),
        params,
        None,
    )
    .await;
    with_search_query(answer, query)
}

pub async fn search_system(
    State(state): State<AppState>,
    request: FhirRequest,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let params = request.params.clone();
    search(&state, &request, &headers, None, params, None).await
}

pub async fn search_system_post(
    State(state): State<AppState>,
    request: FhirRequest,
    headers: HeaderMap,
    BoundedBody(body): BoundedBody,
) -> Response {
    let params = match form_params(&request, &headers, &body) {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    let query = SearchQuery::of(&params);
    let answer = search(&state, &request, &headers, None, params, None).await;
    with_search_query(answer, query)
}

/// `GET Patient/[id]/[type]`: a search within one Patient's compartment.
pub async fn search_compartment(
    State(state): State<AppState>,
    request: FhirRequest,
    CompartmentPath {
        patient,
        resource_type,
    }: CompartmentPath,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let params = request.params.clone();
    search(
        &state,
        &request,
        &headers,
        resource_type.as_deref(),
        params,
        Some(&patient),
    )
    .await
}

/// The answer of a `POST _search`, carrying its criteria for the audit log (the URL alone
/// does not hold them).
pub(super) fn with_search_query(answer: FhirResult<Response>, query: SearchQuery) -> Response {
    let mut response = answer.unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(query);
    response
}

/// The query string and an `application/x-www-form-urlencoded` body, together.
pub(super) fn form_params(
    request: &FhirRequest,
    headers: &HeaderMap,
    body: &[u8],
) -> FhirResult<Vec<(String, String)>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !body.is_empty() && !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(FhirError::not_supported(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST _search takes an application/x-www-form-urlencoded body",
        ));
    }
    let mut params = request.params.clone();
    params.extend(form_urlencoded::parse(body).into_owned());
    Ok(params)
}

pub(super) fn strict_handling(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|value| {
        value
            .to_str()
            .unwrap_or("")
            .split([',', ';'])
            .any(|token| token.trim().replace(' ', "") == "handling=strict")
    })
}

async fn search(
    state: &AppState,
    request: &FhirRequest,
    headers: &HeaderMap,
    resource_type: Option<&str>,
    params: Vec<(String, String)>,
    patient_compartment: Option<&str>,
) -> FhirResult<Response> {
    let store = reads(state, &request.access).await;
    let bundle = searchset(
        &store,
        &SearchRequest {
            resource_type,
            params: &params,
            patient_compartment,
            strict: strict_handling(headers),
            limits: state.page_limits(),
            base: &state.config.fhir_base(),
            link: None,
            access: &request.access,
        },
    )
    .await?;
    Ok(json_value(StatusCode::OK, request.format, &bundle))
}
