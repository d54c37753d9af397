//! Writes made ready before their transaction (import): stamped as version 1, serialized
//! and indexed while no lock is held, then checked against the current versions inside the
//! transaction. A resource that already exists (or appears twice in a batch) is re-stamped
//! there as the next version, as a PUT would, so the result is the same as [`write_all`].
//!
//! [`write_all`]: super::write::write_all

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::index::index_rows;
use super::prepare::parse_json_object;
use super::write::MAX_ATTEMPTS;
use crate::fhir::meta::stamp;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::store::{Current, Store, VersionWrite, WriteStatus};

/// `resource` (valid, with `id` = `id`) as version 1 written at `now`: `method` is the
/// history entry's request method (POST for a server-assigned id, PUT for the client's).
pub fn prepare_new(
    resource_type: String,
    id: String,
    method: &'static str,
    resource: Map<String, Value>,
    now: i64,
) -> VersionWrite {
    let stamped = stamp(resource, &id, 1, now);
    VersionWrite {
        resource_type,
        id,
        version_id: 1,
        last_updated: now,
        deleted: false,
        method,
        body: serde_json::to_vec(&stamped).unwrap_or_default(),
        index: index_rows(&stamped),
    }
}

/// Stores `writes` in one transaction of their own, retrying lost races; returns them as
/// stored (with the versions they got).
pub async fn write_prepared(
    store: &Store,
    mut writes: Vec<VersionWrite>,
) -> FhirResult<Vec<VersionWrite>> {
    for _ in 0..MAX_ATTEMPTS {
        let mut tx = store.begin_bulk().await?;
        let keys: Vec<(&str, &str)> = writes
            .iter()
            .map(|write| (write.resource_type.as_str(), write.id.as_str()))
            .collect();
        let current = tx.current(&keys).await?;
        rebase(&mut writes, current)?;
        if tx.write(&writes).await? == WriteStatus::Applied {
            tx.commit().await?;
            return Ok(writes);
        }
    }
    Err(FhirError::conflict(
        "the resource was changed by concurrent writers too often; try again",
    ))
}

/// Makes each write the successor of the current version of its resource (or of the one
/// before it in `writes`), re-stamping those that are not version 1 of a new resource.
fn rebase(
    writes: &mut [VersionWrite],
    mut current: HashMap<(String, String), Current>,
) -> FhirResult<()> {
    if current.is_empty()
        && writes.iter().all(|write| write.version_id == 1)
        && all_distinct(writes)
    {
        return Ok(());
    }
    let now = crate::fhir::instant::now_micros();
    for write in writes.iter_mut() {
        let key = (write.resource_type.clone(), write.id.clone());
        let previous = current.get(&key).copied();
        let (version_id, last_updated) = match previous {
            Some(previous) => (previous.version_id + 1, now.max(previous.last_updated + 1)),
            None => (1, write.last_updated),
        };
        if (version_id, last_updated) != (write.version_id, write.last_updated) {
            restamp(write, version_id, last_updated)?;
        }
        current.insert(
            key,
            Current {
                version_id,
                deleted: false,
                last_updated,
            },
        );
    }
    Ok(())
}

fn all_distinct(writes: &[VersionWrite]) -> bool {
    let mut seen = HashSet::with_capacity(writes.len());
    writes
        .iter()
        .all(|write| seen.insert((write.resource_type.as_str(), write.id.as_str())))
}

/// Stamps the stored body again as `version_id` at `last_updated`, and indexes it again.
fn restamp(write: &mut VersionWrite, version_id: i64, last_updated: i64) -> FhirResult<()> {
    let resource = parse_json_object(&write.body)
        .map_err(|error| FhirError::internal("re-stamping an import", error.summary()))?;
    let stamped = stamp(resource, &write.id, version_id, last_updated);
    write.version_id = version_id;
    write.last_updated = last_updated;
    write.body = serde_json::to_vec(&stamped).unwrap_or_default();
    write.index = index_rows(&stamped);
    Ok(())
}
