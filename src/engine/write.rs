//! Planning versioned writes against the current state and applying them in a transaction.

use serde_json::{Map, Value};

use super::index::index_rows;
use crate::fhir::instant::now_micros;
use crate::fhir::meta::stamp;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::store::{Current, IndexRows, Store, Tx, VersionWrite, WriteStatus};

/// How often a write that lost a race with a concurrent writer is retried.
pub(super) const MAX_ATTEMPTS: usize = 8;

/// One resource-level change.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub resource_type: String,
    pub id: String,
    pub action: WriteAction,
    /// `If-Match`: the version the client expects to replace.
    pub if_match: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum WriteAction {
    /// POST with a server-assigned id (the id is new, so this never replaces anything).
    Create(Map<String, Value>),
    /// PUT: update, or create with the client's id.
    Put(Map<String, Value>),
    /// PATCH: `resource` is the patch applied to version `base_version`; if that is no
    /// longer the current version, the write lost a race and is planned again.
    Patch {
        resource: Map<String, Value>,
        base_version: i64,
    },
    Delete,
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: i64,
    /// True when the resource did not exist (or was deleted) before.
    pub created: bool,
    /// The stored bytes (None for a delete).
    pub body: Option<Vec<u8>>,
    /// A delete of a resource that did not exist or was already deleted: nothing was written.
    pub unchanged: bool,
    /// The Patient whose compartment the resource is in, when it is in exactly one (the
    /// audit log's patient).
    pub patient: Option<String>,
}

/// Either the outcomes, or a lost race that calls for a fresh attempt.
pub enum Applied {
    Done(Vec<WriteOutcome>),
    Conflict,
}

/// Plans `requests` against the current versions and writes them in `tx` (not committed).
pub async fn apply(tx: &mut Tx, requests: Vec<WriteRequest>) -> FhirResult<Applied> {
    let keys: Vec<(&str, &str)> = requests
        .iter()
        .map(|request| (request.resource_type.as_str(), request.id.as_str()))
        .collect();
    let mut current = tx.current(&keys).await?;
    let now = now_micros();
    let mut writes = Vec::with_capacity(requests.len());
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        let key = (request.resource_type.clone(), request.id.clone());
        let previous = current.get(&key).copied();
        check_if_match(&request, previous)?;
        let previous_version = previous.map_or(0, |current| current.version_id);
        let was_live = previous.is_some_and(|current| !current.deleted);
        let version_id = previous_version + 1;
        // A resource's versions never go back in time, even if the clock does.
        let last_updated = previous.map_or(now, |current| now.max(current.last_updated + 1));
        let (deleted, method, body, index, patient) = match request.action {
            WriteAction::Delete if !was_live => {
                let patient = (request.resource_type == "Patient").then(|| request.id.clone());
                outcomes.push(WriteOutcome {
                    resource_type: request.resource_type,
                    id: request.id,
                    version_id: previous_version,
                    last_updated: previous.map_or(0, |current| current.last_updated),
                    created: false,
                    body: None,
                    unchanged: true,
                    patient,
                });
                continue;
            }
            WriteAction::Delete => (
                true,
                "DELETE",
                Vec::new(),
                IndexRows::default(),
                deleted_patient(tx, &request.resource_type, &request.id).await?,
            ),
            WriteAction::Create(resource) => {
                let stamped = stamp(resource, &request.id, version_id, last_updated);
                let patient = only_patient(&stamped);
                (
                    false,
                    "POST",
                    serialize(&stamped),
                    index_rows(&stamped),
                    patient,
                )
            }
            WriteAction::Put(resource) => {
                let stamped = stamp(resource, &request.id, version_id, last_updated);
                let patient = only_patient(&stamped);
                (
                    false,
                    "PUT",
                    serialize(&stamped),
                    index_rows(&stamped),
                    patient,
                )
            }
            WriteAction::Patch { base_version, .. } if base_version != previous_version => {
                return Ok(Applied::Conflict);
            }
            WriteAction::Patch { resource, .. } => {
                let stamped = stamp(resource, &request.id, version_id, last_updated);
                let patient = only_patient(&stamped);
                (
                    false,
                    "PATCH",
                    serialize(&stamped),
                    index_rows(&stamped),
                    patient,
                )
            }
        };
        current.insert(
            key,
            Current {
                version_id,
                deleted,
                last_updated,
            },
        );
        outcomes.push(WriteOutcome {
            resource_type: request.resource_type.clone(),
            id: request.id.clone(),
            version_id,
            last_updated,
            created: !was_live && !deleted,
            body: (!deleted).then(|| body.clone()),
            unchanged: false,
            patient,
        });
        writes.push(VersionWrite {
            resource_type: request.resource_type,
            id: request.id,
            version_id,
            last_updated,
            deleted,
            method,
            body,
            index,
        });
    }
    match tx.write(&writes).await? {
        WriteStatus::Applied => Ok(Applied::Done(outcomes)),
        WriteStatus::Conflict => Ok(Applied::Conflict),
    }
}

