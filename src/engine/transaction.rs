//! `transaction` and `batch` Bundles posted to the base URL.
//!
//! A transaction is planned and written in one database transaction: ids are assigned first,
//! `urn:uuid:` and conditional references are rewritten, then every write is applied
//! together, so it commits whole or not at all. A batch runs each entry as a transaction of
//! its own and reports each entry's outcome.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::access;
use super::conditional::{Condition, for_each_reference};
use super::prepare::{Expect, prepare_resource};
use super::search::{PageLimits, SearchRequest, searchset};
use super::write::{Applied, WriteAction, WriteOutcome, WriteRequest, apply, retry_races};
use crate::auth::access::Access;
use crate::auth::scope::Permission;
use crate::fhir::id::{is_valid_id, new_id};
use crate::fhir::instant::to_fhir_instant;
use crate::fhir::outcome::{FhirError, FhirResult, informational};
use crate::fhir::validate::is_resource_type;
use crate::store::{Store, Tx};

/// Page sizes of searches inside a Bundle.
const BUNDLE_SEARCH_LIMITS: PageLimits = PageLimits {
    default: 50,
    max: 1000,
};

/// What the client asked to get back (`Prefer: return=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnPreference {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// The target of a request URL relative to the base.
#[derive(Debug, Clone)]
enum Target {
    Type(String),
    Instance(String, String),
    Version(String, String, i64),
    Conditional(Condition),
    /// A GET search: the type (none for a system-level search) and its query.
    Search(Option<String>, String),
}

#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    /// An entry of a posted Bundle (errors point at it), not a plain REST request.
    in_bundle: bool,
    full_url: Option<String>,
    method: Method,
    target: Target,
    resource: Option<Map<String, Value>>,
    if_match: Option<i64>,
    if_none_exist: Option<Condition>,
}

impl Entry {
    /// `error` pointed at this entry (`path`: below it, e.g. `.request.url`); a plain
    /// request is not in a Bundle, so its errors carry no Bundle path.
    fn locate(&self, error: FhirError, path: &str) -> FhirError {
        if self.in_bundle {
            error.expression_at(format!("Bundle.entry[{}]{path}", self.index))
        } else {
            error
        }
    }

    /// The write this entry is, as scopes name it: its type, the permission, and whether a
    /// search (a conditional match) comes with it. `None` for reads and searches.
    fn write_kind(&self) -> Option<(&str, Permission, bool)> {
        let conditional = self.if_none_exist.is_some();
        match (self.method, &self.target) {
            (Method::Post, Target::Type(resource_type)) => {
                Some((resource_type, Permission::Create, conditional))
            }
            (Method::Put, Target::Instance(resource_type, _)) => {
                Some((resource_type, Permission::Update, false))
            }
            (Method::Delete, Target::Instance(resource_type, _)) => {
                Some((resource_type, Permission::Delete, false))
            }
            (Method::Put, Target::Conditional(condition)) => {
                Some((&condition.resource_type, Permission::Update, true))
            }
            (Method::Delete, Target::Conditional(condition)) => {
                Some((&condition.resource_type, Permission::Delete, true))
            }
            _ => None,
        }
    }
}

/// The outcome of one entry, ready for the response Bundle.
#[derive(Debug, Clone)]
enum EntryResult {
    Written(WriteOutcome),
    /// A conditional create that found its match: nothing was written.
    Existing {
        resource_type: String,
        id: String,
    },
    Read(Vec<u8>, i64, i64),
    /// A search's `searchset` Bundle.
    Found(Value),
    Failed(FhirError),
}

