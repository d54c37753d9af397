//! Applying the caller's [`Access`] to what the engine reads and writes: whether a token may
//! do an interaction on a type at all (asked before any target is looked up), a filter for
//! searches, and a yes/no for single resources (reads, includes, history entries, writes).

use std::borrow::Cow;

use serde_json::Value;

use crate::access::reach::{Access, Limit, Reach};
use crate::access::scope::Permission;
use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};
use crate::fhir::validate::resource_types;
use crate::search::patient_owners;
use crate::search::query::{Criterion, parse_search};
use crate::store::{
    AccessFilter, AccessGroup, Cursor, FilterLimit, SearchSpec, Store, StoredResource,
};

/// The search filter of a search of `types` (empty: every type); `None` when the caller
/// sees all. A type the caller may not search is a 403 when asked for by name, and left out
/// of a search over every type. The filter holds every type the caller reaches, not only
/// `types`: the resources a chain or `_has` passes through are limited by it too.
pub fn search_filter(
    access: &Access,
    types: &[&str],
    permission: Permission,
) -> FhirResult<Option<AccessFilter>> {
    if access.is_full() {
        return Ok(None);
    }
    for resource_type in types {
        access.reach(resource_type, permission)?;
    }
    let mut unlimited: Vec<String> = Vec::new();
    let mut limited: Vec<AccessGroup> = Vec::new();
    for resource_type in resource_types() {
        let reach = match access.reach(resource_type, permission) {
            Ok(reach) => reach,
            Err(error) if error.status.as_u16() == 401 => return Err(error),
            Err(_) => continue,
        };
        match reach {
            Reach::All => unlimited.push(resource_type.to_owned()),
            Reach::Some(limits) => {
                let limits: Vec<FilterLimit> = limits.into_iter().map(filter_limit).collect();
                match limited.iter_mut().find(|g| g.limits == limits) {
                    Some(group) => group.types.push(resource_type.to_owned()),
                    None => limited.push(AccessGroup {
                        types: vec![resource_type.to_owned()],
                        limits,
                    }),
                }
            }
        }
    }
    if unlimited.len() == resource_types().len() {
        return Ok(None);
    }
    let mut groups = limited;
    if !unlimited.is_empty() {
        groups.push(AccessGroup {
            types: unlimited,
            limits: Vec::new(),
        });
    }
    Ok(Some(AccessFilter { groups }))
}

/// A limit of the caller's reach as the store's filter states it.
fn filter_limit(limit: Limit) -> FilterLimit {
    FilterLimit {
        patient: limit.patient,
        criteria: limit.criteria,
    }
}

/// Whether the token may do `permission` on `resource_type` at all (any scope of it
/// allows it there), asked before the target of the interaction is looked up so that a
/// refusal tells nothing about which resources exist. A `conditional` interaction runs a
/// search to find its target, so it needs search on the type too.
pub fn may(
    access: &Access,
    resource_type: &str,
    permission: Permission,
    conditional: bool,
) -> FhirResult<()> {
    access.reach(resource_type, permission)?;
    if conditional {
        access.reach(resource_type, Permission::Search)?;
    }
    Ok(())
}

/// Whether the caller may see `stored` with `permission`.
pub async fn admits(
    store: &Store,
    base: &str,
    access: &Access,
    permission: Permission,
    stored: &StoredResource,
) -> FhirResult<bool> {
    if access.is_full() {
        return Ok(true);
    }
    match access.reach(&stored.resource_type, permission) {
        Ok(reach) => within(store, base, &reach, stored).await,
        Err(error) if error.status.as_u16() == 401 => Err(error),
        Err(_) => Ok(false),
    }
}

/// Whether `stored` is within `reach`: without parsing the body when the reach is everything.
async fn within(
    store: &Store,
    base: &str,
    reach: &Reach,
    stored: &StoredResource,
) -> FhirResult<bool> {
    let Reach::Some(limits) = reach else {
        return Ok(true);
    };
    let body: Value = serde_json::from_slice(&stored.body).unwrap_or(Value::Null);
    let owners = patient_owners(&body);
    if reach.admits_owners(&owners) {
        return Ok(true);
    }
    let with_criteria = limits.iter().filter(|limit| {
        !limit.criteria.is_empty() && limit.patient.as_ref().is_none_or(|p| owners.contains(p))
    });
    for limit in with_criteria {
        if matches_criteria(store, base, stored, &limit.criteria).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// [`admits`], or 403.
pub async fn require(
    store: &Store,
    base: &str,
    access: &Access,
    permission: Permission,
    stored: &StoredResource,
) -> FhirResult<()> {
    // The type itself must be allowed: a 403 that names the missing scope.
    let reach = access.reach(&stored.resource_type, permission)?;
    if within(store, base, &reach, stored).await? {
        Ok(())
    } else {
        Err(outside_reach(&stored.resource_type, &stored.id))
    }
}

/// Whether a resource about to be written (not yet in the database) is within reach:
/// granular (search-filtered) scopes cannot vouch for it.
pub fn admits_new(access: &Access, permission: Permission, body: &Value) -> FhirResult<bool> {
    let resource_type = body
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let reach = access.reach(resource_type, permission)?;
    Ok(reach.admits_owners(&patient_owners(body)))
}

pub fn outside_reach(resource_type: &str, id: &str) -> FhirError {
    FhirError::new(
        axum::http::StatusCode::FORBIDDEN,
        IssueCode::Forbidden,
        format!(
            "{resource_type}/{id} is outside what the access token may reach \
             (its patient context or granular scopes)"
        ),
    )
}

/// Drops the items the caller may not read (includes, history entries); `version` gives
/// each item as a stored resource.
pub async fn retain_readable<T>(
    store: &Store,
    base: &str,
    access: &Access,
    items: Vec<T>,
    version: impl Fn(&T) -> Cow<'_, StoredResource>,
) -> FhirResult<Vec<T>> {
    if access.is_full() {
        return Ok(items);
    }
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        let admitted = {
            let stored = version(&item);
            admits(store, base, access, Permission::Read, &stored).await?
        };
        if admitted {
            kept.push(item);
        }
    }
    Ok(kept)
}

/// Whether `stored` meets a granular scope's `criteria` (its patient was checked already).
async fn matches_criteria(
    store: &Store,
    base: &str,
    stored: &StoredResource,
    criteria: &[Criterion],
) -> FhirResult<bool> {
    let params = [("_id".to_owned(), stored.id.clone())];
    let mut query = parse_search(Some(&stored.resource_type), &params)?;
    query.criteria.extend(criteria.iter().cloned());
    let page = store
        .search(&SearchSpec {
            query: &query,
            base,
            count: 1,
            cursor: Cursor::Start,
            patient_compartment: None,
            access: None,
        })
        .await?;
    Ok(!page.matches.is_empty())
}
