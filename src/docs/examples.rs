//! The search examples: for each US Core search the CapabilityStatement lists, a query that
//! finds data in the sample data (`kiln serve --load-sample-data`). Generated from sample-data/
//! by `tools/gen_us_core_docs.py` into docs/site/search-examples.json and embedded here.

use std::sync::OnceLock;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Example {
    #[serde(rename = "resourceType")]
    pub resource_type: String,
    /// The search parameters it uses, in order (one, or a US Core combination).
    pub params: Vec<String>,
    /// The query string, values percent-encoded where they must be.
    pub query: String,
}

const EXAMPLES: &str = include_str!("../../docs/site/search-examples.json");

pub fn all() -> &'static [Example] {
    static PARSED: OnceLock<Vec<Example>> = OnceLock::new();
    PARSED.get_or_init(|| {
        serde_json::from_str(EXAMPLES).expect("docs/site/search-examples.json is generated JSON")
    })
}

/// The example of exactly these parameters on this type.
pub fn find(resource_type: &str, params: &[&str]) -> Option<&'static Example> {
    all()
        .iter()
        .find(|example| example.resource_type == resource_type && example.params == params)
}

#[cfg(test)]
mod tests {
    #[test]
    fn examples_parse() {
        assert!(super::all().len() > 100);
        assert!(super::find("Patient", &["_id"]).is_some());
    }
}