/// Processes a Bundle of type `transaction` or `batch` and returns the response Bundle.
pub async fn process_bundle(
    store: &Store,
    bundle: Map<String, Value>,
    base: &str,
    preference: ReturnPreference,
    access: &Access,
) -> FhirResult<Value> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(FhirError::bad_request(
            "POST to the base URL takes a Bundle of type transaction or batch",
        )
        .expression_at("resourceType"));
    }
    let bundle_type = bundle.get("type").and_then(Value::as_str).unwrap_or("");
    let is_transaction = match bundle_type {
        "transaction" => true,
        "batch" => false,
        other => {
            return Err(FhirError::bad_request(format!(
                "Bundle.type must be transaction or batch, not {other:?}"
            ))
            .expression_at("Bundle.type"));
        }
    };
    let raw_entries = match bundle.get("entry") {
        None => Vec::new(),
        Some(Value::Array(entries)) => entries.clone(),
        Some(_) => {
            return Err(FhirError::bad_request("Bundle.entry must be an array")
                .expression_at("Bundle.entry"));
        }
    };
    check_unique_full_urls(&raw_entries)?;
    let response_type = if is_transaction {
        "transaction-response"
    } else {
        "batch-response"
    };
    let results = if is_transaction {
        let entries = raw_entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| parse_entry(index, entry, base))
            .collect::<FhirResult<Vec<_>>>()?;
        check_no_duplicate_targets(&entries)?;
        run_transaction(store, &entries, base, access).await?
    } else {
        let mut results = Vec::with_capacity(raw_entries.len());
        for (index, entry) in raw_entries.into_iter().enumerate() {
            let result = match parse_entry(index, entry, base) {
                Ok(entry) => {
                    match run_transaction(store, std::slice::from_ref(&entry), base, access).await {
                        Ok(mut results) => results.remove(0),
                        Err(error) => EntryResult::Failed(error),
                    }
                }
                Err(error) => EntryResult::Failed(error),
            };
            results.push(result);
        }
        results
    };
    Ok(json!({
        "resourceType": "Bundle",
        "id": new_id(),
        "type": response_type,
        "entry": results
            .into_iter()
            .map(|result| response_entry(result, base, preference))
            .collect::<Vec<_>>(),
    }))
}

/// bdl-7: entries with the same `fullUrl` must be different versions of one resource
/// (different `meta.versionId`); otherwise references to it would be ambiguous.
fn check_unique_full_urls(entries: &[Value]) -> FhirResult<()> {
    let mut seen: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let Some(full_url) = entry.get("fullUrl").and_then(Value::as_str) else {
            continue;
        };
        let version = entry
            .pointer("/resource/meta/versionId")
            .and_then(Value::as_str);
        if let Some(first) = seen.insert((full_url, version), index) {
            return Err(FhirError::bad_request(format!(
                "Bundle.entry[{index}] repeats the fullUrl {full_url:?} of Bundle.entry[{first}] \
                 (bdl-7: fullUrl must be unique in a Bundle)"
            ))
            .expression_at(format!("Bundle.entry[{index}].fullUrl")));
        }
    }
    Ok(())
}

fn entry_error(index: usize, message: impl Into<String>) -> FhirError {
    FhirError::bad_request(message).expression_at(format!("Bundle.entry[{index}]"))
}

