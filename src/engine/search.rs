//! Running a search and building its `searchset` Bundle: shared by the REST search
//! endpoints and by GET entries of batch and transaction Bundles.

use std::borrow::Cow;

use serde_json::{Value, json};

use super::cursor::{cursor_text, parse_cursor};
use crate::access::check as access;
use crate::access::reach::Access;
use crate::access::scope::Permission;
use crate::fhir::id::new_id;
use crate::fhir::outcome::{FhirError, FhirResult, Issue, IssueCode, Severity, operation_outcome};
use crate::fhir::subset::Subset;
use crate::search::query::{SearchQuery, Summary, parse_search};
use crate::store::{Cursor, SearchPage, SearchSpec, Store, StoredResource};

/// Parameters that shape the response rather than select resources.
const RESPONSE_PARAMS: [&str; 2] = ["_format", "_pretty"];

/// Page sizes: without `_count`, and the most a client may ask for.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    pub default: i64,
    pub max: i64,
}

/// One search to answer.
pub struct SearchRequest<'a> {
    /// `None`: a system-level search.
    pub resource_type: Option<&'a str>,
    pub params: &'a [(String, String)],
    /// `Patient/[id]/[type]`: only this Patient's compartment.
    pub patient_compartment: Option<&'a str>,
    /// `Prefer: handling=strict`: unknown parameters are an error, not a warning.
    pub strict: bool,
    pub limits: PageLimits,
    pub base: &'a str,
    /// The path and parameters of the paging links, when not the search's own: an
    /// operation such as `Patient/[id]/$everything` pages with its own parameters.
    pub link: Option<(&'a str, &'a [(String, String)])>,
    /// Who is searching: the search sees only what their token reaches.
    pub access: &'a Access,
}

/// Runs the search and returns the `searchset` Bundle of one page.
pub async fn searchset(store: &Store, request: &SearchRequest<'_>) -> FhirResult<Value> {
    run(store, request, false).await
}

/// `Patient/[id]/$everything`: the search over the request's Patient compartment and what
/// its resources reference, each resource once in a walk of the pages (referenced ones in
/// `include` mode).
pub async fn everything(store: &Store, request: &SearchRequest<'_>) -> FhirResult<Value> {
    run(store, request, true).await
}

/// Runs the search and returns the resources matched on one page (not the `include`d ones).
pub async fn matches(store: &Store, request: &SearchRequest<'_>) -> FhirResult<Vec<Value>> {
    let found = find(store, request, false).await?;
    Ok(found
        .page
        .matches
        .into_iter()
        .map(|stored| {
            serde_json::from_slice(&found.subset.apply(stored.body)).unwrap_or(Value::Null)
        })
        .collect())
}

/// One page of a search, before it is written as a Bundle.
struct Found {
    query: SearchQuery,
    /// The request's parameters that select resources.
    selecting: Vec<(String, String)>,
    page: SearchPage,
    subset: Subset,
    cursor: Cursor,
}

async fn run(store: &Store, request: &SearchRequest<'_>, everything: bool) -> FhirResult<Value> {
    let Found {
        query,
        selecting,
        page,
        subset,
        cursor,
    } = find(store, request, everything).await?;
    let path = match (
        request.link,
        request.patient_compartment,
        request.resource_type,
    ) {
        (Some((path, _)), _, _) => path.to_string(),
        (None, Some(patient), Some(resource_type)) => format!("Patient/{patient}/{resource_type}"),
        (None, Some(patient), None) => format!("Patient/{patient}/*"),
        (None, None, Some(resource_type)) => resource_type.to_string(),
        (None, None, None) => String::new(),
    };
    // The links show what was applied: not the parameters ignored as unknown, nor empty ones.
    let link_params: Vec<(String, String)> = request
        .link
        .map_or(selecting.as_slice(), |(_, params)| params)
        .iter()
        .filter(|(name, value)| !value.is_empty() && !query.unknown.contains(name))
        .cloned()
        .collect();
    Ok(bundle(
        request.base,
        &path,
        &link_params,
        &query,
        page,
        &subset,
        &cursor,
    ))
}

async fn find(store: &Store, request: &SearchRequest<'_>, everything: bool) -> FhirResult<Found> {
    let selecting: Vec<(String, String)> = request
        .params
        .iter()
        .filter(|(name, _)| !RESPONSE_PARAMS.contains(&name.as_str()))
        .cloned()
        .collect();
    let query = parse_search(request.resource_type, &selecting)?;
    if request.strict && !query.unknown.is_empty() {
        return Err(FhirError::bad_request(format!(
            "unknown or unsupported search parameters: {}",
            query.unknown.join(", ")
        ))
        .expression_at(query.unknown[0].clone()));
    }
    let count = match query.controls.summary {
        Some(Summary::Count) => 0,
        _ => query
            .controls
            .count
            .map_or(request.limits.default, i64::from)
            .min(request.limits.max),
    };
    let cursor = parse_cursor(query.controls.cursor.as_deref(), &query)?;
    let subset = subset_of(&query)?;
    let types: Vec<&str> = match query.resource_type {
        Some(resource_type) => vec![resource_type],
        None => query.types.clone(),
    };
    let filter = access::search_filter(request.access, &types, Permission::Search)?;
    let spec = SearchSpec {
        query: &query,
        base: request.base,
        count,
        cursor: cursor.clone(),
        patient_compartment: request.patient_compartment,
        access: filter.as_ref(),
    };
    let mut page = if everything {
        store.everything(&spec).await?
    } else {
        store.search(&spec).await?
    };
    page.included = access::retain_readable(
        store,
        request.base,
        request.access,
        page.included,
        |stored| Cow::Borrowed(stored),
    )
    .await?;
    Ok(Found {
        query,
        selecting,
        page,
        subset,
        cursor,
    })
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

fn bundle(
    base: &str,
    path: &str,
    params: &[(String, String)],
    query: &SearchQuery,
    page: SearchPage,
    subset: &Subset,
    cursor: &Cursor,
) -> Value {
    let mut links = vec![json!({"relation": "self", "url": page_link(base, path, params, cursor)})];
    if *cursor != Cursor::Start {
        links.push(
            json!({"relation": "first", "url": page_link(base, path, params, &Cursor::Start)}),
        );
    }
    if let Some(previous) = &page.previous {
        links.push(json!({"relation": "previous", "url": page_link(base, path, params, previous)}));
    }
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
