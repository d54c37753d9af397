//! Reading for a caller: read, vread, the Patient of `$everything`, the Group of a Group
//! export, a read in a Bundle and the target of instance history go through [`read`];
//! history pages through [`history`]. Each applies the caller's access.

use std::borrow::Cow;

use crate::access::check as access;
use crate::access::reach::Access;
use crate::access::scope::Permission;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::store::{HistoryEntry, HistoryQuery, HistoryScope, Store, StoredResource};

/// A resource to read: its current version, or one version.
#[derive(Debug, Clone, Copy)]
pub struct ReadTarget<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    pub version: Option<i64>,
}

/// What a read found, for the caller.
#[derive(Debug)]
pub enum Found {
    /// A live resource (or version) within the caller's reach.
    Live(StoredResource),
    /// 410: deleted (or a deleted version). Not checked against the caller's reach.
    Deleted(FhirError),
    /// 404: no such resource or version.
    Missing(FhirError),
    /// The caller may not read it: 401 without a token, 403 when the token's scopes do not
    /// allow reading the type (asked before the lookup, so a refusal says nothing about
    /// whether the resource exists) or the resource is outside its reach.
    Refused(FhirError),
}

impl Found {
    /// The live resource, or the error that says why there is none.
    pub fn live(self) -> FhirResult<StoredResource> {
        match self {
            Found::Live(stored) => Ok(stored),
            Found::Deleted(error) | Found::Missing(error) | Found::Refused(error) => Err(error),
        }
    }
}

/// The one read check: the caller's scopes must allow reading the type, the resource (or
/// version) must exist, and a live one must be within the caller's reach. The error is a
/// failure of the store; everything the caller is told is in [`Found`].
pub async fn read(
    store: &Store,
    base: &str,
    caller: &Access,
    target: &ReadTarget<'_>,
) -> FhirResult<Found> {
    let ReadTarget {
        resource_type,
        id,
        version,
    } = *target;
    if let Err(error) = access::may(caller, resource_type, Permission::Read, false) {
        return Ok(Found::Refused(error));
    }
    let found = match version {
        None => store.read(resource_type, id).await?,
        Some(version_id) => store.vread(resource_type, id, version_id).await?,
    };
    let Some(stored) = found else {
        let error = match version {
            None => FhirError::not_found(format!("{resource_type}/{id} is not known")),
            Some(version_id) => {
                FhirError::not_found(format!("{resource_type}/{id} has no version {version_id}"))
            }
        };
        return Ok(Found::Missing(error));
    };
    if stored.deleted {
        return Ok(Found::Deleted(FhirError::gone(format!(
            "{resource_type}/{id} was deleted (version {})",
            stored.version_id
        ))));
    }
    Ok(
        match access::require(store, base, caller, Permission::Read, &stored).await {
            Ok(()) => Found::Live(stored),
            Err(error) => Found::Refused(error),
        },
    )
}

/// One page of history, newest first.
#[derive(Debug)]
pub struct HistoryPage {
    /// The versions the caller may read (fewer than asked for when some were not).
    pub entries: Vec<HistoryEntry>,
    /// Where the next page continues (`HistoryQuery::before_seq`), when there is one.
    pub next_seq: Option<i64>,
}

/// A page of at most `query.limit` versions. The caller's scopes must allow reading the
/// type (instance and type history) and a live instance must be within their reach;
/// versions out of reach are left out (paging goes on from the last version looked at).
pub async fn history(
    store: &Store,
    base: &str,
    caller: &Access,
    query: &HistoryQuery,
) -> FhirResult<HistoryPage> {
    match &query.scope {
        HistoryScope::System => {}
        HistoryScope::Type(resource_type) => {
            access::may(caller, resource_type, Permission::Read, false)?;
        }
        HistoryScope::Instance(resource_type, id) => {
            let target = ReadTarget {
                resource_type,
                id,
                version: None,
            };
            match read(store, base, caller, &target).await? {
                // The history of a deleted resource is still there to read.
                Found::Deleted(_) => {}
                found => {
                    found.live()?;
                }
            }
        }
    }
    // One extra row tells whether a next page exists.
    let mut entries = store
        .history(&HistoryQuery {
            limit: query.limit + 1,
            ..query.clone()
        })
        .await?;
    let has_next = entries.len() as i64 > query.limit;
    entries.truncate(query.limit as usize);
    let next_seq = entries.last().map(|last| last.seq).filter(|_| has_next);
    let entries = access::retain_readable(store, base, caller, entries, as_version).await?;
    Ok(HistoryPage { entries, next_seq })
}

/// A history entry as the version it records.
fn as_version(entry: &HistoryEntry) -> Cow<'_, StoredResource> {
    Cow::Owned(StoredResource {
        resource_type: entry.resource_type.clone(),
        id: entry.id.clone(),
        version_id: entry.version_id,
        last_updated: entry.last_updated,
        deleted: entry.deleted,
        body: entry.body.clone(),
        patient: None,
    })
}