fn parse_entry(index: usize, entry: Value, base: &str) -> FhirResult<Entry> {
    let Value::Object(mut entry) = entry else {
        return Err(entry_error(index, "a Bundle entry must be an object"));
    };
    let request = match entry.get("request") {
        Some(Value::Object(request)) => request.clone(),
        _ => return Err(entry_error(index, "the entry has no request")),
    };
    let method = match request.get("method").and_then(Value::as_str) {
        Some("GET") | Some("HEAD") => Method::Get,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("DELETE") => Method::Delete,
        Some(other) => {
            return Err(FhirError::not_supported(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("request.method {other:?} is not supported in a Bundle"),
            )
            .expression_at(format!("Bundle.entry[{index}].request.method")));
        }
        None => return Err(entry_error(index, "the entry's request has no method")),
    };
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| entry_error(index, "the entry's request has no url"))?;
    let target = if method == Method::Get {
        parse_read_target(url, base)
    } else {
        parse_target(url, base)
    }
    .map_err(|error| error.expression_at(format!("Bundle.entry[{index}].request.url")))?;
    match (method, &target) {
        (Method::Delete, Target::Type(_) | Target::Version(..)) => {
            return Err(entry_error(
                index,
                "DELETE entries take the url [type]/[id] or [type]?[criteria]",
            ));
        }
        (Method::Post | Method::Put, Target::Version(..)) => {
            return Err(entry_error(index, "a version url can only be read"));
        }
        _ => {}
    }
    let if_match = match request.get("ifMatch").and_then(Value::as_str) {
        Some(tag) => Some(parse_etag(tag).ok_or_else(|| {
            entry_error(
                index,
                format!("ifMatch {tag:?} is not an ETag like W/\"3\""),
            )
        })?),
        None => None,
    };
    let full_url = entry
        .get("fullUrl")
        .and_then(Value::as_str)
        .map(str::to_string);
    let resource = match entry.remove("resource") {
        Some(Value::Object(resource)) => Some(resource),
        Some(_) => {
            return Err(entry_error(
                index,
                "entry.resource must be a resource object",
            ));
        }
        None => None,
    };
    let resource = match (method, &target, resource) {
        (Method::Post, Target::Type(resource_type), Some(resource)) => Some(prepare_in_entry(
            index,
            resource,
            Expect::Create { resource_type },
        )?),
        (Method::Put, Target::Instance(resource_type, id), Some(resource)) => Some(
            prepare_in_entry(index, resource, Expect::Update { resource_type, id })?,
        ),
        (Method::Put, Target::Conditional(condition), Some(resource)) => Some(prepare_in_entry(
            index,
            resource,
            Expect::Create {
                resource_type: &condition.resource_type,
            },
        )?),
        (Method::Post | Method::Put, _, None) => {
            return Err(entry_error(index, "a POST or PUT entry needs a resource"));
        }
        (Method::Post, _, Some(_)) => {
            return Err(entry_error(index, "POST entries take the url [type]"));
        }
        (Method::Put, _, Some(_)) => {
            return Err(entry_error(
                index,
                "PUT entries take the url [type]/[id] or [type]?[criteria]",
            ));
        }
        (_, _, _) => None,
    };
    let if_none_exist = match (
        method,
        &target,
        request.get("ifNoneExist").and_then(Value::as_str),
    ) {
        (Method::Post, Target::Type(resource_type), Some(query)) => Some(
            Condition::parse(resource_type, query.trim_start_matches('?')).map_err(|error| {
                error.expression_at(format!("Bundle.entry[{index}].request.ifNoneExist"))
            })?,
        ),
        _ => None,
    };
    Ok(Entry {
        index,
        in_bundle: true,
        full_url,
        method,
        target,
        resource,
        if_match,
        if_none_exist,
    })
}

fn prepare_in_entry(
    index: usize,
    resource: Map<String, Value>,
    expect: Expect<'_>,
) -> FhirResult<Map<String, Value>> {
    prepare_resource(resource, expect).map_err(|mut error| {
        for issue in &mut error.issues {
            issue.expression = Some(match issue.expression.take() {
                Some(path) => format!("Bundle.entry[{index}].resource.{path}"),
                None => format!("Bundle.entry[{index}].resource"),
            });
        }
        error
    })
}

/// Parses a request URL (relative, or absolute on this server) into its target.
fn parse_target(url: &str, base: &str) -> FhirResult<Target> {
    let relative = url
        .strip_prefix(base)
        .map(|rest| rest.trim_start_matches('/'))
        .unwrap_or(url);
    let (path, query) = match relative.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (relative, None),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resource_type = segments.first().copied().unwrap_or("");
    if !is_resource_type(resource_type) {
        return Err(FhirError::not_found(format!(
            "{url:?} does not name a known resource type"
        )));
    }
    let check_id = |id: &str| -> FhirResult<String> {
        if is_valid_id(id) {
            Ok(id.to_string())
        } else {
            Err(FhirError::bad_request(format!(
                "{id:?} is not a valid FHIR id"
            )))
        }
    };
    match (segments.as_slice(), query) {
        ([_], Some(query)) if !query.is_empty() => {
            Ok(Target::Conditional(Condition::parse(resource_type, query)?))
        }
        ([_], _) => Ok(Target::Type(resource_type.to_string())),
        ([_, id], _) => Ok(Target::Instance(resource_type.to_string(), check_id(id)?)),
        ([_, id, "_history", version], _) => {
            let version = version.parse::<i64>().map_err(|_| {
                FhirError::bad_request(format!("{version:?} is not a version number"))
            })?;
            Ok(Target::Version(
                resource_type.to_string(),
                check_id(id)?,
                version,
            ))
        }
        _ => Err(FhirError::bad_request(format!(
            "{url:?} is not a supported Bundle request url"
        ))),
    }
}

