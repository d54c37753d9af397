//! The audit log over FHIR: `GET [base]/AuditEvent` and `POST [base]/AuditEvent/_search`
//! (a `searchset` Bundle of the recorded events) and `GET [base]/AuditEvent/[id]`, served from
//! `audit_events` rather than the resource tables, each event built from its stored form
//! (`audit::balp`). Every
//! other interaction on AuditEvent is refused with 405 (the log is append-only; see
//! `crate::engine::append_only`). Who may read is decided in [`access`], the parameters in
//! [`params`].

pub mod access;
pub mod params;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::access::scope::Permission;
use crate::audit::balp::audit_event_of;
use crate::engine::append_only::{AUDIT_EVENT, append_only};
use crate::fhir::id::new_id;
use crate::fhir::outcome::{FhirError, FhirResult, Issue, IssueCode, Severity, operation_outcome};
use crate::http::extract::{BoundedBody, IdPath};
use crate::http::negotiate::{FhirRequest, json_value};
use crate::search::params as search_params;
use crate::state::AppState;
use crate::store::audit::query::{AuditAtom, AuditColumn, AuditPageQuery};
use access::{Sees, sees};
use params::{AuditSearch, SEARCH_PARAMS};

pub async fn search(
    State(state): State<AppState>,
    request: FhirRequest,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let params = request.params.clone();
    answer_search(&state, &request, &headers, &params).await
}

pub async fn search_post(
    State(state): State<AppState>,
    request: FhirRequest,
    headers: HeaderMap,
    BoundedBody(body): BoundedBody,
) -> Response {
    let params = match super::search::form_params(&request, &headers, &body) {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    let answer = answer_search(&state, &request, &headers, &params).await;
    super::search::with_search_query(answer, crate::audit::SearchQuery::of(&params))
}

pub async fn read(
    State(state): State<AppState>,
    request: FhirRequest,
    IdPath(id): IdPath,
) -> FhirResult<Response> {
    let sees = sees(&state, &request.access, Permission::Read).await?;
    state.audit.settled().await?;
    let row = state
        .store
        .audit_event(&id)
        .await?
        .filter(|row| match &sees {
            Sees::All => true,
            Sees::Patient(patient) => row.patient.as_deref() == Some(patient.as_str()),
        })
        .ok_or_else(|| FhirError::not_found(format!("AuditEvent/{id} is not known")))?;
    let event = audit_event_of(&row.body).ok_or_else(|| {
        FhirError::internal(
            "reading the audit log",
            format!("the body of AuditEvent/{id} is damaged: run `kiln audit verify`"),
        )
    })?;
    Ok(json_value(StatusCode::OK, request.format, &event))
}

/// Any write (and history) on AuditEvent.
pub async fn refuse() -> FhirResult<Response> {
    Err(append_only())
}

async fn answer_search(
    state: &AppState,
    request: &FhirRequest,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> FhirResult<Response> {
    let sees = sees(state, &request.access, Permission::Search).await?;
    // Every event this server has answered for is searchable.
    state.audit.settled().await?;
    let base = state.config.fhir_base();
    let mut search = params::parse(params, &base)?;
    if super::search::strict_handling(headers) && !search.unknown.is_empty() {
        return Err(FhirError::bad_request(format!(
            "unknown or unsupported search parameters: {}",
            search.unknown.join(", ")
        ))
        .expression_at(search.unknown[0].clone()));
    }
    if let Sees::Patient(patient) = &sees {
        search
            .filter
            .require(vec![AuditAtom::Is(AuditColumn::Patient, patient.clone())]);
    }
    let limits = state.page_limits();
    let count = search.count.unwrap_or(limits.default).min(limits.max);
    let page = state
        .store
        .audit_page(&AuditPageQuery {
            filter: &search.filter,
            sort: &search.sort,
            offset: search.offset,
            limit: count,
            total: search.total == Some(true) || count == 0,
        })
        .await?;
    let total = match search.total {
        Some(false) => None,
        _ if page.total.is_some() => page.total,
        // The whole result on the first page: its size is the total, for free.
        _ if search.offset == 0 && !page.more => Some(page.rows.len() as i64),
        _ => None,
    };
    let mut entries: Vec<Value> = page
        .rows
        .into_iter()
        .map(|row| {
            json!({
                "fullUrl": format!("{base}/{AUDIT_EVENT}/{}", row.event_id),
                "resource": audit_event_of(&row.body).unwrap_or(Value::Null),
                "search": {"mode": "match"},
            })
        })
        .collect();
    if !search.unknown.is_empty() {
        entries.push(json!({
            "resource": unknown_outcome(&search.unknown),
            "search": {"mode": "outcome"},
        }));
    }
    let more = page.more && count > 0 && search.offset + count <= params::MAX_OFFSET;
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": new_id(),
        "type": "searchset",
        "link": links(&base, &search, count, more),
        "entry": entries,
    });
    if let Some(total) = total {
        bundle["total"] = json!(total);
    }
    Ok(json_value(StatusCode::OK, request.format, &bundle))
}

fn unknown_outcome(unknown: &[String]) -> Value {
    let issues: Vec<Issue> = unknown
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
    operation_outcome(&issues)
}

/// `self`, and `first`/`previous`/`next` as the page's place calls for.
fn links(base: &str, search: &AuditSearch, count: i64, more: bool) -> Vec<Value> {
    let link = |relation: &str, offset: i64| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &search.applied {
            query.append_pair(name, value);
        }
        if offset > 0 {
            query.append_pair("_offset", &offset.to_string());
        }
        let query = query.finish();
        let url = if query.is_empty() {
            format!("{base}/{AUDIT_EVENT}")
        } else {
            format!("{base}/{AUDIT_EVENT}?{query}")
        };
        json!({"relation": relation, "url": url})
    };
    let mut links = vec![link("self", search.offset)];
    if search.offset > 0 {
        links.push(link("first", 0));
        links.push(link("previous", (search.offset - count).max(0)));
    }
    if more {
        links.push(link("next", search.offset + count));
    }
    links
}

/// The CapabilityStatement's entry for AuditEvent: read and search only, with the
/// parameters [`params`] supports.
pub fn capability_resource() -> Value {
    let search_param: Vec<Value> = SEARCH_PARAMS
        .iter()
        .filter_map(|code| {
            search_params(AUDIT_EVENT)
                .iter()
                .find(|param| &*param.code == *code)
        })
        .map(|param| {
            json!({
                "name": param.code,
                "definition": param.url,
                "type": param.kind.as_str(),
            })
        })
        .collect();
    json!({
        "type": AUDIT_EVENT,
        "profile": format!("http://hl7.org/fhir/StructureDefinition/{AUDIT_EVENT}"),
        "documentation": "The audit log (IHE BALP), append-only: recorded by the server, read by \
            admin users and backend services with an AuditEvent scope. Create, update, patch and \
            delete are refused with 405. Also _sort, _count, _total and _offset (paging).",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "searchParam": search_param,
    })
}
