//! Planning a transaction inside its database transaction: the identity every entry writes
//! to (assigned ids, conditional matches), then references between entries and conditional
//! references rewritten to those identities.

use std::collections::HashMap;

use serde_json::Value;

use super::apply::write_entries;
use super::entry::{Entry, Method, Target};
use super::response::EntryResult;
use crate::access::reach::Access;
use crate::engine::conditional::{Condition, for_each_reference};
use crate::engine::write::WriteOutcome;
use crate::fhir::id::{is_valid_id, new_id};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::store::{Store, Tx};

/// What planning decided for one entry.
#[derive(Default)]
struct Planned {
    /// The resource the entry writes to, or (a conditional create that found its match)
    /// points at.
    identity: Option<(String, String)>,
    /// The entry's outcome when it needs no write.
    settled: Option<EntryResult>,
}

impl Planned {
    fn write(resource_type: &str, id: String) -> Self {
        Planned {
            identity: Some((resource_type.to_string(), id)),
            settled: None,
        }
    }
}

/// Plans every entry inside `tx` and writes them; `None` means a lost race (roll back and
/// retry).
pub(super) async fn plan_and_apply(
    store: &Store,
    tx: &mut Tx,
    mut entries: Vec<Entry>,
    base: &str,
    access: &Access,
) -> FhirResult<Option<Vec<EntryResult>>> {
    // 1. Decide the identity every entry writes to, and map fullUrls to it.
    let mut results = Vec::with_capacity(entries.len());
    let mut identities = Vec::with_capacity(entries.len());
    let mut aliases: HashMap<String, String> = HashMap::new();
    for entry in &entries {
        let planned = identify(store, entry, base, access).await?;
        if let (Some(full_url), Some((resource_type, id))) = (&entry.full_url, &planned.identity) {
            aliases.insert(full_url.clone(), format!("{resource_type}/{id}"));
        }
        identities.push(planned.identity);
        results.push(planned.settled);
    }
    check_patched_alone(&entries, &identities, &results)?;
    // 2. Rewrite references to other entries and conditional references.
    let mut resolved: HashMap<String, String> = HashMap::new();
    for entry in &mut entries {
        rewrite_references(store, entry, &aliases, &mut resolved, base, access).await?;
    }
    // 3. Write everything at once.
    if !write_entries(store, tx, entries, &identities, &mut results, base, access).await? {
        return Ok(None);
    }
    Ok(Some(
        results
            .into_iter()
            .map(|result| result.unwrap_or(EntryResult::Read(Vec::new(), 0, 0)))
            .collect(),
    ))
}

/// A patch is computed from the version it finds, so no other entry of the transaction may
/// write the resource it patches (a conditional URL may name it as well as an id).
fn check_patched_alone(
    entries: &[Entry],
    identities: &[Option<(String, String)>],
    results: &[Option<EntryResult>],
) -> FhirResult<()> {
    for (slot, entry) in entries.iter().enumerate() {
        let (Method::Patch, Some(identity)) = (entry.method, &identities[slot]) else {
            continue;
        };
        let shared = identities
            .iter()
            .enumerate()
            .any(|(other, other_identity)| {
                other != slot
                    && results[other].is_none()
                    && other_identity.as_ref() == Some(identity)
            });
        if shared {
            let (resource_type, id) = identity;
            return Err(entry.locate(
                FhirError::bad_request(format!(
                    "{resource_type}/{id} is patched by one entry and written by another in the same transaction"
                )),
                "",
            ));
        }
    }
    Ok(())
}

/// The identity one entry writes to; reads and searches have none.
async fn identify(
    store: &Store,
    entry: &Entry,
    base: &str,
    access: &Access,
) -> FhirResult<Planned> {
    match (&entry.method, &entry.target) {
        (Method::Post, Target::Type(resource_type)) => {
            identify_create(store, entry, resource_type, base, access).await
        }
        (Method::Put | Method::Patch | Method::Delete, Target::Instance(resource_type, id)) => {
            Ok(Planned::write(resource_type, id.clone()))
        }
        (Method::Put | Method::Patch | Method::Delete, Target::Conditional(condition)) => {
            identify_conditional(store, entry, condition, base, access).await
        }
        _ => Ok(Planned::default()),
    }
}