/// Parses a GET url: a search (`Type?…`, `Type`, `?…`) or a read / vread.
fn parse_read_target(url: &str, base: &str) -> FhirResult<Target> {
    let relative = url
        .strip_prefix(base)
        .map(|rest| rest.trim_start_matches('/'))
        .unwrap_or(url);
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Ok(Target::Search(None, query.to_string()));
    }
    if !path.contains('/') {
        if !is_resource_type(path) {
            return Err(FhirError::not_found(format!(
                "{url:?} does not name a known resource type"
            )));
        }
        return Ok(Target::Search(Some(path.to_string()), query.to_string()));
    }
    parse_target(url, base)
}

/// Parses `W/"3"` (or `"3"`, or `3`) into a version number.
pub fn parse_etag(tag: &str) -> Option<i64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let tag = tag.trim_matches('"');
    tag.parse().ok()
}

/// A transaction may not touch the same resource twice.
fn check_no_duplicate_targets(entries: &[Entry]) -> FhirResult<()> {
    let mut seen = HashSet::new();
    for entry in entries {
        if let (Method::Put | Method::Delete, Target::Instance(resource_type, id)) =
            (entry.method, &entry.target)
            && !seen.insert((resource_type.clone(), id.clone()))
        {
            return Err(entry_error(
                entry.index,
                format!("{resource_type}/{id} appears more than once in the transaction"),
            ));
        }
    }
    Ok(())
}

/// Runs entries as one all-or-nothing unit, retrying when a concurrent writer got in first.
async fn run_transaction(
    store: &Store,
    entries: &[Entry],
    base: &str,
    access: &Access,
) -> FhirResult<Vec<EntryResult>> {
    // Scopes first: a write the token may not do on the type is refused before any target
    // is looked up, so the answer tells nothing about what exists.
    for entry in entries {
        if let Some((resource_type, permission, conditional)) = entry.write_kind() {
            access::may(access, resource_type, permission, conditional)
                .map_err(|error| entry.locate(error, ""))?;
        }
    }
    let mut results = retry_races(
        store,
        "the transaction collided with concurrent writers too often; try again",
        |mut tx| async move {
            let planned = plan_and_apply(store, &mut tx, entries.to_vec(), base, access).await?;
            Ok(planned.map(|results| (tx, results)))
        },
    )
    .await?;
    read_entries(store, entries, &mut results, base, access).await?;
    Ok(results)
}

