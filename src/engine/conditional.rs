//! Conditional references and matches (`Patient?identifier=system|value`).
//!
//! The foundation matches on `identifier` and `_id`, the parameters that conditional
//! references in bulk data use; the search issue plugs in the full search engine.

use axum::http::StatusCode;

use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};
use crate::fhir::validate::is_resource_type;
use crate::store::Tx;

/// A parsed `Type?params` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub resource_type: String,
    criteria: Vec<Criterion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Criterion {
    Identifier {
        system: Option<String>,
        value: String,
    },
    Id(String),
}

impl Condition {
    /// Parses `Type?query`; `None` when `text` is not a conditional URL at all.
    pub fn parse_reference(text: &str) -> Option<FhirResult<Condition>> {
        let (resource_type, query) = text.split_once('?')?;
        if !is_resource_type(resource_type) {
            return None;
        }
        Some(Self::parse(resource_type, query))
    }

    /// Parses the query part of a conditional interaction on `resource_type`.
    pub fn parse(resource_type: &str, query: &str) -> FhirResult<Condition> {
        let mut criteria = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let criterion = match name.as_ref() {
                "identifier" => match value.split_once('|') {
                    Some((system, value)) => Criterion::Identifier {
                        system: Some(system.to_string()),
                        value: value.to_string(),
                    },
                    None => Criterion::Identifier {
                        system: None,
                        value: value.to_string(),
                    },
                },
                "_id" => Criterion::Id(value.to_string()),
                other => {
                    return Err(FhirError::new(
                        StatusCode::BAD_REQUEST,
                        IssueCode::NotSupported,
                        format!(
                            "conditional match on {resource_type}?{query}: parameter {other:?} is not supported here (use identifier or _id)"
                        ),
                    ));
                }
            };
            criteria.push(criterion);
        }
        if criteria.is_empty() {
            return Err(FhirError::bad_request(format!(
                "the conditional match {resource_type}?{query} has no criteria"
            )));
        }
        Ok(Condition {
            resource_type: resource_type.to_string(),
            criteria,
        })
    }

    /// Ids of live resources that meet every criterion (at most two: enough to tell
    /// "none", "one" and "several" apart).
    pub async fn matches(&self, tx: &mut Tx) -> FhirResult<Vec<String>> {
        let mut result: Option<Vec<String>> = None;
        for criterion in &self.criteria {
            let ids = match criterion {
                Criterion::Identifier { system, value } => {
                    let system = system.as_deref().filter(|system| !system.is_empty());
                    tx.find_by_token(&self.resource_type, "identifier", system, value)
                        .await?
                }
                Criterion::Id(id) => {
                    let current = tx
                        .current(&[(self.resource_type.as_str(), id.as_str())])
                        .await?;
                    current
                        .values()
                        .filter(|current| !current.deleted)
                        .map(|_| id.clone())
                        .collect()
                }
            };
            result = Some(match result {
                None => ids,
                Some(previous) => previous.into_iter().filter(|id| ids.contains(id)).collect(),
            });
        }
        Ok(result.unwrap_or_default())
    }

    /// The one matching id, or an error naming the reference when there are none or several.
    pub async fn resolve_one(&self, tx: &mut Tx, text: &str) -> FhirResult<String> {
        let mut ids = self.matches(tx).await?;
        match ids.len() {
            1 => Ok(ids.remove(0)),
            0 => Err(FhirError::new(
                StatusCode::PRECONDITION_FAILED,
                IssueCode::NotFound,
                format!("the conditional reference {text:?} matches no resource"),
            )),
            _ => Err(FhirError::new(
                StatusCode::PRECONDITION_FAILED,
                IssueCode::Duplicate,
                format!("the conditional reference {text:?} matches more than one resource"),
            )),
        }
    }
}

/// Calls `visit` on every `reference` string in a resource (including in contained resources).
pub fn for_each_reference(value: &mut serde_json::Value, visit: &mut dyn FnMut(&mut String)) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    serde_json::Value::String(text) if key == "reference" => visit(text),
                    _ => for_each_reference(child, visit),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                for_each_reference(item, visit);
            }
        }
        _ => {}
    }
}
