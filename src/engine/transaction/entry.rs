//! Transaction entries: a Bundle entry's `request` and `resource`, or a typed REST write,
//! parsed into an `Entry` with its method and target.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::access::scope::Permission;
use crate::engine::conditional::Condition;
use crate::engine::patch::PatchDocument;
use crate::engine::prepare::{Expect, prepare_resource};
use crate::fhir::id::is_valid_id;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::fhir::validate::is_resource_type;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// The target of a request URL relative to the base.
#[derive(Debug, Clone)]
pub(super) enum Target {
    Type(String),
    Instance(String, String),
    Version(String, String, i64),
    Conditional(Condition),
    /// A GET search: the type (none for a system-level search) and its query.
    Search(Option<String>, String),
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) index: usize,
    /// An entry of a posted Bundle (errors point at it), not a plain REST request.
    pub(super) in_bundle: bool,
    pub(super) full_url: Option<String>,
    pub(super) method: Method,
    pub(super) target: Target,
    pub(super) resource: Option<Map<String, Value>>,
    /// The patch of a PATCH entry.
    pub(super) patch: Option<PatchDocument>,
    pub(super) if_match: Option<i64>,
    pub(super) if_none_exist: Option<Condition>,
}

impl Entry {
    /// `error` pointed at this entry (`path`: below it, e.g. `.request.url`); a plain
    /// request is not in a Bundle, so its errors carry no Bundle path.
    pub(super) fn locate(&self, error: FhirError, path: &str) -> FhirError {
        if self.in_bundle {
            error.expression_at(format!("Bundle.entry[{}]{path}", self.index))
        } else {
            error
        }
    }

    /// The write this entry is, as scopes name it: its type, the permission, and whether a
    /// search (a conditional match) comes with it. `None` for reads and searches.
    pub(super) fn write_kind(&self) -> Option<(&str, Permission, bool)> {
        let conditional = self.if_none_exist.is_some();
        match (self.method, &self.target) {
            (Method::Post, Target::Type(resource_type)) => {
                Some((resource_type, Permission::Create, conditional))
            }
            (Method::Put | Method::Patch, Target::Instance(resource_type, _)) => {
                Some((resource_type, Permission::Update, false))
            }
            (Method::Delete, Target::Instance(resource_type, _)) => {
                Some((resource_type, Permission::Delete, false))
            }
            (Method::Put | Method::Patch, Target::Conditional(condition)) => {
                Some((&condition.resource_type, Permission::Update, true))
            }
            (Method::Delete, Target::Conditional(condition)) => {
                Some((&condition.resource_type, Permission::Delete, true))
            }
            _ => None,
        }
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
    /// `PATCH [type]/[id]` or `PATCH [type]?…`.
    Patch {
        target: WriteTarget,
        patch: PatchDocument,
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
    /// The interaction's name as FHIR calls it (`TypeRestfulInteraction`): `create`,
    /// `update`, `patch` or `delete`.
    pub fn name(&self) -> &'static str {
        match self {
            Interaction::Create { .. } => "create",
            Interaction::Update { .. } => "update",
            Interaction::Patch { .. } => "patch",
            Interaction::Delete { .. } => "delete",
        }
    }

    /// The interaction as a transaction entry outside any Bundle.
    pub(super) fn into_entry(self) -> Entry {
        let mut patch = None;
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
            Interaction::Patch {
                target,
                patch: document,
                if_match,
            } => {
                patch = Some(document);
                (Method::Patch, target.into(), None, if_match, None)
            }
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
            patch,
            if_match,
            if_none_exist,
        }
    }
}

/// The entries of a posted Bundle, and whether it is a `transaction` (else a `batch`).
pub(super) fn bundle_entries(bundle: &Map<String, Value>) -> FhirResult<(bool, Vec<Value>)> {
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
    Ok((is_transaction, raw_entries))
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

pub(super) fn parse_entry(index: usize, entry: Value, base: &str) -> FhirResult<Entry> {
    let Value::Object(mut entry) = entry else {
        return Err(entry_error(index, "a Bundle entry must be an object"));
    };
    let request = match entry.get("request") {
        Some(Value::Object(request)) => request.clone(),
        _ => return Err(entry_error(index, "the entry has no request")),
    };
    let method = parse_method(index, &request)?;
    let target = parse_entry_target(index, method, &request, base)?;
    let if_match = parse_if_match(index, &request)?;
    let full_url = entry
        .get("fullUrl")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (resource, patch) = if method == Method::Patch {
        (None, Some(entry_patch(index, entry.remove("resource"))?))
    } else {
        (
            entry_resource(index, method, &target, entry.remove("resource"))?,
            None,
        )
    };
    let if_none_exist = parse_if_none_exist(index, method, &target, &request)?;
    Ok(Entry {
        index,
        in_bundle: true,
        full_url,
        method,
        target,
        resource,
        patch,
        if_match,
        if_none_exist,
    })
}

fn parse_method(index: usize, request: &Map<String, Value>) -> FhirResult<Method> {
    match request.get("method").and_then(Value::as_str) {
        Some("GET") | Some("HEAD") => Ok(Method::Get),
        Some("POST") => Ok(Method::Post),
        Some("PUT") => Ok(Method::Put),
        Some("PATCH") => Ok(Method::Patch),
        Some("DELETE") => Ok(Method::Delete),
        Some(other) => Err(FhirError::not_supported(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("request.method {other:?} is not supported in a Bundle"),
        )
        .expression_at(format!("Bundle.entry[{index}].request.method"))),
        None => Err(entry_error(index, "the entry's request has no method")),
    }
}

/// `request.url` as a target the method can take.
fn parse_entry_target(
    index: usize,
    method: Method,
    request: &Map<String, Value>,
    base: &str,
) -> FhirResult<Target> {
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
        (Method::Delete, Target::Type(_) | Target::Version(..)) => Err(entry_error(
            index,
            "DELETE entries take the url [type]/[id] or [type]?[criteria]",
        )),
        (Method::Patch, Target::Type(_) | Target::Version(..)) => Err(entry_error(
            index,
            "PATCH entries take the url [type]/[id] or [type]?[criteria]",
        )),
        (Method::Post | Method::Put, Target::Version(..)) => {
            Err(entry_error(index, "a version url can only be read"))
        }
        _ => Ok(target),
    }
}