/// Plans every entry inside `tx`; `None` means a lost race (roll back and retry).
async fn plan_and_apply(
    store: &Store,
    tx: &mut Tx,
    mut entries: Vec<Entry>,
    base: &str,
    access: &Access,
) -> FhirResult<Option<Vec<EntryResult>>> {
    let mut results: Vec<Option<EntryResult>> = vec![None; entries.len()];
    // 1. Decide the identity every entry writes to, and map fullUrls to it.
    let mut identities: Vec<Option<(String, String)>> = vec![None; entries.len()];
    let mut aliases: HashMap<String, String> = HashMap::new();
    for (slot, entry) in entries.iter().enumerate() {
        let identity = match (&entry.method, &entry.target) {
            (Method::Post, Target::Type(resource_type)) => {
                let existing = match &entry.if_none_exist {
                    Some(condition) => {
                        let ids = condition.matches(store, base, access).await?;
                        if ids.len() > 1 {
                            return Err(entry.locate(
                                FhirError::precondition_failed(
                                    "ifNoneExist matches more than one resource",
                                ),
                                ".request.ifNoneExist",
                            ));
                        }
                        ids.into_iter().next()
                    }
                    None => None,
                };
                match existing {
                    Some(id) => {
                        results[slot] = Some(EntryResult::Existing {
                            resource_type: resource_type.clone(),
                            id: id.clone(),
                        });
                        (resource_type.clone(), id)
                    }
                    None => (resource_type.clone(), new_id()),
                }
            }
            (Method::Put | Method::Delete, Target::Instance(resource_type, id)) => {
                (resource_type.clone(), id.clone())
            }
            (Method::Put | Method::Delete, Target::Conditional(condition)) => {
                let ids = condition.matches(store, base, access).await?;
                match ids.as_slice() {
                    [id] => (condition.resource_type.clone(), id.clone()),
                    [] if entry.method == Method::Delete => {
                        results[slot] = Some(EntryResult::Written(WriteOutcome {
                            resource_type: condition.resource_type.clone(),
                            id: String::new(),
                            version_id: 0,
                            last_updated: 0,
                            created: false,
                            body: None,
                            unchanged: true,
                        }));
                        continue;
                    }
                    [] => {
                        let id = entry
                            .resource
                            .as_ref()
                            .and_then(|resource| resource.get("id"))
                            .and_then(Value::as_str)
                            .filter(|id| is_valid_id(id))
                            .map_or_else(new_id, str::to_string);
                        (condition.resource_type.clone(), id)
                    }
                    _ => {
                        let error = FhirError::precondition_failed(format!(
                            "the conditional {} matches more than one resource",
                            if entry.method == Method::Put {
                                "update"
                            } else {
                                "delete"
                            }
                        ));
                        return Err(entry.locate(error, ".request.url"));
                    }
                }
            }
            _ => continue,
        };
        if let Some(full_url) = &entry.full_url {
            aliases.insert(full_url.clone(), format!("{}/{}", identity.0, identity.1));
        }
        identities[slot] = Some(identity);
    }
    // 2. Rewrite references to other entries and conditional references.
    let mut resolved: HashMap<String, String> = HashMap::new();
    for entry in &mut entries {
        let Some(resource) = entry.resource.take() else {
            continue;
        };
        let mut value = Value::Object(resource);
        let mut conditionals: Vec<String> = Vec::new();
        for_each_reference(&mut value, &mut |reference| {
            if let Some(target) = aliases.get(reference.as_str()) {
                *reference = target.clone();
            } else if let Some(relative) = reference.strip_prefix(base) {
                *reference = relative.trim_start_matches('/').to_string();
            } else if reference.contains('?') && !conditionals.contains(reference) {
                conditionals.push(reference.clone());
            }
        });
        for text in conditionals {
            if resolved.contains_key(&text) {
                continue;
            }
            if let Some(condition) = Condition::parse_reference(&text) {
                let condition = condition.map_err(|error| entry.locate(error, ".resource"))?;
                let id = condition
                    .resolve_one(store, base, &text, access)
                    .await
                    .map_err(|error| entry.locate(error, ".resource"))?;
                resolved.insert(text, format!("{}/{id}", condition.resource_type));
            }
        }
        for_each_reference(&mut value, &mut |reference| {
            if let Some(target) = resolved.get(reference.as_str()) {
                *reference = target.clone();
            }
        });
        if let Value::Object(resource) = value {
            entry.resource = Some(resource);
        }
    }
    // 3. Write everything at once.
    let mut requests = Vec::new();
    let mut request_slots = Vec::new();
    for (slot, mut entry) in entries.into_iter().enumerate() {
        if results[slot].is_some() {
            continue;
        }
        let Some((resource_type, id)) = identities[slot].clone() else {
            continue;
        };
        let action = match (entry.method, entry.resource.take()) {
            (Method::Delete, _) => WriteAction::Delete,
            (Method::Post, Some(resource)) => WriteAction::Create(resource),
            (Method::Put, Some(resource)) => WriteAction::Put(resource),
            _ => continue,
        };
        check_write(store, base, access, &resource_type, &id, &action)
            .await
            .map_err(|error| entry.locate(error, ""))?;
        requests.push(WriteRequest {
            resource_type,
            id,
            action,
            if_match: entry.if_match,
        });
        request_slots.push(slot);
    }
    let outcomes = match apply(tx, requests).await? {
        Applied::Done(outcomes) => outcomes,
        Applied::Conflict => return Ok(None),
    };
    for (slot, outcome) in request_slots.into_iter().zip(outcomes) {
        results[slot] = Some(EntryResult::Written(outcome));
    }
    Ok(Some(
        results
            .into_iter()
            .map(|result| result.unwrap_or(EntryResult::Read(Vec::new(), 0, 0)))
            .collect(),
    ))
}

