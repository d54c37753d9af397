//! How a person's name reads on a page: the first `HumanName` of a Patient, Practitioner or
//! RelatedPerson, its `text` or else its given names and family.

use serde_json::Value;

/// The first name of `resource` as one line, if it has one.
pub fn display(resource: &Value) -> Option<String> {
    let name = &resource["name"][0];
    let text = match name["text"].as_str() {
        Some(text) => text.trim().to_string(),
        None => {
            let given: Vec<&str> = name["given"]
                .as_array()
                .map(|given| given.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let family = name["family"].as_str().unwrap_or("");
            format!("{} {family}", given.join(" ")).trim().to_string()
        }
    };
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::display;

    #[test]
    fn text_first_then_given_and_family() {
        let named = json!({"name": [{"text": "Amy Shaw", "family": "X"}]});
        assert_eq!(display(&named).as_deref(), Some("Amy Shaw"));
        let parts = json!({"name": [{"given": ["Amy", "V."], "family": "Shaw"}]});
        assert_eq!(display(&parts).as_deref(), Some("Amy V. Shaw"));
        assert_eq!(display(&json!({"name": [{}]})), None);
        assert_eq!(display(&json!({})), None);
    }
}
