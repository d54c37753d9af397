//! Structural validation of FHIR R4 resources in their JSON representation.
//!
//! The element model (cardinalities, types, choice types, backbone elements, primitive
//! regexes, required bindings of `code` elements with their enumerated value sets) is
//! generated from the official R4 StructureDefinitions and value sets by
//! `tools/gen_fhir_defs.py` into `src/fhir/generated/r4_definitions.json`, embedded into
//! the binary and parsed once on first use.
//!
//! What is checked (see <https://hl7.org/fhir/R4/json.html>):
//! * the value is an object with a known `resourceType`;
//! * no unknown elements; `resourceType` only at resource roots (`fhir_comments` is ignored);
//! * primitives have the right JSON kind and match their type's regex / range;
//! * `date`, `dateTime`, `instant` and `time` values are real calendar values: the day
//!   exists in its month (leap years included), hours 00-23, minutes 00-59, seconds
//!   00-60 (a leap second is accepted), time zone offsets within ±14:00;
//! * `code` elements with a *required* binding (`Patient.gender`, `Observation.status`,
//!   `HumanName.use`, ...) hold a code of the bound value set, when the generator could
//!   enumerate it from the R4 definitions (value sets over external code systems, such as
//!   mime types or currencies, are not checked); codes are compared case-sensitively;
//! * primitive extensions (`_name`, parallel `_name` arrays with `null`s);
//! * choice types (`value[x]`) use an allowed type suffix and appear at most once;
//! * cardinality: repeating elements are non-empty arrays without `null`s, single
//!   elements are not arrays; required elements (min ≥ 1) are present;
//! * embedded resources (`contained`, `Bundle.entry.resource`, any element of type
//!   `Resource`) are validated against their own `resourceType`;
//! * objects are not empty (an element must have content other than `id`);
//! * `Extension` has a `url` and either a `value[x]` or nested extensions, not both.
//!
//! FHIRPath invariants, other terminology bindings (non-required ones, and any binding
//! of `Coding` / `CodeableConcept` / other types), profiles and references are NOT checked.
//!
//! Issue paths are FHIRPath-like with indexes, e.g. `Patient.name[0].given[1]`,
//! `Observation.valueQuantity.value`, `Bundle.entry[2].resource.birthDate`,
//! `Patient.contained[0].name`. Problems with the `resourceType` of the root resource are
//! reported at path `resourceType`; a root that is not a JSON object at path `""`.

mod calendar;
mod definitions;
mod primitives;
mod slot;
mod walker;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use slot::{Slot, Step, child_slot};

/// Category of a validation problem; maps onto OperationOutcome `issue.code`
/// (`structure`, `required`, `value`, `invalid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    /// Unknown element, wrong JSON shape (array vs. single value, object expected, `null`,
    /// empty array or object), more than one choice variant.
    Structure,
    /// A required element (min ≥ 1) is missing.
    Required,
    /// A primitive value has the wrong JSON kind, is out of range, does not match the
    /// type's format, is not a real calendar date / time, or is a code outside the value
    /// set its element is required to be bound to.
    Value,
    /// Not a resource at all (not an object, missing / unknown `resourceType`), extension
    /// content rules, nesting too deep, too many issues.
    Invalid,
}

/// One problem found by [`validate_resource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// FHIRPath-style location, e.g. `Patient.name[0].given[1]`.
    pub path: String,
    /// Human readable description.
    pub message: String,
    pub kind: IssueKind,
}

/// Validates a FHIR R4 resource (JSON representation) structurally.
///
/// Returns an empty vector when the resource is valid. Never panics. Objects nested
/// deeper than 64 levels are reported (one `Invalid` issue) and not descended into; after
/// 1000 issues validation stops with a final `Invalid` issue.
///
/// The definitions are parsed on first use (~10 ms); call e.g. [`is_resource_type`] at
/// startup to pay that cost early.
pub fn validate_resource(resource: &Value) -> Vec<ValidationIssue> {
    walker::validate(resource)
}

/// Whether `name` is a concrete FHIR R4 resource type (e.g. `Patient`, `Bundle`).
pub fn is_resource_type(name: &str) -> bool {
    definitions::defs().resource_index.contains_key(name)
}

/// The top-level elements of `resource_type` that `_summary=true` keeps (choice elements
/// without their `[x]`), or `None` for an unknown type.
pub fn summary_elements(resource_type: &str) -> Option<&'static [Box<str>]> {
    definitions::defs()
        .summary
        .get(resource_type)
        .map(Vec::as_slice)
}

/// The mandatory (min ≥ 1) top-level elements of `resource_type`, choice elements without
/// their `[x]`; empty for an unknown type.
pub fn mandatory_elements(resource_type: &str) -> Vec<&'static str> {
    let defs = definitions::defs();
    let Some(id) = defs.resource_index.get(resource_type) else {
        return Vec::new();
    };
    defs.types[*id as usize]
        .elements
        .iter()
        .filter(|element| element.min >= 1)
        .map(|element| element.name.trim_end_matches("[x]"))
        .collect()
}

/// All concrete FHIR R4 resource types, sorted.
pub fn resource_types() -> &'static [String] {
    &definitions::defs().resource_types
}
