//! The kick-off parameters of `$export`: read from the query string or a POSTed
//! Parameters resource, checked, and kept with the job as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fhir::instant::parse_fhir_datetime;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::fhir::subset::Subset;
use crate::fhir::validate::is_resource_type;
use crate::search::query::parse_search;

/// The output formats of Bulk Data; all mean ndjson.
const OUTPUT_FORMATS: [&str; 3] = ["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// Search result parameters, which the IG rules out of `_typeFilter`: an export has no
/// pages, order, includes or subsets per filter.
const RESULT_CONTROLS: [&str; 9] = [
    "_sort",
    "_include",
    "_revinclude",
    "_count",
    "_elements",
    "_summary",
    "_total",
    "_contained",
    "_containedType",
];

/// What a job exports, as stored with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportParams {
    /// Types named by `_type` (empty: every type the level and scopes allow).
    pub types: Vec<String>,
    /// `_since` and `_until`, in microseconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// `_typeFilter` queries as `(type, query)`.
    pub type_filters: Vec<(String, String)>,
    pub elements: Option<String>,
    /// Patient ids from `patient` (Patient and Group levels).
    pub patients: Option<Vec<String>>,
    /// `includeAssociatedData`: the Provenance of the exported resources.
    pub associated: Option<Associated>,
    /// `organizeOutputBy=Patient`: blocks of one Patient's resources instead of one type per file.
    pub organize_by_patient: bool,
    /// `allowPartialManifests=true`: finished files are handed out while the job runs.
    pub partial_manifests: bool,
    /// Parameters ignored under `Prefer: handling=lenient`, reported in the error file.
    pub ignored: Vec<String>,
}

/// The `includeAssociatedData` values Kiln supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Associated {
    /// `LatestProvenanceResources`: the most recent Provenance of each exported resource.
    LatestProvenance,
    /// `RelevantProvenanceResources`: every Provenance of the exported resources.
    RelevantProvenance,
}

/// Reads the parameters; with `lenient`, unsupported ones are ignored (and noted) instead
/// of refused.
pub fn parse(pairs: &[(String, Value)], lenient: bool) -> FhirResult<ExportParams> {
    let mut params = ExportParams::default();
    for (name, value) in pairs {
        let text = value.as_str().unwrap_or_default();
        match name.as_str() {
            "_outputFormat" => {
                if !OUTPUT_FORMATS.contains(&text) {
                    return Err(invalid(
                        name,
                        format!(
                            "_outputFormat {text:?} is not supported; use application/fhir+ndjson"
                        ),
                    ));
                }
            }
            "_since" | "_until" => {
                let micros = parse_fhir_datetime(text).ok_or_else(|| {
                    invalid(name, format!("{name} {text:?} is not a FHIR instant"))
                })?;
                if name == "_since" {
                    params.since = Some(micros);
                } else {
                    params.until = Some(micros);
                }
            }
            "_type" => {
                for resource_type in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !is_resource_type(resource_type) {
                        return Err(invalid(
                            name,
                            format!("_type names {resource_type:?}, not a FHIR R4 resource type"),
                        ));
                    }
                    if !params.types.iter().any(|t| t == resource_type) {
                        params.types.push(resource_type.to_owned());
                    }
                }
            }
            "_elements" => {
                Subset::from_params(None, Some(text))?;
                params.elements = Some(text.to_owned());
            }
            "_typeFilter" => {
                for filter in split_type_filters(text) {
                    params.type_filters.push(type_filter(&filter)?);
                }
            }
            "patient" => {
                let id = value
                    .get("reference")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("Patient/"))
                    .filter(|id| crate::fhir::id::is_valid_id(id))
                    .ok_or_else(|| {
                        invalid(name, "patient must be a reference to Patient/[id]".into())
                    })?;
                params
                    .patients
                    .get_or_insert_with(Vec::new)
                    .push(id.to_owned());
            }
            "includeAssociatedData" => {
                for code in text.split(',').map(str::trim) {
                    let value = match code {
                        "LatestProvenanceResources" => Associated::LatestProvenance,
                        "RelevantProvenanceResources" => Associated::RelevantProvenance,
                        _ if lenient => {
                            params.ignored.push(format!("{name}={code}"));
                            continue;
                        }
                        _ => {
                            return Err(invalid(
                                name,
                                format!(
                                    "includeAssociatedData {code:?} is not supported; use \
                                     LatestProvenanceResources or RelevantProvenanceResources"
                                ),
                            ));
                        }
                    };
                    // Of conflicting values the least restrictive applies.
                    if params.associated != Some(Associated::RelevantProvenance) {
                        params.associated = Some(value);
                    }
                }
            }
            "organizeOutputBy" => match text {
                "Patient" => params.organize_by_patient = true,
                _ if lenient => params.ignored.push(format!("{name}={text}")),
                _ => {
                    return Err(invalid(
                        name,
                        format!("organizeOutputBy {text:?} is not supported; use Patient"),
                    ));
                }
            },
            "allowPartialManifests" => {
                params.partial_manifests = match (value, text) {
                    (Value::Bool(flag), _) => *flag,
                    (_, "true") => true,
                    (_, "false") => false,
                    _ => {
                        return Err(invalid(
                            name,
                            format!("allowPartialManifests {text:?} is not true or false"),
                        ));
                    }
                }
            }
            "_pretty" | "_format" => {}
            _ if lenient => params.ignored.push(name.clone()),
            _ => {
                return Err(FhirError::bad_request(format!(
                    "the $export parameter {name} is not supported by this server"
                ))
                .expression_at(name.clone()));
            }
        }
    }
    Ok(params)
}

