//! Recursive walk over a JSON resource against the generated definitions.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::definitions::{Defs, ElementDef, TypeId, TypeRef, ValueSetDef, defs};
use super::primitives::json_kind_name;
use super::{IssueKind, ValidationIssue};

/// Maximum depth of nested JSON objects that is validated.
pub(crate) const MAX_DEPTH: usize = 64;
/// Maximum number of issues reported (one more "too many issues" issue is added).
pub(crate) const MAX_ISSUES: usize = 1000;

/// What kind of object is being walked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A resource (root or embedded): may hold `resourceType`, may be empty.
    Resource,
    /// A datatype / backbone element: must have content besides `id`.
    Element,
    /// The `_name` companion object of a primitive; `has_value` tells whether the
    /// primitive itself has a value.
    PrimitiveExtension { has_value: bool },
}

/// One segment of the current location; formatted only when an issue is reported.
#[derive(Clone, Copy)]
enum Seg<'v> {
    Name(&'v str),
    Index(usize),
}

struct Walker<'v> {
    defs: &'static Defs,
    path: Vec<Seg<'v>>,
    issues: Vec<ValidationIssue>,
    depth: usize,
    stopped: bool,
}

pub(crate) fn validate(resource: &Value) -> Vec<ValidationIssue> {
    let mut w = Walker {
        defs: defs(),
        path: Vec::with_capacity(32),
        issues: Vec::new(),
        depth: 0,
        stopped: false,
    };
    match resource {
        Value::Object(obj) => w.walk_resource(obj, true),
        other => w.report(
            IssueKind::Invalid,
            format!(
                "A resource must be a JSON object, found {}",
                json_kind_name(other)
            ),
        ),
    }
    w.issues
}

