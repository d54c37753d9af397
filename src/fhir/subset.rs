//! `_summary` and `_elements`: returning part of a resource, marked SUBSETTED.

use serde_json::{Map, Value, json};

use super::outcome::{FhirError, FhirResult};
use super::validate::{mandatory_elements, summary_elements};

/// Which part of a resource to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subset {
    Full,
    /// `_summary=true`: the elements marked as summary in the base definition.
    Summary,
    /// `_summary=text`: text, id, meta and the mandatory elements.
    Text,
    /// `_summary=data`: everything but the narrative.
    Data,
    /// `_elements=a,b`: those elements, plus id, meta and the mandatory ones.
    Elements(Vec<String>),
}

impl Subset {
    /// Reads `_summary` and `_elements` (not both) from the query parameters.
    pub fn from_params(summary: Option<&str>, elements: Option<&str>) -> FhirResult<Subset> {
        match (summary, elements) {
            (Some(_), Some(_)) => Err(FhirError::bad_request(
                "use either _summary or _elements, not both",
            )
            .expression_at("_elements")),
            (Some(mode), None) => match mode {
                "true" => Ok(Subset::Summary),
                "text" => Ok(Subset::Text),
                "data" => Ok(Subset::Data),
                "false" => Ok(Subset::Full),
                other => Err(FhirError::bad_request(format!(
                    "_summary must be true, text, data or false here, not {other:?}"
                ))
                .expression_at("_summary")),
            },
            (None, Some(list)) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    // `Patient.name` and `name` mean the same top-level element.
                    .map(|name| name.rsplit('.').next().unwrap_or(name).to_string())
                    .collect();
                if names.is_empty() {
                    return Err(FhirError::bad_request("_elements names no element")
                        .expression_at("_elements"));
                }
                Ok(Subset::Elements(names))
            }
            (None, None) => Ok(Subset::Full),
        }
    }

    /// The stored bytes, or the subset of them with `meta.tag` SUBSETTED.
    pub fn apply(&self, body: Vec<u8>) -> Vec<u8> {
        if *self == Subset::Full {
            return body;
        }
        let Ok(Value::Object(resource)) = serde_json::from_slice::<Value>(&body) else {
            return body;
        };
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let keep = |key: &str| -> bool {
            if matches!(key, "resourceType" | "id" | "meta") {
                return true;
            }
            let base = base_name(key);
            match self {
                Subset::Full => true,
                Subset::Data => base != "text",
                Subset::Summary => summary_elements(&resource_type)
                    .is_some_and(|names| names.iter().any(|name| element_is(base, name))),
                Subset::Text => {
                    base == "text"
                        || mandatory_elements(&resource_type)
                            .iter()
                            .any(|name| element_is(base, name))
                }
                Subset::Elements(names) => {
                    names.iter().any(|name| element_is(base, name))
                        || mandatory_elements(&resource_type)
                            .iter()
                            .any(|name| element_is(base, name))
                }
            }
        };
        let mut subset: Map<String, Value> =
            resource.into_iter().filter(|(key, _)| keep(key)).collect();
        mark_subsetted(&mut subset);
        serde_json::to_vec(&Value::Object(subset)).unwrap_or(body)
    }
}

/// `_birthDate` travels with `birthDate`.
fn base_name(key: &str) -> &str {
    key.strip_prefix('_').unwrap_or(key)
}

/// True when the JSON key `key` is the element `name`, or one of its choice forms
/// (`valueQuantity` for `value`).
fn element_is(key: &str, name: &str) -> bool {
    key == name
        || key
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
}

fn mark_subsetted(resource: &mut Map<String, Value>) {
    let tag = json!({
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
    });
    let meta = resource
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        match meta.get_mut("tag") {
            Some(Value::Array(tags)) => tags.push(tag),
            _ => {
                meta.insert("tag".into(), json!([tag]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(subset: Subset, resource: Value) -> Value {
        serde_json::from_slice(&subset.apply(serde_json::to_vec(&resource).unwrap())).unwrap()
    }

    #[test]
    fn summary_keeps_summary_elements_and_tags_the_result() {
        let patient = json!({
            "resourceType": "Patient", "id": "p", "meta": {"versionId": "1"},
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
            "name": [{"family": "A"}], "birthDate": "1990-01-01", "_birthDate": {"id": "b"},
            "photo": [{"url": "http://x"}], "contact": [{"name": {"family": "B"}}]
        });
        let summary = apply(Subset::Summary, patient.clone());
        assert_eq!(summary["name"][0]["family"], "A");
        assert_eq!(summary["_birthDate"]["id"], "b");
        assert!(summary.get("text").is_none());
        assert!(summary.get("photo").is_none());
        assert!(summary.get("contact").is_none());
        assert_eq!(summary["meta"]["tag"][0]["code"], "SUBSETTED");
        let data = apply(Subset::Data, patient.clone());
        assert!(data.get("text").is_none());
        assert!(data.get("photo").is_some());
        let text = apply(Subset::Text, patient.clone());
        assert!(text.get("text").is_some());
        assert!(text.get("name").is_none());
        assert_eq!(apply(Subset::Full, patient.clone()), patient);
    }

    #[test]
    fn elements_keep_choices_mandatory_and_meta() {
        let observation = json!({
            "resourceType": "Observation", "id": "o", "status": "final",
            "code": {"text": "x"}, "valueQuantity": {"value": 1}, "note": [{"text": "n"}]
        });
        let subset = Subset::from_params(None, Some("value,Observation.note")).unwrap();
        let result = apply(subset, observation);
        assert_eq!(result["valueQuantity"]["value"], 1);
        assert_eq!(result["note"][0]["text"], "n");
        assert_eq!(result["status"], "final", "mandatory elements stay");
        assert_eq!(result["code"]["text"], "x");
        assert_eq!(result["meta"]["tag"][0]["code"], "SUBSETTED");
    }

    #[test]
    fn parameters_are_checked() {
        assert!(Subset::from_params(Some("maybe"), None).is_err());
        assert!(Subset::from_params(Some("true"), Some("name")).is_err());
        assert!(Subset::from_params(None, Some(",")).is_err());
        assert_eq!(
            Subset::from_params(Some("false"), None).unwrap(),
            Subset::Full
        );
    }
}
