//! Search index rows extracted from a resource on every write, from the generated
//! search-parameter registry (`crate::search`).

use serde_json::Value;

use crate::search::{IndexValue, extract, normalize_string, patient_compartments};
use crate::store::{
    CompartmentRow, DateRow, IndexRows, NumberRow, QuantityRow, ReferenceRow, StringRow, TokenRow,
    UriRow,
};

/// The index rows of `resource` (which must carry its `id`).
pub fn index_rows(resource: &Value) -> IndexRows {
    let mut rows = IndexRows {
        compartments: patient_compartments(resource)
            .into_iter()
            .map(|compartment_id| CompartmentRow {
                compartment_type: "Patient",
                compartment_id,
            })
            .collect(),
        ..IndexRows::default()
    };
    for entry in extract(resource) {
        let param = entry.param;
        match entry.value {
            IndexValue::String { normalized, exact } => rows.strings.push(StringRow {
                param,
                normalized,
                exact,
            }),
            IndexValue::Token {
                system,
                code,
                display,
                identifier_type,
            } => {
                let (type_system, type_code) = match identifier_type {
                    Some((system, code)) => (system, Some(code)),
                    None => (None, None),
                };
                rows.tokens.push(TokenRow {
                    param,
                    system,
                    code,
                    // Only `:text` reads it, with the normalization of string search.
                    display: display.as_deref().map(normalize_string),
                    type_system,
                    type_code,
                });
            }
            IndexValue::Date { start, end } => rows.dates.push(DateRow {
                param,
                start_us: start,
                end_us: end,
            }),
            IndexValue::Reference {
                target_type,
                target_id,
                url,
                identifier,
            } => {
                let (identifier_system, identifier_value) = match identifier {
                    Some((system, value)) => (system, Some(value)),
                    None => (None, None),
                };
                rows.references.push(ReferenceRow {
                    param,
                    target_type,
                    target_id,
                    url,
                    identifier_system,
                    identifier_value,
                });
            }
            IndexValue::Quantity {
                value,
                low,
                high,
                system,
                code,
                unit,
            } => rows.quantities.push(QuantityRow {
                param,
                value,
                low,
                high,
                system,
                code,
                unit,
            }),
            IndexValue::Number { value, low, high } => rows.numbers.push(NumberRow {
                param,
                value,
                low,
                high,
            }),
            IndexValue::Uri(uri) => rows.uris.push(UriRow { param, uri }),
            // Composite parameters are matched through their components by the search engine.
            IndexValue::Composite(_) => {}
        }
    }
    rows
}
