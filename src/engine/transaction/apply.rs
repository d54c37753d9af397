//! Applying a planned transaction: every write checked against the caller's reach, then
//! written together.

use serde_json::Value;

use super::entry::{Entry, Method};
use super::response::EntryResult;
use crate::access::check as access;
use crate::access::reach::Access;
use crate::access::scope::Permission;
use crate::engine::write::{Applied, WriteAction, WriteRequest, apply};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::store::{Store, Tx};

/// Writes every entry that has an identity and no outcome yet in `tx`, and records the
/// outcomes in `results`; `false` means a lost race (roll back and retry).
pub(super) async fn write_entries(
    store: &Store,
    tx: &mut Tx,
    entries: Vec<Entry>,
    identities: &[Option<(String, String)>],
    results: &mut [Option<EntryResult>],
    base: &str,
    access: &Access,
) -> FhirResult<bool> {
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
            (Method::Patch, _) => patch_current(store, base, access, &entry, &resource_type, &id)
                .await
                .map_err(|error| entry.locate(error, ""))?,
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
        Applied::Conflict => return Ok(false),
    };
    for (slot, outcome) in request_slots.into_iter().zip(outcomes) {
        results[slot] = Some(EntryResult::Written(outcome));
    }
    Ok(true)
}

/// The entry's patch applied to the current version of `resource_type`/`id`: a 404 when
/// there is none, 410 when it is deleted, 412 when `If-Match` names another version, and the
/// caller must reach the resource before the patch is tried on it.
async fn patch_current(
    store: &Store,
    base: &str,
    caller: &Access,
    entry: &Entry,
    resource_type: &str,
    id: &str,
) -> FhirResult<WriteAction> {
    let Some(patch) = &entry.patch else {
        return Err(FhirError::internal(
            "patching",
            "a PATCH entry without a patch",
        ));
    };
    let stored = match store.read(resource_type, id).await? {
        None => {
            return Err(FhirError::not_found(format!(
                "{resource_type}/{id} is not known"
            )));
        }
        Some(stored) if stored.deleted => {
            return Err(FhirError::gone(format!(
                "{resource_type}/{id} was deleted (version {})",
                stored.version_id
            )));
        }
        Some(stored) => stored,
    };
    if let Some(expected) = entry.if_match
        && expected != stored.version_id
    {
        return Err(FhirError::precondition_failed(format!(
            "If-Match expected version {expected} of {resource_type}/{id}, but the current version is {}",
            stored.version_id
        )));
    }
    if !caller.is_full() {
        access::require(store, base, caller, Permission::Update, &stored).await?;
    }
    Ok(WriteAction::Patch {
        resource: patch.apply_to(resource_type, id, &stored.body)?,
        base_version: stored.version_id,
    })
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
        WriteAction::Put(body) | WriteAction::Patch { resource: body, .. } => {
            (Permission::Update, Some(body))
        }
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
