//! Parsing reference strings (`Reference.reference`, canonicals) into type / id / url.

use serde_json::Value;

use crate::fhir::validate::is_resource_type;

/// What a reference string points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedReference<'a> {
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    /// The whole string, for absolute references (`http://...`, `urn:...`).
    pub url: Option<&'a str>,
}

/// Parses a reference: relative `Type/id` (optionally `/_history/n`), conditional
/// `Type?query` (type only), or absolute (url, plus type/id when it ends in `Type/id`).
/// Local references to contained resources (`#id`) and empty strings give `None`.
pub fn parse_reference(reference: &str) -> Option<ParsedReference<'_>> {
    if reference.is_empty() || reference.starts_with('#') {
        return None;
    }
    if let Some((ty, _query)) = reference.split_once('?')
        && is_resource_type(ty)
    {
        return Some(ParsedReference {
            target_type: Some(ty),
            target_id: None,
            url: None,
        });
    }
    let absolute = reference.contains("://") || reference.starts_with("urn:");
    // A canonical may carry `|version`; the type/id come from the part before it.
    let path = reference.split(['|', '#']).next().unwrap_or_default();
    let (target_type, target_id) = match type_and_id(path) {
        Some((ty, id)) => (Some(ty), Some(id)),
        None => (None, None),
    };
    if absolute {
        return Some(ParsedReference {
            target_type,
            target_id,
            url: Some(reference),
        });
    }
    // A relative reference that is not `Type/id` is kept whole, as a url.
    Some(ParsedReference {
        target_type,
        target_id,
        url: target_type.is_none().then_some(reference),
    })
}

/// The type a Reference element (or a canonical string) points at: from its reference
/// string, else from `Reference.type`. This is what `resolve() is Type` tests.
pub fn referenced_type(value: &Value) -> Option<&str> {
    let reference = match value {
        Value::String(s) => Some(s.as_str()),
        Value::Object(map) => map.get("reference").and_then(Value::as_str),
        _ => None,
    };
    match reference {
        Some(r) => parse_reference(r)?.target_type,
        None => value.get("type").and_then(Value::as_str),
    }
}

/// `Type/id` or `Type/id/_history/version` at the end of `path`.
fn type_and_id(path: &str) -> Option<(&str, &str)> {
    let mut segments = path.rsplit('/');
    let mut last = segments.next()?;
    let mut before = segments.next()?;
    if before == "_history" {
        last = segments.next()?;
        before = segments.next()?;
    }
    (is_resource_type(before) && is_id(last)).then_some((before, last))
}

/// FHIR `id`: 1-64 of `[A-Za-z0-9.-]`.
fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(r: &str) -> Option<(Option<&str>, Option<&str>, Option<&str>)> {
        parse_reference(r).map(|p| (p.target_type, p.target_id, p.url))
    }

    #[test]
    fn reference_forms() {
        assert_eq!(
            parsed("Patient/1"),
            Some((Some("Patient"), Some("1"), None))
        );
        assert_eq!(
            parsed("Patient/a.b-c/_history/3"),
            Some((Some("Patient"), Some("a.b-c"), None))
        );
        let abs = "https://ehr.example/fhir/Observation/x1/_history/2";
        assert_eq!(
            parsed(abs),
            Some((Some("Observation"), Some("x1"), Some(abs)))
        );
        let canonical = "http://hl7.org/fhir/Questionnaire/q|1.0";
        assert_eq!(
            parsed(canonical),
            Some((Some("Questionnaire"), Some("q"), Some(canonical)))
        );
        let urn = "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7";
        assert_eq!(parsed(urn), Some((None, None, Some(urn))));
        assert_eq!(
            parsed("Patient?identifier=http://a|1"),
            Some((Some("Patient"), None, None))
        );
        assert_eq!(parsed("#contained"), None);
        assert_eq!(parsed(""), None);
        assert_eq!(parsed("Unknown/1"), Some((None, None, Some("Unknown/1"))));
        assert_eq!(
            parsed("Patient/bad id"),
            Some((None, None, Some("Patient/bad id")))
        );
    }

    #[test]
    fn referenced_types() {
        assert_eq!(
            referenced_type(&json!({"reference": "Group/g"})),
            Some("Group")
        );
        assert_eq!(
            referenced_type(&json!({"type": "Patient", "identifier": {"value": "1"}})),
            Some("Patient")
        );
        assert_eq!(
            referenced_type(&json!("http://x/Patient/1")),
            Some("Patient")
        );
        assert_eq!(
            referenced_type(&json!({"reference": "#c", "type": "Patient"})),
            None
        );
        assert_eq!(referenced_type(&json!(3)), None);
    }
}
