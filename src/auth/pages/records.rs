//! The few FHIR reads the pages need (patients, encounters and practitioners to choose
//! from), through the search engine and store reads. The developer portal's launch
//! simulator uses them too.

use serde_json::Value;

use crate::access::reach::Access;
use crate::engine::search::{SearchRequest, matches};
use crate::state::AppState;
use crate::store::Store;
use crate::web::error::{PageError, PageResult};
use crate::web::html::Choice;

/// How many patients or encounters a list shows.
const LIST_SIZE: &str = "25";

/// Patients whose name matches `name` (every patient when empty).
pub async fn find_patients(state: &AppState, name: &str) -> PageResult<Vec<Choice>> {
    let mut params = vec![("_count".to_string(), LIST_SIZE.to_string())];
    if !name.trim().is_empty() {
        params.push(("name".into(), name.trim().into()));
    }
    search(state, "Patient", &params).await.map(|found| {
        found
            .iter()
            .filter_map(|patient| Some(patient_choice(patient["id"].as_str()?, patient)))
            .collect()
    })
}

/// Practitioners whose name matches `name` (every practitioner when empty).
pub async fn find_practitioners(state: &AppState, name: &str) -> PageResult<Vec<Choice>> {
    let mut params = vec![("_count".to_string(), LIST_SIZE.to_string())];
    if !name.trim().is_empty() {
        params.push(("name".into(), name.trim().into()));
    }
    search(state, "Practitioner", &params).await.map(|found| {
        found
            .iter()
            .filter_map(|practitioner| {
                Some(practitioner_choice(
                    practitioner["id"].as_str()?,
                    practitioner,
                ))
            })
            .collect()
    })
}

/// The encounters of one patient, the latest first (by `date`, as the search sorts it).
pub async fn encounters(state: &AppState, patient_id: &str) -> PageResult<Vec<Choice>> {
    let params = [
        ("patient".to_string(), format!("Patient/{patient_id}")),
        ("_sort".to_string(), "-date".to_string()),
        ("_count".to_string(), LIST_SIZE.to_string()),
    ];
    search(state, "Encounter", &params).await.map(|found| {
        found
            .iter()
            .filter_map(|encounter| {
                Some(Choice {
                    id: encounter["id"].as_str()?.to_string(),
                    label: encounter_label(encounter),
                })
            })
            .collect()
    })
}

/// The id of the patient's most recent Encounter (by its period), if any.
pub async fn latest_encounter(state: &AppState, patient_id: &str) -> PageResult<Option<String>> {
    let params = [
        ("patient".to_string(), format!("Patient/{patient_id}")),
        ("_sort".to_string(), "-date".to_string()),
        ("_count".to_string(), "1".to_string()),
    ];
    let found = search(state, "Encounter", &params).await?;
    Ok(found
        .first()
        .and_then(|encounter| encounter["id"].as_str())
        .map(str::to_string))
}

/// A live Patient, as a choice.
pub async fn patient(store: &Store, id: &str) -> PageResult<Option<Choice>> {
    Ok(live(store, "Patient", id)
        .await?
        .map(|patient| patient_choice(id, &patient)))
}

/// A live Practitioner, as a choice.
pub async fn practitioner(store: &Store, id: &str) -> PageResult<Option<Choice>> {
    Ok(live(store, "Practitioner", id)
        .await?
        .map(|practitioner| practitioner_choice(id, &practitioner)))
}

/// Whether `encounter_id` is a live Encounter of patient `patient_id`.
pub async fn is_encounter_of(
    store: &Store,
    encounter_id: &str,
    patient_id: &str,
) -> PageResult<bool> {
    let expected = format!("Patient/{patient_id}");
    Ok(live(store, "Encounter", encounter_id)
        .await?
        .is_some_and(|encounter| encounter["subject"]["reference"] == expected.as_str()))
}

async fn live(store: &Store, resource_type: &str, id: &str) -> PageResult<Option<Value>> {
    if !crate::fhir::id::is_valid_id(id) {
        return Ok(None);
    }
    let stored = store.read(resource_type, id).await?;
    Ok(stored
        .filter(|stored| !stored.deleted)
        .and_then(|stored| serde_json::from_slice(&stored.body).ok()))
}

async fn search(
    state: &AppState,
    resource_type: &str,
    params: &[(String, String)],
) -> PageResult<Vec<Value>> {
    let base = state.config.fhir_base();
    let found = matches(
        &state.store,
        &SearchRequest {
            resource_type: Some(resource_type),
            params,
            patient_compartment: None,
            strict: false,
            limits: state.page_limits(),
            base: &base,
            link: None,
            // Kiln's own pages, shown to practitioners only: not limited by an app's token.
            access: &Access::Full,
        },
    )
    .await
    .map_err(PageError::internal)?;
    Ok(found
        .into_iter()
        .filter(|resource| resource["resourceType"] == resource_type)
        .collect())
}

fn patient_choice(id: &str, patient: &Value) -> Choice {
    let mut label = crate::fhir::name::display(patient).unwrap_or_else(|| "(no name)".into());
    if let Some(born) = patient["birthDate"].as_str() {
        label.push_str(&format!(", born {born}"));
    }
    Choice {
        id: id.to_string(),
        label: format!("{label} (Patient/{id})"),
    }
}

fn practitioner_choice(id: &str, practitioner: &Value) -> Choice {
    let name = crate::fhir::name::display(practitioner).unwrap_or_else(|| "(no name)".into());
    Choice {
        id: id.to_string(),
        label: format!("{name} (Practitioner/{id})"),
    }
}

fn encounter_label(encounter: &Value) -> String {
    let kind = encounter["type"][0]["text"]
        .as_str()
        .or_else(|| encounter["type"][0]["coding"][0]["display"].as_str())
        .or_else(|| encounter["class"]["code"].as_str())
        .unwrap_or("Encounter");
    let start = encounter["period"]["start"].as_str().unwrap_or("");
    let id = encounter["id"].as_str().unwrap_or("");
    format!("{kind} {start} (Encounter/{id})").replace("  ", " ")
}
