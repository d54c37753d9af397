//! Search: `GET [type]`, `POST [type]/_search`, `GET Patient/[id]/[type]`, and system-level
//! `GET [base]` / `POST [base]/_search`, answered with a `searchset` Bundle.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::negotiate::{FhirRequest, json_value};
use super::{resource_id, resource_type};
use crate::app::AppState;
use crate::fhir::id::new_id;
use crate::fhir::outcome::{FhirError, FhirResult, Issue, IssueCode, Severity, operation_outcome};
use crate::fhir::subset::Subset;
use crate::search::query::{SearchQuery, Summary, parse_search};
use crate::store::{Cursor, SearchPage, SearchSpec, StoredResource};

/// Parameters that shape the response rather than select resources.
const RESPONSE_PARAMS: [&str; 2] = ["_format", "_pretty"];

pub async fn search_type(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    request: FhirRequest,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let resource_type = resource_type(&type_name)?;
    let params = request.params.clone();
    search(
        &state,
        &request,
        &headers,
        Some(resource_type),
        params,
        None,
    )
    .await
}

pub async fn search_type_post(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    request: FhirRequest,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult<Response> {
    let resource_type = resource_type(&type_name)?;
    let params = form_params(&request, &headers, body)?;
    search(
        &state,
        &request,
        &headers,
        Some(resource_type),
        params,
        None,
    )
    .await
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
    body: Result<Bytes, BytesRejection>,
) -> FhirResult<Response> {
    let params = form_params(&request, &headers, body)?;
    search(&state, &request, &headers, None, params, None).await
}

/// `GET Patient/[id]/[type]`: a search within one Patient's compartment.
pub async fn search_compartment(
    State(state): State<AppState>,
    Path((compartment, id, type_name)): Path<(String, String, String)>,
    request: FhirRequest,
    headers: HeaderMap,
) -> FhirResult<Response> {
    if compartment != "Patient" {
        return Err(FhirError::not_found(format!(
            "compartment searches are supported for Patient, not {compartment:?}"
        )));
    }
    let id = resource_id(&id)?;
    let resource_type = if type_name == "*" {
        None
    } else {
        Some(resource_type(&type_name)?)
    };
    let params = request.params.clone();
    search(&state, &request, &headers, resource_type, params, Some(id)).await
}

/// The query string and an `application/x-www-form-urlencoded` body, together.
fn form_params(
    request: &FhirRequest,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult<Vec<(String, String)>> {
    let body = body.map_err(|rejection| {
        FhirError::new(
            rejection.status(),
            IssueCode::TooCostly,
            rejection.body_text(),
        )
    })?;
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
    params.extend(form_urlencoded::parse(&body).into_owned());
    Ok(params)
}

fn strict_handling(headers: &HeaderMap) -> bool {
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
    let selecting: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| !RESPONSE_PARAMS.contains(&name.as_str()))
        .cloned()
        .collect();
    let query = parse_search(resource_type, &selecting)?;
    if strict_handling(headers) && !query.unknown.is_empty() {
        return Err(FhirError::bad_request(format!(
            "unknown or unsupported search parameters: {}",
            query.unknown.join(", ")
        ))
        .expression_at(query.unknown[0].clone()));
    }
    let count = match query.controls.summary {
        Some(Summary::Count) => 0,
        _ => i64::from(
            query
                .controls
                .count
                .unwrap_or(state.config.default_page_size as u32),
        )
        .min(state.config.max_page_size),
    };
    let cursor = parse_cursor(query.controls.cursor.as_deref())?;
    let subset = subset_of(&query)?;
    let base = state.config.fhir_base();
    let page = state
        .store
        .search(&SearchSpec {
            query: &query,
            base: &base,
            count,
            cursor: cursor.clone(),
            patient_compartment,
        })
        .await?;
    let path = match (patient_compartment, resource_type) {
        (Some(patient), Some(resource_type)) => format!("Patient/{patient}/{resource_type}"),
        (Some(patient), None) => format!("Patient/{patient}/*"),
        (None, Some(resource_type)) => resource_type.to_string(),
        (None, None) => String::new(),
    };
    let bundle = searchset(&base, &path, &selecting, &query, page, &subset, &cursor);
    Ok(json_value(StatusCode::OK, request.format, &bundle))
}

fn subset_of(query: &SearchQuery) -> FhirResult<Subset> {
    let summary = match query.controls.summary {
        Some(Summary::True) => Some("true"),
        Some(Summary::Text) => Some("text"),
        Some(Summary::Data) => Some("data"),
        Some(Summary::False) | Some(Summary::Count) | None => None,
    };
    let elements = query.controls.elements.join(",");
    Subset::from_params(summary, (!elements.is_empty()).then_some(elements.as_str()))
}

/// Cursors are opaque to clients: `k.<type>.<id>` (keyset) or `o.<offset>`.
fn parse_cursor(text: Option<&str>) -> FhirResult<Cursor> {
    let Some(text) = text else {
        return Ok(Cursor::Start);
    };
    let invalid = || {
        FhirError::bad_request(format!(
            "_cursor {text:?} is not a paging cursor of this server"
        ))
        .expression_at("_cursor")
    };
    if let Some(key) = text.strip_prefix("k.") {
        let (resource_type, id) = key.split_once('.').ok_or_else(invalid)?;
        return Ok(Cursor::After(resource_type.to_string(), id.to_string()));
    }
    if let Some(offset) = text.strip_prefix("o.") {
        let offset: i64 = offset.parse().map_err(|_| invalid())?;
        return if offset >= 0 {
            Ok(Cursor::Offset(offset))
        } else {
            Err(invalid())
        };
    }
    Err(invalid())
}

fn cursor_text(cursor: &Cursor) -> Option<String> {
    match cursor {
        Cursor::Start => None,
        Cursor::After(resource_type, id) => Some(format!("k.{resource_type}.{id}")),
        Cursor::Offset(offset) => Some(format!("o.{offset}")),
    }
}

fn page_link(base: &str, path: &str, params: &[(String, String)], cursor: &Cursor) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if name != "_cursor" {
            query.append_pair(name, value);
        }
    }
    if let Some(cursor) = cursor_text(cursor) {
        query.append_pair("_cursor", &cursor);
    }
    let query = query.finish();
    let url = if path.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{path}")
    };
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}

