//! The Patients a Patient- or Group-level export covers: those named by `patient`, or the
//! members of a Group.

use std::collections::VecDeque;

use serde_json::Value;

use super::params::ExportParams;
use crate::access::reach::Access;
use crate::config::ServeConfig;
use crate::engine::read::{Found, ReadTarget, read};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::state::AppState;
use crate::store::Store;

/// Groups nested deeper than this are not followed (a guard, not a limit real rosters meet).
const MAX_GROUPS: usize = 1_000;

/// The Patients of the Group (those named by `patient` among them, when given): active
/// members, and the members of Groups that are members, however deep.
pub async fn group_members(
    state: &AppState,
    caller: &Access,
    id: &str,
    params: &ExportParams,
) -> FhirResult<Vec<String>> {
    let mut members: Vec<String> = Vec::new();
    let mut seen: Vec<String> = vec![id.to_owned()];
    let mut pending: VecDeque<String> = VecDeque::from([id.to_owned()]);
    while let Some(group_id) = pending.pop_front() {
        let Some(group) = readable_group(state, caller, &group_id).await? else {
            if group_id == id {
                return Err(FhirError::not_found(format!("Group/{id} is not known")));
            }
            continue;
        };
        for reference in active_members(&state.config, &group) {
            if let Some(patient) = reference.strip_prefix("Patient/") {
                if !members.iter().any(|m| m == patient) {
                    members.push(patient.to_owned());
                }
            } else if let Some(nested) = reference.strip_prefix("Group/")
                && !seen.iter().any(|g| g == nested)
                && seen.len() < MAX_GROUPS
            {
                seen.push(nested.to_owned());
                pending.push_back(nested.to_owned());
            }
        }
    }
    if let Some(wanted) = &params.patients {
        if let Some(outsider) = wanted.iter().find(|w| !members.contains(w)) {
            return Err(FhirError::bad_request(format!(
                "Patient/{outsider} is not a member of Group/{id}"
            ))
            .expression_at("patient"));
        }
        members.retain(|m| wanted.contains(m));
    }
    Ok(members)
}

/// A live Group the caller may read (`None` when there is none).
async fn readable_group(state: &AppState, caller: &Access, id: &str) -> FhirResult<Option<Value>> {
    let group = ReadTarget {
        resource_type: "Group",
        id,
        version: None,
    };
    let base = state.config.fhir_base();
    match read(&state.store, &base, caller, &group).await? {
        Found::Live(stored) => Ok(Some(
            serde_json::from_slice(&stored.body).unwrap_or(Value::Null),
        )),
        Found::Refused(error) => Err(error),
        Found::Deleted(_) | Found::Missing(_) => Ok(None),
    }
}

/// The local `Type/id` references of the Group's members not marked inactive.
fn active_members(config: &ServeConfig, group: &Value) -> Vec<String> {
    let local = format!("{}/", config.fhir_base());
    group["member"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|member| member["inactive"] != Value::Bool(true))
        .filter_map(|member| member["entity"]["reference"].as_str())
        .map(|reference| {
            reference
                .strip_prefix(&local)
                .unwrap_or(reference)
                .to_owned()
        })
        .collect()
}

/// The Patients named by `patient`, each of which must exist.
pub async fn known_patients(store: &Store, patients: &[String]) -> FhirResult<Vec<String>> {
    for id in patients {
        let live = store
            .read("Patient", id)
            .await?
            .is_some_and(|stored| !stored.deleted);
        if !live {
            return Err(FhirError::bad_request(format!("Patient/{id} is not known"))
                .expression_at("patient"));
        }
    }
    Ok(patients.to_vec())
}
