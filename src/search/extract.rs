//! Index rows of a resource: one [`IndexEntry`] per value of each of its type's search
//! parameters, and the Patient compartments it belongs to.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::distinct::DistinctEntries;
use super::fhirpath::Item;
use super::reference::parse_reference;
use super::registry::{self, Component, SearchParam};
use super::values::convert;

/// One indexed value of a search parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// `normalized`: see [`normalize_string`](super::normalize_string); `exact`: the original
    /// (for `:exact`). HumanName and Address give one value per part (family, each given, ...).
    String {
        normalized: String,
        exact: String,
    },
    /// From a code, string or boolean (`code` only); a Coding (`system`, `code`, `display`); a
    /// CodeableConcept (each coding, plus one value with only `display` = its `text`, for
    /// `:text`); an Identifier (`system`, `code` = value, `identifier_type` = (system, code)
    /// of a `type` coding for `:of-type`, one value per such coding); a ContactPoint
    /// (`system` = phone, email, ...; `code` = value).
    Token {
        system: Option<String>,
        code: Option<String>,
        display: Option<String>,
        identifier_type: Option<(Option<String>, String)>,
    },
    /// `[start, end)` in microseconds since the Unix epoch (UTC): a date / dateTime / instant
    /// at its precision, a Period (open ends are `i64::MIN` / `i64::MAX`), a Timing (its first
    /// to last event, else `repeat.boundsPeriod`).
    Date {
        start: i64,
        end: i64,
    },
    /// A Reference (`Type/id`; absolute: `url` plus type / id when it ends in `Type/id`;
    /// conditional: type only; `identifier` = (system, value) for `:identifier`; `#contained`
    /// references give nothing), or a canonical / uri (`url`, type / id as for absolute ones).
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: Option<String>,
        identifier: Option<(Option<String>, String)>,
    },
    /// Quantity (and Age, Duration, Count, Distance, SimpleQuantity), Money (`system`
    /// `urn:iso:std:iso:4217`, `code` = currency) or Range (exact, inclusive bounds; open
    /// ends infinite; `value` = low, else high; units of the low bound). `[low, high)` is
    /// the range the written precision implies (`1.5` → `[1.45, 1.55)`).
    Quantity {
        value: f64,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    /// A decimal / integer with its precision range, or a Range as for quantities.
    Number {
        value: f64,
        low: f64,
        high: f64,
    },
    Uri(String),
    /// A composite parameter: one item of its expression (an Observation, each
    /// Observation.component, ...) with the values of each of its components, in the order
    /// of [`SearchParam::components`]. Only items with a value for every component count;
    /// every combination of one value per component is a value of the composite.
    Composite(Vec<ComponentValues>),
}

/// The values of one component of a composite parameter on one item.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct ComponentValues {
    /// [`Component::row_param`](super::Component::row_param).
    pub param: &'static str,
    pub values: Vec<IndexValue>,
}

/// One index row: `param` is the code of a search parameter of the resource's type.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub param: &'static str,
    pub value: IndexValue,
}

/// The index values of `resource` for every search parameter of its type (duplicates within
/// a parameter removed). Nothing for an unknown `resourceType`. Never panics.
pub fn extract(resource: &Value) -> Vec<IndexEntry> {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    let mut entries = DistinctEntries::default();
    for param in registry::params(resource_type) {
        entries.next_param();
        param_values(param, resource, &mut |value| {
            entries.push(IndexEntry {
                param: &param.code,
                value,
            })
        });
    }
    entries.into_vec()
}

/// The ids of the Patients whose compartment holds `resource`: a Patient is in its own, and
/// a resource is in the compartment of each Patient that one of its compartment parameters
/// (CompartmentDefinition `patient`) references as `Patient/id`. Absolute and conditional
/// references do not count (they do not name a local Patient by id).
pub fn patient_compartments(resource: &Value) -> Vec<String> {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = Vec::new();
    let mut add = |id: &str| {
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    };
    if resource_type == "Patient"
        && let Some(id) = resource.get("id").and_then(Value::as_str)
    {
        add(id);
    }
    for param in registry::compartment_params(resource_type) {
        param.expr.eval(resource, &mut |item| {
            if let Some(id) = local_patient_id(item) {
                add(id);
            }
        });
    }
    ids
}