/// GET entries run after the writes, as the transaction rules order them.
async fn read_entries(
    store: &Store,
    entries: &[Entry],
    results: &mut [EntryResult],
    base: &str,
    access: &Access,
) -> FhirResult<()> {
    for (slot, entry) in entries.iter().enumerate() {
        if entry.method != Method::Get {
            continue;
        }
        let found = match &entry.target {
            Target::Search(resource_type, query) => {
                let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
                let request = SearchRequest {
                    resource_type: resource_type.as_deref(),
                    params: &params,
                    patient_compartment: None,
                    strict: false,
                    limits: BUNDLE_SEARCH_LIMITS,
                    base,
                    link: None,
                    access,
                };
                results[slot] = match searchset(store, &request).await {
                    Ok(bundle) => EntryResult::Found(bundle),
                    Err(error) => EntryResult::Failed(error),
                };
                continue;
            }
            Target::Instance(resource_type, id) | Target::Version(resource_type, id, _) => {
                // The scope first: a refusal says nothing about whether the id exists.
                if let Err(error) = access.reach(resource_type, Permission::Read) {
                    results[slot] = EntryResult::Failed(error);
                    continue;
                }
                match &entry.target {
                    Target::Version(_, _, version) => {
                        store.vread(resource_type, id, *version).await?
                    }
                    _ => store.read(resource_type, id).await?,
                }
            }
            _ => {
                results[slot] = EntryResult::Failed(FhirError::not_supported(
                    StatusCode::BAD_REQUEST,
                    "search in a Bundle entry is not supported yet",
                ));
                continue;
            }
        };
        results[slot] = match found {
            Some(stored) if stored.deleted => {
                EntryResult::Failed(FhirError::gone("the resource was deleted"))
            }
            Some(stored) => {
                match access::require(store, base, access, Permission::Read, &stored).await {
                    Ok(()) => {
                        EntryResult::Read(stored.body, stored.version_id, stored.last_updated)
                    }
                    Err(error) => EntryResult::Failed(error),
                }
            }
            None => EntryResult::Failed(FhirError::not_found("no such resource")),
        };
    }
    Ok(())
}

/// The caller's token must reach the resource as it is (update, delete) and as it will be
/// (create, update).
async fn check_write(
    store: &Store,
    base: &str,
    caller: &Access,
    resource_type: &str,
    id: &str,
    action: &WriteAction,
) -> FhirResult<()> {
    if caller.is_full() {
        return Ok(());
    }
    let existing = store
        .read(resource_type, id)
        .await?
        .filter(|stored| !stored.deleted);
    // SMART: the update scope also covers an update that creates the resource.
    let (permission, new_body) = match action {
        WriteAction::Delete => (Permission::Delete, None),
        WriteAction::Put(body) => (Permission::Update, Some(body)),
        WriteAction::Create(body) => (Permission::Create, Some(body)),
    };
    if let Some(stored) = &existing {
        access::require(store, base, caller, permission, stored).await?;
    }
    if let Some(body) = new_body {
        let mut body = Value::Object(body.clone());
        body["id"] = Value::String(id.to_owned());
        if !access::admits_new(caller, permission, &body)? {
            return Err(access::outside_reach(resource_type, id));
        }
    }
    Ok(())
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}