fn searchset(
    base: &str,
    path: &str,
    params: &[(String, String)],
    query: &SearchQuery,
    page: SearchPage,
    subset: &Subset,
    cursor: &Cursor,
) -> Value {
    let mut links = vec![json!({"relation": "self", "url": page_link(base, path, params, cursor)})];
    if let Some(next) = &page.next {
        links.push(json!({"relation": "next", "url": page_link(base, path, params, next)}));
    }
    let mut entries: Vec<Value> = Vec::new();
    let entry = |stored: StoredResource, mode: &str| {
        let full_url = format!("{base}/{}/{}", stored.resource_type, stored.id);
        let body = subset.apply(stored.body);
        json!({
            "fullUrl": full_url,
            "resource": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            "search": {"mode": mode},
        })
    };
    for stored in page.matches {
        entries.push(entry(stored, "match"));
    }
    for stored in page.included {
        entries.push(entry(stored, "include"));
    }
    if !query.unknown.is_empty() {
        let issues: Vec<Issue> = query
            .unknown
            .iter()
            .map(|name| Issue {
                severity: Severity::Warning,
                code: IssueCode::NotSupported,
                diagnostics: format!(
                    "search parameter {name:?} is unknown or not supported and was ignored"
                ),
                expression: Some(name.clone()),
            })
            .collect();
        entries.push(json!({
            "resource": operation_outcome(&issues),
            "search": {"mode": "outcome"},
        }));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": new_id(),
        "type": "searchset",
        "link": links,
        "entry": entries,
    });
    if let Some(total) = page.total {
        bundle["total"] = json!(total);
    }
    bundle
}