/// [`patient_compartments`] of a resource of `resource_type` as stored (JSON bytes),
/// building only the top-level elements its type's compartment parameters start from
/// ([`registry::compartment_roots`]): the rest is scanned, not built (a read's audit event
/// asks this of every resource it answers). Falls back to parsing it all when an expression
/// does not start from a plain element.
pub fn patient_compartments_in(resource_type: &str, body: &[u8]) -> Vec<String> {
    match compartment_elements(resource_type, body) {
        Some(slim) => patient_compartments(&slim),
        None => serde_json::from_slice::<Value>(body)
            .map(|resource| patient_compartments(&resource))
            .unwrap_or_default(),
    }
}

/// The resource `body` of `resource_type` with only the elements of
/// [`registry::compartment_roots`].
pub(super) fn compartment_elements(resource_type: &str, body: &[u8]) -> Option<Value> {
    let roots = registry::compartment_roots(resource_type)?;
    let mut json = serde_json::Deserializer::from_slice(body);
    let slim = Slim { roots }.deserialize(&mut json).ok()?;
    json.end().ok()?;
    Some(Value::Object(slim))
}

/// Reads a JSON object keeping only the members whose names start with one of `roots`.
struct Slim {
    roots: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for Slim {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Slim {
    type Value = Map<String, Value>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a FHIR resource")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slim = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            if self.roots.iter().any(|root| key.starts_with(root)) {
                slim.insert(key.into_owned(), map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(slim)
    }
}

/// A member name, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a member name")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The ids of the Patients whose data `resource` is, for access decisions: its
/// [`patient_compartments`], or for a type outside the compartment, each Patient one of its
/// [`registry::patient_link_params`] references as `Patient/id`.
pub fn patient_owners(resource: &Value) -> Vec<String> {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    let mut ids = patient_compartments(resource);
    for param in registry::patient_link_params(resource_type) {
        param.expr.eval(resource, &mut |item| {
            if let Some(id) = local_patient_id(item)
                && !ids.iter().any(|i| i == id)
            {
                ids.push(id.to_owned());
            }
        });
    }
    ids
}

fn local_patient_id<'a>(item: Item<'a>) -> Option<&'a str> {
    let Item::Node { value, .. } = item else {
        return None;
    };
    let parsed = parse_reference(value.get("reference")?.as_str()?)?;
    if parsed.url.is_some() || parsed.target_type != Some("Patient") {
        return None;
    }
    parsed.target_id
}

fn param_values(param: &'static SearchParam, resource: &Value, out: &mut dyn FnMut(IndexValue)) {
    if param.components.is_empty() {
        param
            .expr
            .eval(resource, &mut |item| convert(param.kind, item, out));
        return;
    }
    param.expr.eval(resource, &mut |item| {
        let components: Vec<ComponentValues> = param
            .components
            .iter()
            .map(|component| ComponentValues {
                param: &component.row_param,
                values: component_values(component, resource, item),
            })
            .collect();
        if components.iter().all(|c| !c.values.is_empty()) {
            out(IndexValue::Composite(components));
        }
    });
}

/// The distinct values of `component` on `item`, an item of its composite's expression.
fn component_values<'a>(
    component: &'a Component,
    resource: &'a Value,
    item: Item<'a>,
) -> Vec<IndexValue> {
    let mut values = Vec::new();
    component.expr.eval_on(resource, item, &mut |part| {
        convert(component.kind, part, &mut |v| {
            // A CodeableConcept's text is for `:text`, which composites lack.
            let text_only = matches!(v, IndexValue::Token { code: None, .. });
            if !text_only && !values.contains(&v) {
                values.push(v);
            }
        })
    });
    values
}
