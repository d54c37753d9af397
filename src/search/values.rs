//! Turning FHIRPath result items into index values, by parameter type and by the shape of
//! the element found (a string, a CodeableConcept, a Period, ...).

use serde_json::{Map, Value};

use super::IndexValue;
use super::datetime::date_range;
use super::decimal::decimal_range;
use super::fhirpath::Item;
use super::normalize::normalize_string;
use super::reference::{ParsedReference, parse_reference};
use super::registry::ParamType;

/// The parts of a HumanName / Address a `string` parameter matches.
const STRING_PARTS: [&str; 11] = [
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

const CURRENCY_SYSTEM: &str = "urn:iso:std:iso:4217";

/// The index values of one item for a parameter of type `kind` (none when the item does not
/// fit the type, e.g. a SampledData for a quantity).
pub fn convert(kind: ParamType, item: Item<'_>, out: &mut dyn FnMut(IndexValue)) {
    match kind {
        ParamType::String => strings(item, out),
        ParamType::Token => tokens(item, out),
        ParamType::Date => {
            if let Some((start, end)) = date(item) {
                out(IndexValue::Date { start, end });
            }
        }
        ParamType::Reference => {
            if let Some(v) = reference(item) {
                out(v);
            }
        }
        ParamType::Quantity => {
            if let Some(v) = quantity(item) {
                out(v);
            }
        }
        ParamType::Number => {
            if let Some((value, low, high)) = number(item) {
                out(IndexValue::Number { value, low, high });
            }
        }
        ParamType::Uri => {
            if let Some(s) = item.as_str() {
                out(IndexValue::Uri(s.to_owned()));
            }
        }
        // R4 has no composite of composites.
        ParamType::Composite => {}
    }
}

fn object<'a>(item: Item<'a>) -> Option<&'a Map<String, Value>> {
    match item {
        Item::Node {
            value: Value::Object(map),
            ..
        } => Some(map),
        _ => None,
    }
}

fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

fn owned(map: &Map<String, Value>, key: &str) -> Option<String> {
    field(map, key).map(str::to_owned)
}

fn strings(item: Item<'_>, out: &mut dyn FnMut(IndexValue)) {
    let mut push = |s: &str| {
        let normalized = normalize_string(s);
        if !normalized.is_empty() {
            out(IndexValue::String {
                normalized,
                exact: s.to_owned(),
            });
        }
    };
    if let Some(s) = item.as_str() {
        push(s);
    } else if let Some(map) = object(item) {
        for key in STRING_PARTS {
            match map.get(key) {
                Some(Value::String(s)) => push(s),
                Some(Value::Array(parts)) => {
                    parts.iter().filter_map(Value::as_str).for_each(&mut push)
                }
                _ => {}
            }
        }
    }
}

fn token(system: Option<String>, code: Option<String>, display: Option<String>) -> IndexValue {
    IndexValue::Token {
        system,
        code,
        display,
        identifier_type: None,
    }
}

fn tokens(item: Item<'_>, out: &mut dyn FnMut(IndexValue)) {
    let code = match item {
        Item::Node {
            value: Value::Number(n),
            ..
        } => Some(n.as_str().to_owned()),
        _ => item
            .as_str()
            .map(str::to_owned)
            .or_else(|| item.as_bool().map(|b| b.to_string())),
    };
    if code.is_some() {
        return out(token(None, code, None));
    }
    let Some(map) = object(item) else {
        return;
    };
    if map.contains_key("coding") || map.contains_key("text") {
        // CodeableConcept: each coding, and its text for `:text`.
        for coding in codings(map) {
            out(coding_token(coding));
        }
        if let Some(text) = owned(map, "text") {
            out(token(None, None, Some(text)));
        }
    } else if let Some(value) = field(map, "value") {
        identifier_tokens(map, value, out);
    } else if map.contains_key("code") || map.contains_key("system") {
        out(coding_token(map));
    }
}

fn codings(concept: &Map<String, Value>) -> impl Iterator<Item = &Map<String, Value>> {
    concept
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn coding_token(coding: &Map<String, Value>) -> IndexValue {
    token(
        owned(coding, "system"),
        owned(coding, "code"),
        owned(coding, "display"),
    )
}

/// Identifier (`system|value`, one entry per `type` coding for `:of-type`) or ContactPoint
/// (its `system` is `phone`, `email`, ...).
fn identifier_tokens(map: &Map<String, Value>, value: &str, out: &mut dyn FnMut(IndexValue)) {
    let make = |identifier_type| IndexValue::Token {
        system: owned(map, "system"),
        code: Some(value.to_owned()),
        display: None,
        identifier_type,
    };
    let mut typed = false;
    if let Some(ty) = map.get("type").and_then(Value::as_object) {
        for coding in codings(ty) {
            if let Some(code) = owned(coding, "code") {
                typed = true;
                out(make(Some((owned(coding, "system"), code))));
            }
        }
    }
    if !typed {
        out(make(None));
    }
}

/// A date, Period or Timing as `[start, end)`.
fn date(item: Item<'_>) -> Option<(i64, i64)> {
    if let Some(s) = item.as_str() {
        return date_range(s);
    }
    let map = object(item)?;
    if map.contains_key("start") || map.contains_key("end") {
        return period(map);
    }
    // Timing: from its first to its last event, else its bounds.
    let mut events = map
        .get("event")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| date_range(e.as_str()?))
        .peekable();
    if events.peek().is_some() {
        return events.reduce(|(s1, e1), (s2, e2)| (s1.min(s2), e1.max(e2)));
    }
    period(map.get("repeat")?.get("boundsPeriod")?.as_object()?)
}

