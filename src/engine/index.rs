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
                compartment_id: bounded(compartment_id),
            })
            .collect(),
        ..IndexRows::default()
    };
    let mut tuples = 0..;
    for entry in extract(resource) {
        match entry.value {
            IndexValue::Composite(components) => {
                let tuple_id = tuples.next();
                for component in components {
                    for value in component.values {
                        push_row(&mut rows, component.param, tuple_id, value);
                    }
                }
            }
            value => push_row(&mut rows, entry.param, None, value),
        }
    }
    rows
}

/// Adds the row of one value of `param` (a composite's value is its components' rows).
fn push_row(rows: &mut IndexRows, param: &'static str, tuple_id: Option<i64>, value: IndexValue) {
    match value {
        IndexValue::String { normalized, exact } => rows.strings.push(StringRow {
            param,
            normalized: bounded(normalized),
            exact: bounded(exact),
            tuple_id,
        }),
        IndexValue::Token {
            system,
            code,
            display,
            identifier_type,
        } => {
            let (type_system, type_code) = pair_columns(identifier_type);
            rows.tokens.push(TokenRow {
                param,
                system: system.map(bounded),
                code: code.map(bounded),
                // Only `:text` reads it, with the normalization of string search.
                display: display.as_deref().map(normalize_string).map(bounded),
                type_system,
                type_code,
                tuple_id,
            });
        }
        IndexValue::Date { start, end } => rows.dates.push(DateRow {
            param,
            start_us: start,
            end_us: end,
            tuple_id,
        }),
        IndexValue::Reference {
            target_type,
            target_id,
            url,
            identifier,
        } => {
            let (identifier_system, identifier_value) = pair_columns(identifier);
            rows.references.push(ReferenceRow {
                param,
                target_type: target_type.map(bounded),
                target_id: target_id.map(bounded),
                url: url.map(bounded),
                identifier_system,
                identifier_value,
                tuple_id,
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
            system: system.map(bounded),
            code: code.map(bounded),
            unit: unit.map(bounded),
            tuple_id,
        }),
        IndexValue::Number { value, low, high } => rows.numbers.push(NumberRow {
            param,
            value,
            low,
            high,
            tuple_id,
        }),
        IndexValue::Uri(uri) => rows.uris.push(UriRow {
            param,
            uri: bounded(uri),
            tuple_id,
        }),
        // R4 has no composite of composites: the extraction never nests them.
        IndexValue::Composite(_) => {}
    }
}

/// The two columns of an optional (system, value) pair, each bounded; both empty without it.
fn pair_columns(pair: Option<(Option<String>, String)>) -> (Option<String>, Option<String>) {
    match pair {
        Some((system, value)) => (system.map(bounded), Some(bounded(value))),
        None => (None, None),
    }
}

/// Longest text kept in an index column, in bytes: two such values and the key's other
/// columns stay under PostgreSQL's B-tree entry limit (about 2.7 kB). Longer values are
/// indexed by their start; the stored resource keeps them whole.
const MAX_INDEXED_BYTES: usize = 1000;

fn bounded(mut text: String) -> String {
    if text.len() > MAX_INDEXED_BYTES {
        let mut end = MAX_INDEXED_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        assert_eq!(bounded("short".into()), "short");
        let long = "é".repeat(700);
        let cut = bounded(long);
        assert!(cut.len() <= MAX_INDEXED_BYTES);
        assert_eq!(cut.chars().count(), 500);
    }
}