/// The one Patient whose compartment `resource` is in, if exactly one.
fn only_patient(resource: &Value) -> Option<String> {
    let mut patients = crate::search::patient_compartments(resource);
    (patients.len() == 1).then(|| patients.remove(0))
}

/// The patient of a resource being deleted: a Patient itself, or the one Patient whose
/// compartment its current version is in (its index rows, still there before the delete).
async fn deleted_patient(tx: &mut Tx, resource_type: &str, id: &str) -> FhirResult<Option<String>> {
    if resource_type == "Patient" {
        return Ok(Some(id.to_owned()));
    }
    let mut patients = tx.patient_compartments(resource_type, id).await?;
    Ok((patients.len() == 1).then(|| patients.remove(0)))
}

fn serialize(resource: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(resource).unwrap_or_default()
}

fn check_if_match(request: &WriteRequest, previous: Option<Current>) -> FhirResult<()> {
    let Some(expected) = request.if_match else {
        return Ok(());
    };
    match previous {
        Some(current) if current.version_id == expected && !current.deleted => Ok(()),
        Some(current) => Err(FhirError::precondition_failed(format!(
            "If-Match expected version {expected} of {}/{}, but the current version is {}{}",
            request.resource_type,
            request.id,
            current.version_id,
            if current.deleted { " (deleted)" } else { "" }
        ))),
        None => Err(FhirError::precondition_failed(format!(
            "If-Match expected version {expected} of {}/{}, which does not exist",
            request.resource_type, request.id
        ))),
    }
}

/// Runs `attempt` in a fresh database transaction and commits the transaction it hands back;
/// `Ok(None)` from an attempt means it lost a race with a concurrent writer (its transaction
/// rolled back), so it runs again, at most `MAX_ATTEMPTS` times, then a 409 saying `conflict`.
pub async fn retry_races<T, Attempt>(
    store: &Store,
    conflict: &str,
    mut attempt: impl FnMut(Tx) -> Attempt,
) -> FhirResult<T>
where
    Attempt: Future<Output = FhirResult<Option<(Tx, T)>>>,
{
    for _ in 0..MAX_ATTEMPTS {
        if let Some((tx, done)) = attempt(store.begin().await?).await? {
            tx.commit().await?;
            return Ok(done);
        }
    }
    Err(FhirError::conflict(conflict))
}

/// Applies `requests` in one transaction of their own, retrying lost races.
pub async fn write_all(
    store: &Store,
    requests: Vec<WriteRequest>,
) -> FhirResult<Vec<WriteOutcome>> {
    retry_races(
        store,
        "the resource was changed by concurrent writers too often; try again",
        |mut tx| {
            let requests = requests.clone();
            async move {
                Ok(match apply(&mut tx, requests).await? {
                    Applied::Done(outcomes) => Some((tx, outcomes)),
                    Applied::Conflict => None,
                })
            }
        },
    )
    .await
}

/// Applies one request in its own transaction.
pub async fn write_one(store: &Store, request: WriteRequest) -> FhirResult<WriteOutcome> {
    let mut outcomes = write_all(store, vec![request]).await?;
    outcomes
        .pop()
        .ok_or_else(|| FhirError::internal("writing", "no outcome for a write"))
}