fn parse_if_match(index: usize, request: &Map<String, Value>) -> FhirResult<Option<i64>> {
    match request.get("ifMatch").and_then(Value::as_str) {
        Some(tag) => Ok(Some(parse_etag(tag).ok_or_else(|| {
            entry_error(
                index,
                format!("ifMatch {tag:?} is not an ETag like W/\"3\""),
            )
        })?)),
        None => Ok(None),
    }
}

/// The entry's resource, checked against what its method and target expect.
fn entry_resource(
    index: usize,
    method: Method,
    target: &Target,
    resource: Option<Value>,
) -> FhirResult<Option<Map<String, Value>>> {
    let resource = match resource {
        Some(Value::Object(resource)) => Some(resource),
        Some(_) => {
            return Err(entry_error(
                index,
                "entry.resource must be a resource object",
            ));
        }
        None => None,
    };
    match (method, target, resource) {
        (Method::Post, Target::Type(resource_type), Some(resource)) => Ok(Some(prepare_in_entry(
            index,
            resource,
            Expect::Create { resource_type },
        )?)),
        (Method::Put, Target::Instance(resource_type, id), Some(resource)) => Ok(Some(
            prepare_in_entry(index, resource, Expect::Update { resource_type, id })?,
        )),
        (Method::Put, Target::Conditional(condition), Some(resource)) => {
            Ok(Some(prepare_in_entry(
                index,
                resource,
                Expect::Create {
                    resource_type: &condition.resource_type,
                },
            )?))
        }
        (Method::Post | Method::Put, _, None) => {
            Err(entry_error(index, "a POST or PUT entry needs a resource"))
        }
        (Method::Post, _, Some(_)) => Err(entry_error(index, "POST entries take the url [type]")),
        (Method::Put, _, Some(_)) => Err(entry_error(
            index,
            "PUT entries take the url [type]/[id] or [type]?[criteria]",
        )),
        (_, _, _) => Ok(None),
    }
}

/// The patch of a PATCH entry: its resource is a `Binary` (JSON Patch) or a `Parameters`
/// resource (FHIRPath Patch).
fn entry_patch(index: usize, resource: Option<Value>) -> FhirResult<PatchDocument> {
    let Some(Value::Object(resource)) = resource else {
        return Err(entry_error(
            index,
            "a PATCH entry needs a resource: a Binary (JSON Patch) or Parameters (FHIRPath Patch)",
        ));
    };
    PatchDocument::from_entry_resource(&resource).map_err(|mut error| {
        for issue in &mut error.issues {
            issue.expression = Some(match issue.expression.take() {
                Some(path) => format!("Bundle.entry[{index}].resource.{path}"),
                None => format!("Bundle.entry[{index}].resource"),
            });
        }
        error
    })
}

fn parse_if_none_exist(
    index: usize,
    method: Method,
    target: &Target,
    request: &Map<String, Value>,
) -> FhirResult<Option<Condition>> {
    match (
        method,
        target,
        request.get("ifNoneExist").and_then(Value::as_str),
    ) {
        (Method::Post, Target::Type(resource_type), Some(query)) => Ok(Some(
            Condition::parse(resource_type, query.trim_start_matches('?')).map_err(|error| {
                error.expression_at(format!("Bundle.entry[{index}].request.ifNoneExist"))
            })?,
        )),
        _ => Ok(None),
    }
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
pub(super) fn check_no_duplicate_targets(entries: &[Entry]) -> FhirResult<()> {
    let mut seen = HashSet::new();
    for entry in entries {
        if let (Method::Put | Method::Patch | Method::Delete, Target::Instance(resource_type, id)) =
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