/// `_typeFilter` values, comma-separated: a comma starts a new filter only before `Type?`.
fn split_type_filters(text: &str) -> Vec<String> {
    let mut filters: Vec<String> = Vec::new();
    for part in text.split(',') {
        let starts_filter = part
            .split_once('?')
            .is_some_and(|(t, _)| is_resource_type(t.trim()));
        match filters.last_mut() {
            Some(last) if !starts_filter => {
                last.push(',');
                last.push_str(part);
            }
            _ => filters.push(part.trim().to_owned()),
        }
    }
    filters
}

/// `Type?query`, checked against the search parameters of `Type`.
fn type_filter(filter: &str) -> FhirResult<(String, String)> {
    let (resource_type, query) = filter
        .split_once('?')
        .filter(|(t, _)| is_resource_type(t))
        .ok_or_else(|| {
            invalid(
                "_typeFilter",
                format!("_typeFilter {filter:?} is not [type]?[search parameters]"),
            )
        })?;
    let pairs = query_pairs(query);
    if let Some((name, _)) = pairs.iter().find(|(name, _)| {
        let base = name.split(':').next().unwrap_or_default();
        RESULT_CONTROLS.contains(&base)
    }) {
        return Err(invalid(
            "_typeFilter",
            format!("_typeFilter selects resources; {name} does not belong in it"),
        ));
    }
    let parsed = parse_search(Some(resource_type), &pairs)?;
    if let Some(unknown) = parsed.unknown.first() {
        return Err(invalid(
            "_typeFilter",
            format!("_typeFilter uses the unknown search parameter {unknown:?}"),
        ));
    }
    Ok((resource_type.to_owned(), query.to_owned()))
}

pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn invalid(name: &str, message: String) -> FhirError {
    FhirError::bad_request(message).expression_at(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[(&str, Value)]) -> Vec<(String, Value)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn reads_the_parameters() {
        let params = parse(
            &pairs(&[
                ("_outputFormat", json!("ndjson")),
                ("_type", json!("Patient,Observation,Patient")),
                ("_since", json!("2024-05-01T00:00:00Z")),
                (
                    "_typeFilter",
                    json!("Observation?code=http://loinc.org|1,http://loinc.org|2,Patient?gender=female"),
                ),
                ("patient", json!({"reference": "Patient/p1"})),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(params.types, ["Patient", "Observation"]);
        assert_eq!(params.since, Some(1_714_521_600_000_000));
        assert_eq!(
            params.type_filters,
            [
                (
                    "Observation".to_string(),
                    "code=http://loinc.org|1,http://loinc.org|2".to_string()
                ),
                ("Patient".to_string(), "gender=female".to_string())
            ]
        );
        assert_eq!(params.patients, Some(vec!["p1".to_string()]));
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for (name, value) in [
            ("_outputFormat", json!("text/csv")),
            ("_since", json!("yesterday")),
            ("_type", json!("Nonsense")),
            ("_typeFilter", json!("Observation?nonsense=1")),
            ("_typeFilter", json!("status=final")),
            ("_typeFilter", json!("Observation?status=final&_sort=date")),
            (
                "_typeFilter",
                json!("Observation?_include=Observation:subject"),
            ),
            ("patient", json!({"reference": "Group/1"})),
            ("includeAssociatedData", json!("_custom")),
            ("organizeOutputBy", json!("Encounter")),
            ("allowPartialManifests", json!("yes")),
            ("_nonsense", json!("1")),
        ] {
            let error = parse(&pairs(&[(name, value.clone())]), false).unwrap_err();
            assert_eq!(error.status.as_u16(), 400, "{name} {value}");
        }
        let lenient = parse(
            &pairs(&[
                ("organizeOutputBy", json!("Encounter")),
                ("_nonsense", json!("1")),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(lenient.ignored, ["organizeOutputBy=Encounter", "_nonsense"]);
    }

    #[test]
    fn reads_the_bulk_data_3_additions() {
        let params = parse(
            &pairs(&[
                (
                    "includeAssociatedData",
                    json!("LatestProvenanceResources,RelevantProvenanceResources"),
                ),
                ("includeAssociatedData", json!("LatestProvenanceResources")),
                ("organizeOutputBy", json!("Patient")),
                ("allowPartialManifests", json!(true)),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(params.associated, Some(Associated::RelevantProvenance));
        assert!(params.organize_by_patient && params.partial_manifests);
        let text = parse(&pairs(&[("allowPartialManifests", json!("false"))]), false).unwrap();
        assert!(!text.partial_manifests);
    }
}
