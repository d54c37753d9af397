//! Paging cursors: opaque to clients, URL-safe, and checked when they come back.
//!
//! `k.` (the page after a row) or `b.` (the page before it), then the base64url JSON array
//! `[type, id, value…]` of that row, one value per `_sort` key: a string, an integer (dates,
//! `_lastUpdated`), a decimal as a string (so it comes back bit for bit), or null.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::fhir::id::is_valid_id;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::fhir::validate::is_resource_type;
use crate::search::query::SearchQuery;
use crate::store::{Cursor, Keyset, SortType, SortValue, sort_type};

/// The cursor of `_cursor`, for `query` (whose `_sort` keys its values must match).
pub fn parse_cursor(text: Option<&str>, query: &SearchQuery) -> FhirResult<Cursor> {
    let Some(text) = text else {
        return Ok(Cursor::Start);
    };
    decode(text, query).ok_or_else(|| {
        FhirError::bad_request(format!(
            "_cursor {text:?} is not a paging cursor of this search"
        ))
        .expression_at("_cursor")
    })
}

pub fn cursor_text(cursor: &Cursor) -> Option<String> {
    let (direction, keyset) = match cursor {
        Cursor::Start => return None,
        Cursor::After(keyset) => ("k", keyset),
        Cursor::Before(keyset) => ("b", keyset),
    };
    let mut items = vec![json!(keyset.resource_type), json!(keyset.id)];
    items.extend(keyset.values.iter().map(|value| match value {
        None => Value::Null,
        Some(SortValue::Text(text)) => json!(text),
        Some(SortValue::Int(number)) => json!(number),
        // Display writes the shortest text that parses back to the same bits.
        Some(SortValue::Float(number)) => json!(number.to_string()),
    }));
    let encoded = URL_SAFE_NO_PAD.encode(Value::Array(items).to_string());
    Some(format!("{direction}.{encoded}"))
}

fn decode(text: &str, query: &SearchQuery) -> Option<Cursor> {
    let (direction, encoded) = text.split_once('.')?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let Value::Array(items) = serde_json::from_slice(&bytes).ok()? else {
        return None;
    };
    let [resource_type, id, values @ ..] = items.as_slice() else {
        return None;
    };
    let keys = &query.controls.sort;
    if values.len() != keys.len() {
        return None;
    }
    let resource_type = resource_type
        .as_str()
        .filter(|name| searched_type(query, name))?;
    let id = id.as_str().filter(|id| is_valid_id(id))?;
    let values = values
        .iter()
        .zip(keys)
        .map(|(value, key)| sort_value(value, sort_type(key)))
        .collect::<Option<Vec<_>>>()?;
    let keyset = Keyset {
        values,
        resource_type: resource_type.to_string(),
        id: id.to_string(),
    };
    match direction {
        "k" => Some(Cursor::After(keyset)),
        "b" => Some(Cursor::Before(keyset)),
        _ => None,
    }
}

/// Whether the search can match a resource of type `name`.
fn searched_type(query: &SearchQuery, name: &str) -> bool {
    match query.resource_type {
        Some(resource_type) => resource_type == name,
        None if !query.types.is_empty() => query.types.contains(&name),
        None => is_resource_type(name),
    }
}

/// A cursor value of `sort_type`: `Some(None)` for a row without one, `None` if invalid.
fn sort_value(value: &Value, sort_type: SortType) -> Option<Option<SortValue>> {
    let value = match (value, sort_type) {
        (Value::Null, _) => return Some(None),
        // No index value holds a control character, and PostgreSQL rejects NUL in text.
        (Value::String(text), SortType::Text) if !text.chars().any(is_control) => {
            SortValue::Text(text.clone())
        }
        (Value::Number(number), SortType::Int) => SortValue::Int(number.as_i64()?),
        (Value::String(text), SortType::Float) => SortValue::Float(
            text.parse::<f64>()
                .ok()
                .filter(|number| number.is_finite())?,
        ),
        _ => return None,
    };
    Some(Some(value))
}

fn is_control(c: char) -> bool {
    (c as u32) < 0x20 && !matches!(c, '\t' | '\r' | '\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::query::parse_search;

    fn query(params: &[(&str, &str)]) -> SearchQuery {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        parse_search(Some("Observation"), &params).unwrap()
    }

    #[test]
    fn cursors_round_trip_every_value_kind() {
        let query = query(&[("_sort", "-date,value-quantity,code")]);
        let keyset = Keyset {
            values: vec![
                Some(SortValue::Int(-62_135_596_800_000_000)),
                Some(SortValue::Float(0.1 + 0.2)),
                None,
            ],
            resource_type: "Observation".into(),
            id: "o-1.a".into(),
        };
        for cursor in [
            Cursor::After(keyset.clone()),
            Cursor::Before(keyset.clone()),
        ] {
            let text = cursor_text(&cursor).unwrap();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{text}"
            );
            assert_eq!(parse_cursor(Some(&text), &query).unwrap(), cursor);
        }
        assert_eq!(cursor_text(&Cursor::Start), None);
        assert_eq!(parse_cursor(None, &query).unwrap(), Cursor::Start);
    }

    #[test]
    fn tampered_cursors_are_refused() {
        let sorted = query(&[("_sort", "-date")]);
        let encode = |json: &str| format!("k.{}", URL_SAFE_NO_PAD.encode(json));
        for text in [
            "bogus".to_string(),
            "k.".to_string(),
            "k.!!!".to_string(),
            "x.WyJPYnNlcnZhdGlvbiIsIm8xIiwxXQ".to_string(),
            encode(r#"{"a": 1}"#),
            encode(r#"["Observation","o1"]"#),
            encode(r#"["Observation","o1",1,2]"#),
            encode(r#"["Patient","o1",1]"#),
            encode(r#"["Observation","bad id",1]"#),
            encode(r#"["Observation","o1","2020"]"#),
            encode(r#"["Observation","o1",1.5]"#),
        ] {
            let error = parse_cursor(Some(&text), &sorted).unwrap_err();
            assert!(error.outcome().to_string().contains("_cursor"), "{text}");
        }
        let by_code = query(&[("_sort", "code")]);
        assert!(
            parse_cursor(
                Some(&encode("[\"Observation\",\"o1\",\"a\\u0000\"]")),
                &by_code
            )
            .is_err()
        );
        let by_value = query(&[("_sort", "value-quantity")]);
        for value in ["\"NaN\"", "\"inf\"", "\"x\"", "1"] {
            let text = encode(&format!("[\"Observation\",\"o1\",{value}]"));
            assert!(parse_cursor(Some(&text), &by_value).is_err(), "{value}");
        }
        let valid = encode(r#"["Observation","o1",null]"#);
        assert!(parse_cursor(Some(&valid), &sorted).is_ok());
    }
}