fn response_entry(result: EntryResult, base: &str, preference: ReturnPreference) -> Value {
    match result {
        EntryResult::Written(outcome) if outcome.unchanged => json!({
            "response": {"status": status_line(StatusCode::NO_CONTENT)}
        }),
        EntryResult::Written(outcome) => {
            let status = if outcome.body.is_none() {
                StatusCode::NO_CONTENT
            } else if outcome.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = json!({
                "status": status_line(status),
                "etag": format!("W/\"{}\"", outcome.version_id),
                "lastModified": to_fhir_instant(outcome.last_updated),
            });
            if outcome.body.is_some() {
                response["location"] = json!(format!(
                    "{base}/{}/{}/_history/{}",
                    outcome.resource_type, outcome.id, outcome.version_id
                ));
            }
            let mut entry = json!({"response": response});
            if let Some(body) = outcome.body {
                entry["fullUrl"] =
                    json!(format!("{base}/{}/{}", outcome.resource_type, outcome.id));
                match preference {
                    ReturnPreference::Representation => {
                        entry["resource"] = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    }
                    ReturnPreference::OperationOutcome => {
                        entry["response"]["outcome"] = informational("the resource was stored");
                    }
                    ReturnPreference::Minimal => {}
                }
            }
            entry
        }
        EntryResult::Existing { resource_type, id } => json!({
            "fullUrl": format!("{base}/{resource_type}/{id}"),
            "response": {
                "status": status_line(StatusCode::OK),
                "location": format!("{base}/{resource_type}/{id}"),
            }
        }),
        EntryResult::Found(bundle) => json!({
            "resource": bundle,
            "response": {"status": status_line(StatusCode::OK)},
        }),
        EntryResult::Read(body, version_id, last_updated) => json!({
            "resource": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            "response": {
                "status": status_line(StatusCode::OK),
                "etag": format!("W/\"{version_id}\""),
                "lastModified": to_fhir_instant(last_updated),
            }
        }),
        EntryResult::Failed(error) => json!({
            "response": {
                "status": status_line(error.status),
                "outcome": error.outcome(),
            }
        }),
    }
}

/// A single REST write, run through the same planner as a one-entry transaction. Every
/// resource is already checked with `prepare_resource`.
pub enum Interaction {
    /// `POST [type]`, conditional with `If-None-Exist`.
    Create {
        resource_type: String,
        resource: Map<String, Value>,
        if_none_exist: Option<Condition>,
    },
    /// `PUT [type]/[id]` or `PUT [type]?…`.
    Update {
        target: WriteTarget,
        resource: Map<String, Value>,
        if_match: Option<i64>,
    },
    /// `DELETE [type]/[id]` or `DELETE [type]?…`.
    Delete {
        target: WriteTarget,
        if_match: Option<i64>,
    },
}

/// The resource an update or delete names: by id, or by a conditional match.
pub enum WriteTarget {
    Instance { resource_type: String, id: String },
    Conditional(Condition),
}

impl From<WriteTarget> for Target {
    fn from(target: WriteTarget) -> Self {
        match target {
            WriteTarget::Instance { resource_type, id } => Target::Instance(resource_type, id),
            WriteTarget::Conditional(condition) => Target::Conditional(condition),
        }
    }
}

impl Interaction {
    /// The interaction as a transaction entry outside any Bundle.
    fn into_entry(self) -> Entry {
        let (method, target, resource, if_match, if_none_exist) = match self {
            Interaction::Create {
                resource_type,
                resource,
                if_none_exist,
            } => (
                Method::Post,
                Target::Type(resource_type),
                Some(resource),
                None,
                if_none_exist,
            ),
            Interaction::Update {
                target,
                resource,
                if_match,
            } => (Method::Put, target.into(), Some(resource), if_match, None),
            Interaction::Delete { target, if_match } => {
                (Method::Delete, target.into(), None, if_match, None)
            }
        };
        Entry {
            index: 0,
            in_bundle: false,
            full_url: None,
            method,
            target,
            resource,
            if_match,
            if_none_exist,
        }
    }
}

/// What a single REST write did.
pub enum InteractionResult {
    Written(WriteOutcome),
    /// A conditional create found its match; nothing was written.
    Existing {
        resource_type: String,
        id: String,
    },
}

pub async fn execute(
    store: &Store,
    base: &str,
    interaction: Interaction,
    access: &Access,
) -> FhirResult<InteractionResult> {
    let entry = interaction.into_entry();
    let mut results = run_transaction(store, std::slice::from_ref(&entry), base, access).await?;
    match results.pop() {
        Some(EntryResult::Written(outcome)) => Ok(InteractionResult::Written(outcome)),
        Some(EntryResult::Existing { resource_type, id }) => {
            Ok(InteractionResult::Existing { resource_type, id })
        }
        Some(EntryResult::Failed(error)) => Err(error),
        _ => Err(FhirError::internal(
            "writing",
            "the write produced no outcome",
        )),
    }
}
