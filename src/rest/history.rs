//! History at instance, type and system level, newest first, paged with `_count`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::engine::read::{self, HistoryPage};
use crate::fhir::id::new_id;
use crate::fhir::instant::{parse_fhir_datetime, to_fhir_instant};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::http::extract::{InstancePath, TypePath};
use crate::http::negotiate::{FhirRequest, json_value};
use crate::rest::read_routing::reads;
use crate::state::AppState;
use crate::store::{HistoryEntry, HistoryQuery, HistoryScope};

/// The paging cursor: history continues with versions written before this sequence number.
const CURSOR: &str = "_cursor";

pub async fn system_history(
    State(state): State<AppState>,
    request: FhirRequest,
) -> FhirResult<Response> {
    history(&state, &request, HistoryScope::System, "_history".into()).await
}

pub async fn type_history(
    State(state): State<AppState>,
    request: FhirRequest,
    TypePath(resource_type): TypePath,
) -> FhirResult<Response> {
    let path = format!("{resource_type}/_history");
    history(&state, &request, HistoryScope::Type(resource_type), path).await
}

pub async fn instance_history(
    State(state): State<AppState>,
    request: FhirRequest,
    InstancePath { resource_type, id }: InstancePath,
) -> FhirResult<Response> {
    let path = format!("{resource_type}/{id}/_history");
    let scope = HistoryScope::Instance(resource_type, id);
    history(&state, &request, scope, path).await
}

async fn history(
    state: &AppState,
    request: &FhirRequest,
    scope: HistoryScope,
    path: String,
) -> FhirResult<Response> {
    let count = match request.param("_count") {
        None => state.config.default_page_size,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|count| *count >= 0)
            .ok_or_else(|| {
                FhirError::bad_request(format!(
                    "_count must be a non-negative integer, not {text:?}"
                ))
                .expression_at("_count")
            })?
            .min(state.config.max_page_size),
    };
    let since = match request.param("_since") {
        None => None,
        Some(text) => Some(parse_fhir_datetime(text).ok_or_else(|| {
            FhirError::bad_request(format!("_since must be a FHIR instant, not {text:?}"))
                .expression_at("_since")
        })?),
    };
    let before_seq = match request.param(CURSOR) {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            FhirError::bad_request(format!("{CURSOR} {text:?} is not a paging cursor"))
        })?),
    };
    let base = state.config.fhir_base();
    let store = reads(state, &request.access).await;
    let HistoryPage { entries, next_seq } = read::history(
        &store,
        &base,
        &request.access,
        &HistoryQuery {
            scope,
            since,
            before_seq,
            limit: count,
        },
    )
    .await?;
    let link = |cursor: Option<i64>| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("_count", &count.to_string());
        if let Some(since) = request.param("_since") {
            query.append_pair("_since", since);
        }
        if let Some(cursor) = cursor {
            query.append_pair(CURSOR, &cursor.to_string());
        }
        format!("{base}/{path}?{}", query.finish())
    };
    let mut links = vec![json!({"relation": "self", "url": link(before_seq)})];
    if let Some(seq) = next_seq {
        links.push(json!({"relation": "next", "url": link(Some(seq))}));
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "id": new_id(),
        "type": "history",
        "link": links,
        "entry": entries.into_iter().map(|entry| history_entry(&base, entry)).collect::<Vec<_>>(),
    });
    Ok(json_value(StatusCode::OK, request.format, &bundle))
}

fn history_entry(base: &str, entry: HistoryEntry) -> Value {
    let instance_url = format!("{}/{}", entry.resource_type, entry.id);
    let (request_url, status) = match entry.method.as_str() {
        "POST" => (entry.resource_type.clone(), "201 Created"),
        "DELETE" => (instance_url.clone(), "204 No Content"),
        _ if entry.version_id == 1 => (instance_url.clone(), "201 Created"),
        _ => (instance_url.clone(), "200 OK"),
    };
    let mut item = json!({
        "fullUrl": format!("{base}/{instance_url}"),
        "request": {"method": entry.method, "url": request_url},
        "response": {
            "status": status,
            "etag": format!("W/\"{}\"", entry.version_id),
            "lastModified": to_fhir_instant(entry.last_updated),
        },
    });
    if !entry.deleted {
        item["resource"] = serde_json::from_slice(&entry.body).unwrap_or(Value::Null);
    }
    item
}