impl<'v> Walker<'v> {
    fn path_string(&self) -> String {
        let mut s = String::with_capacity(16 * self.path.len());
        for seg in &self.path {
            match seg {
                Seg::Name(n) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(n);
                }
                Seg::Index(i) => {
                    let _ = write!(s, "[{i}]");
                }
            }
        }
        s
    }

    /// Reports an issue at the current path.
    #[cold]
    fn report(&mut self, kind: IssueKind, message: String) {
        if self.stopped {
            return;
        }
        if self.issues.len() >= MAX_ISSUES {
            self.stopped = true;
            self.issues.push(ValidationIssue {
                path: self.path_string(),
                message: format!("Too many issues (more than {MAX_ISSUES}); validation stopped"),
                kind: IssueKind::Invalid,
            });
            return;
        }
        let path = self.path_string();
        self.issues.push(ValidationIssue {
            path,
            message,
            kind,
        });
    }

    /// Reports an issue at the current path extended by `name`.
    #[cold]
    fn report_at(&mut self, name: &'v str, kind: IssueKind, message: String) {
        self.path.push(Seg::Name(name));
        self.report(kind, message);
        self.path.pop();
    }

    /// A resource object (root or embedded). The path already points at it, except for
    /// the root, whose path starts with its resource type.
    fn walk_resource(&mut self, obj: &'v Map<String, Value>, is_root: bool) {
        let rt = match obj.get("resourceType") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                let msg = format!(
                    "resourceType must be a string, found {}",
                    json_kind_name(other)
                );
                return self.report_at("resourceType", IssueKind::Invalid, msg);
            }
            None => {
                let msg = "Missing resourceType: not a FHIR resource".to_owned();
                return self.report_at("resourceType", IssueKind::Invalid, msg);
            }
        };
        let Some(&ty) = self.defs.resource_index.get(rt) else {
            let msg = format!("Unknown resource type '{}'", super::primitives::excerpt(rt));
            return self.report_at("resourceType", IssueKind::Invalid, msg);
        };
        if is_root {
            self.path.push(Seg::Name(rt));
        }
        self.walk_object(ty, obj, Mode::Resource);
        if is_root {
            self.path.pop();
        }
    }

    /// An object of a complex type, backbone element or resource.
    fn walk_object(&mut self, ty: TypeId, obj: &'v Map<String, Value>, mode: Mode) {
        if self.stopped {
            return;
        }
        if self.depth >= MAX_DEPTH {
            let msg =
                format!("Maximum nesting depth ({MAX_DEPTH}) exceeded; content not validated");
            self.report(IssueKind::Invalid, msg);
            return;
        }
        self.depth += 1;
        let defs = self.defs;
        let td = &defs.types[ty as usize];
        let mut seen: u128 = 0;
        let mut has_content = false;
        let mut had_unknown = false;

        for (key, value) in obj {
            let key = key.as_str();
            let (base, underscore) = match key.strip_prefix('_') {
                Some(b) => (b, true),
                None => (key, false),
            };
            let child = match td.lookup.get(base) {
                Some(&c) if !underscore || matches!(c.ty, TypeRef::Primitive(_)) => c,
                _ => {
                    match key {
                        "resourceType" if mode == Mode::Resource => {}
                        "fhir_comments" => {}
                        "resourceType" => self.report_at(
                            key,
                            IssueKind::Structure,
                            "resourceType is only allowed at the root of a resource".to_owned(),
                        ),
                        _ => {
                            // Counts as content: don't also report an empty object.
                            has_content = true;
                            had_unknown = true;
                            self.report_at(
                                key,
                                IssueKind::Structure,
                                format!("Unknown element '{}'", super::primitives::excerpt(key)),
                            );
                        }
                    }
                    continue;
                }
            };
            if base != "id" {
                has_content = true;
            }
            let elem = &td.elements[usize::from(child.elem)];
            let bit = 1u128 << child.elem;
            if elem.choice && seen & bit != 0 && !self.same_base_seen(obj, key, underscore) {
                let msg = format!(
                    "Only one variant of the choice element '{}' may be present",
                    elem.name
                );
                self.report_at(key, IssueKind::Structure, msg);
            }
            seen |= bit;
            self.path.push(Seg::Name(base));
            if underscore {
                self.walk_primitive_extension(elem, key, value, obj.get(base));
            } else {
                self.walk_element(elem, child.ty, value, obj, key);
            }
            self.path.pop();
        }

        let empty = match mode {
            Mode::Resource => false,
            Mode::Element => !has_content,
            Mode::PrimitiveExtension { has_value } => {
                obj.is_empty() || (!has_value && !has_content)
            }
        };
        if empty {
            let msg = "An element must have content: empty objects (or only an id) are not allowed"
                .to_owned();
            self.report(IssueKind::Structure, msg);
        }
        let mut missing = td.required_mask & !seen;
        while missing != 0 {
            let i = missing.trailing_zeros() as usize;
            missing &= missing - 1;
            let name: &'static str = &td.elements[i].name;
            self.report_at(
                name,
                IssueKind::Required,
                format!("Missing required element '{name}'"),
            );
        }
        if ty == defs.extension_type {
            let has_value = seen & defs.extension_value_bit != 0;
            let has_ext = seen & defs.extension_extension_bit != 0;
            if has_value && has_ext {
                let msg =
                    "An extension must have either extensions or value[x], not both".to_owned();
                self.report(IssueKind::Invalid, msg);
            } else if !has_value && !has_ext && !had_unknown {
                let msg =
                    "An extension must have either a value[x] or nested extensions".to_owned();
                self.report(IssueKind::Invalid, msg);
            }
        }
        self.depth -= 1;
    }

    /// A code outside the required value set of its element.
    #[cold]
    fn report_not_in_value_set(&mut self, vs: &ValueSetDef, code: &str) {
        const SHOWN: usize = 8;
        let mut allowed = String::new();
        for (i, c) in vs.codes.iter().take(SHOWN).enumerate() {
            if i > 0 {
                allowed.push_str(", ");
            }
            allowed.push_str(c);
        }
        if vs.codes.len() > SHOWN {
            let _ = write!(allowed, ", ... ({} codes)", vs.codes.len());
        }
        let msg = format!(
            "The code '{}' is not in the value set {} required by this element (allowed: {allowed})",
            super::primitives::excerpt(code),
            vs.url
        );
        self.report(IssueKind::Value, msg);
    }

    /// For a choice element already seen: whether the earlier key was the same variant
    /// (`valueString` vs `_valueString`), which is allowed.
    #[cold]
    fn same_base_seen(&self, obj: &Map<String, Value>, key: &str, underscore: bool) -> bool {
        if underscore {
            obj.contains_key(&key[1..])
        } else {
            obj.keys().any(|k| k.strip_prefix('_') == Some(key))
        }
    }

    /// The value of a (non-`_`) property; the path already ends with its name.
    fn walk_element(
        &mut self,
        elem: &ElementDef,
        ty: TypeRef,
        value: &'v Value,
        obj: &'v Map<String, Value>,
        key: &str,
    ) {
        if elem.max == Some(0) {
            let msg = format!("Element '{key}' is not allowed (max cardinality 0)");
            return self.report(IssueKind::Structure, msg);
        }
        match value {
            Value::Array(items) if elem.repeating => {
                if items.is_empty() {
                    let msg = format!("Array '{key}' must not be empty (omit the element instead)");
                    return self.report(IssueKind::Structure, msg);
                }
                if let Some(max) = elem.max
                    && items.len() > max as usize
                {
                    let msg = format!(
                        "Element '{key}' has {} entries, at most {max} allowed",
                        items.len()
                    );
                    self.report(IssueKind::Structure, msg);
                }
                if items.len() < elem.min as usize {
                    let msg = format!(
                        "Element '{key}' has {} entries, at least {} required",
                        items.len(),
                        elem.min
                    );
                    self.report(IssueKind::Required, msg);
                }
                for (i, item) in items.iter().enumerate() {
                    if self.stopped {
                        return;
                    }
                    self.path.push(Seg::Index(i));
                    if item.is_null() {
                        let ok = matches!(ty, TypeRef::Primitive(_))
                            && extension_entry_present(obj, key, i);
                        if !ok {
                            let msg = "null is not allowed in arrays (except in parallel primitive arrays \
                                       where the '_' array has an entry)"
                                .to_owned();
                            self.report(IssueKind::Structure, msg);
                        }
                    } else {
                        self.walk_value(ty, elem.binding, item);
                    }
                    self.path.pop();
                }
            }
            Value::Array(_) => {
                let msg = format!("Element '{key}' has max cardinality 1 and must not be an array");
                self.report(IssueKind::Structure, msg);
            }
            Value::Null => {
                let msg = format!("Element '{key}' must not be null (omit it instead)");
                self.report(IssueKind::Structure, msg);
            }
            _ => {
                if elem.repeating {
                    let msg = format!("Element '{key}' repeats and must be a JSON array");
                    self.report(IssueKind::Structure, msg);
                }
                self.walk_value(ty, elem.binding, value);
            }
        }
    }

    /// A single (non-null, non-array) value of type `ty`; `binding` is the element's
    /// required value set (`code` elements only).
    fn walk_value(&mut self, ty: TypeRef, binding: Option<u16>, value: &'v Value) {
        match ty {
            TypeRef::Primitive(p) => {
                if let Err(msg) = self.defs.primitives[usize::from(p)].check(value) {
                    self.report(IssueKind::Value, msg);
                } else if let (Some(vs), Value::String(code)) = (binding, value) {
                    let vs = &self.defs.value_sets[usize::from(vs)];
                    if !vs.contains(code) {
                        self.report_not_in_value_set(vs, code);
                    }
                }
            }
            TypeRef::Complex(t) => match value {
                Value::Object(o) => self.walk_object(t, o, Mode::Element),
                other => {
                    let msg = format!(
                        "Expected a JSON object for type {}, found {}",
                        self.defs.types[t as usize].name,
                        json_kind_name(other)
                    );
                    self.report(IssueKind::Structure, msg);
                }
            },
            TypeRef::Resource => match value {
                Value::Object(o) => self.walk_resource(o, false),
                other => {
                    let msg = format!(
                        "Expected a resource (JSON object), found {}",
                        json_kind_name(other)
                    );
                    self.report(IssueKind::Structure, msg);
                }
            },
        }
    }

    /// The `_name` companion of a primitive element (id / extensions of the primitive);
    /// the path already ends with `name`. `base` is the `name` property, if present.
    fn walk_primitive_extension(
        &mut self,
        elem: &ElementDef,
        key: &str,
        value: &'v Value,
        base: Option<&'v Value>,
    ) {
        let element_type = self.defs.element_type;
        match value {
            Value::Array(items) if elem.repeating => {
                if items.is_empty() {
                    let msg = format!("Array '{key}' must not be empty");
                    return self.report(IssueKind::Structure, msg);
                }
                let base_items = match base {
                    Some(Value::Array(b)) => Some(b.as_slice()),
                    _ => None,
                };
                if let Some(b) = base_items
                    && b.len() != items.len()
                {
                    let msg = format!(
                        "Array '{key}' has {} entries but '{}' has {}; they must correspond",
                        items.len(),
                        &key[1..],
                        b.len()
                    );
                    self.report(IssueKind::Structure, msg);
                }
                for (i, item) in items.iter().enumerate() {
                    if self.stopped {
                        return;
                    }
                    self.path.push(Seg::Index(i));
                    match item {
                        Value::Object(o) => {
                            let has_value = base_items
                                .and_then(|b| b.get(i))
                                .is_some_and(|v| !v.is_null());
                            self.walk_object(
                                element_type,
                                o,
                                Mode::PrimitiveExtension { has_value },
                            );
                        }
                        Value::Null => {
                            // With a base array, a null there (or a length mismatch) is
                            // reported on its own; without one, this entry is empty.
                            if base_items.is_none() {
                                let msg =
                                    "Array entry has neither a value nor extensions".to_owned();
                                self.report(IssueKind::Structure, msg);
                            }
                        }
                        other => {
                            let msg = format!(
                                "Expected a JSON object or null, found {}",
                                json_kind_name(other)
                            );
                            self.report(IssueKind::Structure, msg);
                        }
                    }
                    self.path.pop();
                }
            }
            Value::Array(_) => {
                let msg = format!("Element '{key}' has max cardinality 1 and must not be an array");
                self.report(IssueKind::Structure, msg);
            }
            Value::Object(o) => {
                if elem.repeating {
                    let msg = format!("Element '{key}' repeats and must be a JSON array");
                    self.report(IssueKind::Structure, msg);
                }
                let has_value = base.is_some_and(|b| !b.is_null());
                self.walk_object(element_type, o, Mode::PrimitiveExtension { has_value });
            }
            other => {
                let msg = format!(
                    "Expected a JSON object for '{key}', found {}",
                    json_kind_name(other)
                );
                self.report(IssueKind::Structure, msg);
            }
        }
    }
}

/// Whether the `_key` array of `obj` has a non-null entry at `index`.
#[cold]
fn extension_entry_present(obj: &Map<String, Value>, key: &str, index: usize) -> bool {
    obj.iter()
        .find(|(k, _)| k.strip_prefix('_') == Some(key))
        .and_then(|(_, v)| v.as_array())
        .and_then(|a| a.get(index))
        .is_some_and(Value::is_object)
}
