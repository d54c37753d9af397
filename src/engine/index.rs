//! Search index rows extracted from a resource on every write.
//!
//! The foundation indexes `identifier` (what conditional references and conditional creates
//! match on); the search registry extends this to every parameter.

use serde_json::{Map, Value};

use crate::store::TokenRow;

/// Token rows for the resource's top-level `identifier` element(s).
pub fn token_rows(resource: &Map<String, Value>) -> Vec<TokenRow> {
    let identifiers: Vec<&Value> = match resource.get("identifier") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    };
    identifiers
        .into_iter()
        .filter_map(|identifier| {
            let value = identifier.get("value")?.as_str()?;
            Some(TokenRow {
                param: "identifier",
                system: identifier
                    .get("system")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                code: Some(value.to_string()),
            })
        })
        .collect()
}