/// A create gets a new id, unless its `ifNoneExist` finds the resource already there.
async fn identify_create(
    store: &Store,
    entry: &Entry,
    resource_type: &str,
    base: &str,
    access: &Access,
) -> FhirResult<Planned> {
    let existing = match &entry.if_none_exist {
        Some(condition) => {
            let ids = condition.matches(store, base, access).await?;
            if ids.len() > 1 {
                return Err(entry.locate(
                    FhirError::precondition_failed("ifNoneExist matches more than one resource"),
                    ".request.ifNoneExist",
                ));
            }
            ids.into_iter().next()
        }
        None => None,
    };
    Ok(match existing {
        Some(id) => Planned {
            settled: Some(EntryResult::Existing {
                resource_type: resource_type.to_string(),
                id: id.clone(),
            }),
            identity: Some((resource_type.to_string(), id)),
        },
        None => Planned::write(resource_type, new_id()),
    })
}

/// A conditional update, patch or delete writes to its one match; with no match an update
/// creates (with the resource's own id when it has a valid one), a delete does nothing and
/// a patch is a 404.
async fn identify_conditional(
    store: &Store,
    entry: &Entry,
    condition: &Condition,
    base: &str,
    access: &Access,
) -> FhirResult<Planned> {
    let ids = condition.matches(store, base, access).await?;
    match ids.as_slice() {
        [id] => Ok(Planned::write(&condition.resource_type, id.clone())),
        [] if entry.method == Method::Delete => Ok(Planned {
            identity: None,
            settled: Some(EntryResult::Written(WriteOutcome {
                resource_type: condition.resource_type.clone(),
                id: String::new(),
                version_id: 0,
                last_updated: 0,
                created: false,
                body: None,
                unchanged: true,
                patient: None,
            })),
        }),
        [] if entry.method == Method::Patch => Err(entry.locate(
            FhirError::not_found(format!(
                "the conditional patch matches no {} resource",
                condition.resource_type
            )),
            ".request.url",
        )),
        [] => {
            let id = entry
                .resource
                .as_ref()
                .and_then(|resource| resource.get("id"))
                .and_then(Value::as_str)
                .filter(|id| is_valid_id(id))
                .map_or_else(new_id, str::to_string);
            Ok(Planned::write(&condition.resource_type, id))
        }
        _ => {
            let error = FhirError::precondition_failed(format!(
                "the conditional {} matches more than one resource",
                match entry.method {
                    Method::Put => "update",
                    Method::Patch => "patch",
                    _ => "delete",
                }
            ));
            Err(entry.locate(error, ".request.url"))
        }
    }
}

/// Points the entry's references at the identities planned for other entries (by
/// `fullUrl`), makes absolute references to this server relative, and resolves conditional
/// references (`resolved` remembers them across entries).
async fn rewrite_references(
    store: &Store,
    entry: &mut Entry,
    aliases: &HashMap<String, String>,
    resolved: &mut HashMap<String, String>,
    base: &str,
    access: &Access,
) -> FhirResult<()> {
    let mut resource = entry.resource.take().map(Value::Object);
    let mut patch = entry.patch.take();
    let mut values: Vec<&mut Value> = resource.iter_mut().collect();
    if let Some(patch) = &mut patch {
        values.extend(patch.values_mut());
    }
    let mut conditionals: Vec<String> = Vec::new();
    for value in &mut values {
        // A patch may set a reference string by itself (`/subject/reference`).
        if let Value::String(text) = &mut **value
            && let Some(target) = aliases.get(text.as_str())
        {
            *text = target.clone();
        }
        for_each_reference(value, &mut |reference| {
            if let Some(target) = aliases.get(reference.as_str()) {
                *reference = target.clone();
            } else if let Some(relative) = reference.strip_prefix(base) {
                *reference = relative.trim_start_matches('/').to_string();
            } else if reference.contains('?') && !conditionals.contains(reference) {
                conditionals.push(reference.clone());
            }
        });
    }
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
    for value in &mut values {
        for_each_reference(value, &mut |reference| {
            if let Some(target) = resolved.get(reference.as_str()) {
                *reference = target.clone();
            }
        });
    }
    entry.patch = patch;
    if let Some(Value::Object(resource)) = resource {
        entry.resource = Some(resource);
    }
    Ok(())
}