/// A Period: a missing start is open (`i64::MIN`), a missing end too (`i64::MAX`).
fn period(map: &Map<String, Value>) -> Option<(i64, i64)> {
    let bound = |key| match map.get(key) {
        None => Some(None),
        Some(v) => date_range(v.as_str()?).map(Some),
    };
    match (bound("start")?, bound("end")?) {
        (None, None) => None,
        (start, end) => Some((
            start.map_or(i64::MIN, |r| r.0),
            end.map_or(i64::MAX, |r| r.1),
        )),
    }
}

fn reference(item: Item<'_>) -> Option<IndexValue> {
    if let Some(s) = item.as_str() {
        // A canonical or uri element of a reference parameter.
        let parsed = parse_reference(s)?;
        return Some(IndexValue::Reference {
            target_type: parsed.target_type.map(str::to_owned),
            target_id: parsed.target_id.map(str::to_owned),
            url: parsed.url.map(str::to_owned),
            identifier: None,
        });
    }
    let map = object(item)?;
    if map.contains_key("resourceType") {
        // An embedded resource (`Bundle.entry[0].resource`) is not a reference.
        return None;
    }
    let parsed = field(map, "reference").and_then(parse_reference);
    let identifier = map
        .get("identifier")
        .and_then(Value::as_object)
        .and_then(|id| Some((owned(id, "system"), owned(id, "value")?)));
    if parsed.is_none() && identifier.is_none() {
        return None;
    }
    let parsed = parsed.unwrap_or(ParsedReference {
        target_type: field(map, "type"),
        target_id: None,
        url: None,
    });
    Some(IndexValue::Reference {
        target_type: parsed.target_type.map(str::to_owned),
        target_id: parsed.target_id.map(str::to_owned),
        url: parsed.url.map(str::to_owned),
        identifier,
    })
}

/// `(value, low, high)` of a JSON number, with its precision range.
fn decimal(v: &Value) -> Option<(f64, f64, f64)> {
    decimal_range(v.as_number()?.as_str())
}

/// A Range as `(value, low, high)`: its bounds are exact (inclusive), a missing one is open;
/// the value is the low bound, or the high one.
fn range(map: &Map<String, Value>) -> Option<(f64, f64, f64, &Map<String, Value>)> {
    let bound = |key| map.get(key)?.as_object();
    let value_of = |q: Option<&Map<String, Value>>| q.and_then(|q| decimal(q.get("value")?));
    let (low, high) = (bound("low"), bound("high"));
    let (lv, hv) = (value_of(low), value_of(high));
    let (value, units) = match (lv, hv) {
        (Some(l), _) => (l.0, low?),
        (None, Some(h)) => (h.0, high?),
        (None, None) => return None,
    };
    Some((
        value,
        lv.map_or(f64::NEG_INFINITY, |l| l.0),
        hv.map_or(f64::INFINITY, |h| h.0),
        units,
    ))
}

fn quantity(item: Item<'_>) -> Option<IndexValue> {
    let map = object(item)?;
    let (value, low, high, units) = if map.contains_key("low") || map.contains_key("high") {
        range(map)?
    } else {
        let (value, low, high) = decimal(map.get("value")?)?;
        (value, low, high, map)
    };
    let (system, code) = match owned(units, "currency") {
        // Money
        Some(currency) => (Some(CURRENCY_SYSTEM.to_owned()), Some(currency)),
        None => (owned(units, "system"), owned(units, "code")),
    };
    Some(IndexValue::Quantity {
        value,
        low,
        high,
        system,
        code,
        unit: owned(units, "unit"),
    })
}

fn number(item: Item<'_>) -> Option<(f64, f64, f64)> {
    match item {
        Item::Node {
            value: v @ Value::Number(_),
            ..
        } => decimal(v),
        _ => {
            let map = object(item)?;
            if map.contains_key("low") || map.contains_key("high") {
                range(map).map(|(v, low, high, _)| (v, low, high))
            } else {
                decimal(map.get("value")?)
            }
        }
    }
}
