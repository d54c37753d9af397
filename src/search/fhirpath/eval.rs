//! Evaluation: each expression streams its result items into a callback, so paths allocate
//! nothing and no JSON is cloned.

use serde_json::Value;

use super::Expr;
use crate::search::reference;
use crate::search::registry;

/// One item of a result collection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'a> {
    /// A JSON element (never an array: arrays are flattened). `choice` is the type suffix when
    /// it was reached through a choice element (`Quantity` for `valueQuantity`).
    Node {
        value: &'a Value,
        choice: Option<&'a str>,
    },
    Bool(bool),
    Str(&'a str),
    /// What `resolve()` returned for a Reference (or canonical): only its type is known.
    Resolved(&'a Value),
}

impl<'a> Item<'a> {
    fn node(value: &'a Value) -> Self {
        Item::Node {
            value,
            choice: None,
        }
    }

    /// A JSON string or a string literal.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Item::Str(s) => Some(s),
            Item::Node {
                value: Value::String(s),
                ..
            } => Some(s),
            _ => None,
        }
    }

    /// A JSON boolean or a computed one.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Item::Bool(b)
            | Item::Node {
                value: &Value::Bool(b),
                ..
            } => Some(b),
            _ => None,
        }
    }
}

impl Expr {
    /// Evaluates the expression on `resource` (which is also `$this` and `%resource`).
    pub fn eval<'a>(&'a self, resource: &'a Value, out: &mut dyn FnMut(Item<'a>)) {
        self.eval_on(resource, Item::node(resource), out);
    }

    /// Evaluates the expression with `this` as the context item (composite components).
    pub fn eval_on<'a>(
        &'a self,
        resource: &'a Value,
        this: Item<'a>,
        out: &mut dyn FnMut(Item<'a>),
    ) {
        match self {
            Expr::This => out(this),
            Expr::Resource => out(Item::node(resource)),
            Expr::TypeRoot(ty) => {
                if let Item::Node { value, .. } = this
                    && resource_type_matches(value, ty)
                {
                    out(this);
                }
            }
            Expr::Child { base, name, choice } => base.eval_on(resource, this, &mut |item| {
                children(item, name, *choice, out)
            }),
            Expr::Index(base, index) => {
                let mut i = 0;
                base.eval_on(resource, this, &mut |item| {
                    if i == *index {
                        out(item);
                    }
                    i += 1;
                });
            }
            Expr::Union(branches) => {
                for b in branches {
                    b.eval_on(resource, this, out);
                }
            }
            Expr::Where(base, cond) => base.eval_on(resource, this, &mut |item| {
                if cond.truth(resource, item) == Some(true) {
                    out(item);
                }
            }),
            Expr::Exists(base) => {
                let mut any = false;
                base.eval_on(resource, this, &mut |_| any = true);
                out(Item::Bool(any));
            }
            Expr::OfType(base, ty) => base.eval_on(resource, this, &mut |item| {
                if is_type(item, ty) {
                    out(item);
                }
            }),
            Expr::Is(base, ty) => {
                if let Some(item) = base.single(resource, this) {
                    out(Item::Bool(is_type(item, ty)));
                }
            }
            Expr::Resolve(base) => base.eval_on(resource, this, &mut |item| {
                if let Item::Node { value, .. } = item
                    && (value.is_object() || value.is_string())
                {
                    out(Item::Resolved(value));
                }
            }),
            Expr::Extension(base, url) => base.eval_on(resource, this, &mut |item| {
                if let Item::Node { value, .. } = item
                    && let Some(Value::Array(exts)) = value.get("extension")
                {
                    for ext in exts {
                        if ext.get("url").and_then(Value::as_str) == Some(url) {
                            out(Item::node(ext));
                        }
                    }
                }
            }),
            Expr::Equals {
                left,
                right,
                negated,
            } => {
                if let (Some(l), Some(r)) =
                    (left.single(resource, this), right.single(resource, this))
                {
                    out(Item::Bool(items_equal(l, r) != *negated));
                }
            }
            Expr::And(left, right) => {
                // Three-valued logic: false wins over empty.
                match (left.truth(resource, this), right.truth(resource, this)) {
                    (Some(false), _) | (_, Some(false)) => out(Item::Bool(false)),
                    (Some(true), Some(true)) => out(Item::Bool(true)),
                    _ => {}
                }
            }
            Expr::Str(s) => out(Item::Str(s)),
            Expr::Bool(b) => out(Item::Bool(*b)),
        }
    }

    /// The only item of the result; `None` when it is empty or has several items (an error in
    /// FHIRPath, treated as empty).
    fn single<'a>(&'a self, resource: &'a Value, this: Item<'a>) -> Option<Item<'a>> {
        let mut count = 0;
        let mut first = None;
        self.eval_on(resource, this, &mut |item| {
            count += 1;
            first.get_or_insert(item);
        });
        if count == 1 { first } else { None }
    }

    /// The result as a boolean (FHIRPath singleton evaluation); `None` = empty.
    fn truth<'a>(&'a self, resource: &'a Value, this: Item<'a>) -> Option<bool> {
        // A single non-boolean item counts as true.
        Some(self.single(resource, this)?.as_bool().unwrap_or(true))
    }
}

/// The children `name` of `item`; if `name` can be a choice element, a missing `name` is
/// looked up as `name` + a type suffix such as `Quantity`.
fn children<'a>(item: Item<'a>, name: &str, choice: bool, out: &mut dyn FnMut(Item<'a>)) {
    let Item::Node {
        value: Value::Object(map),
        ..
    } = item
    else {
        return;
    };
    if let Some(v) = map.get(name) {
        return flatten(v, None, out);
    }
    if !choice {
        return;
    }
    for (key, v) in map {
        if let Some(suffix) = key.strip_prefix(name)
            && suffix.starts_with(|c: char| c.is_ascii_uppercase())
            && registry::is_choice_type(suffix)
        {
            // A choice element appears once, so the first match is the only one.
            return flatten(v, Some(suffix), out);
        }
    }
}

fn flatten<'a>(value: &'a Value, choice: Option<&'a str>, out: &mut dyn FnMut(Item<'a>)) {
    match value {
        Value::Array(items) => {
            // `null`s only hold the place of a primitive that has just an extension.
            for v in items.iter().filter(|v| !v.is_null()) {
                out(Item::Node { value: v, choice });
            }
        }
        Value::Null => {}
        v => out(Item::Node { value: v, choice }),
    }
}

fn resource_type_matches(value: &Value, ty: &str) -> bool {
    match value.get("resourceType").and_then(Value::as_str) {
        Some(rt) => rt == ty || ty == "Resource" || ty == "DomainResource",
        None => false,
    }
}

/// Whether `item` is of FHIR type `ty`. Only types that are known without the element model
/// count: choice suffixes, resources, referenced types and literals; anything else is not.
fn is_type(item: Item<'_>, ty: &str) -> bool {
    match item {
        Item::Node {
            choice: Some(suffix),
            ..
        } => same_type_name(suffix, ty),
        Item::Node { value, .. } => resource_type_matches(value, ty),
        Item::Resolved(value) => reference::referenced_type(value) == Some(ty),
        Item::Bool(_) => ty == "boolean",
        Item::Str(_) => ty == "string",
    }
}

/// `Quantity` vs `Quantity`, `DateTime` (a JSON suffix) vs `dateTime` (a type name).
fn same_type_name(suffix: &str, ty: &str) -> bool {
    let (mut a, mut b) = (suffix.chars(), ty.chars());
    match (a.next(), b.next()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(&y) && a.as_str() == b.as_str(),
        _ => false,
    }
}

/// FHIRPath `=` on the primitives the expressions compare (strings, booleans); items of
/// different types are not equal.
fn items_equal(a: Item<'_>, b: Item<'_>) -> bool {
    match (a.as_str(), b.as_str(), a.as_bool(), b.as_bool()) {
        (Some(x), Some(y), ..) => x == y,
        (.., Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn eval(expr: &str, resource: &Value) -> Vec<Value> {
        let choices = ["value", "deceased", "multipleBirth", "code"];
        let expr = super::super::parse(expr, &|name| choices.contains(&name)).unwrap();
        let mut out = Vec::new();
        expr.eval(resource, &mut |item| {
            out.push(match item {
                Item::Node { value, .. } | Item::Resolved(value) => value.clone(),
                Item::Bool(b) => Value::Bool(b),
                Item::Str(s) => Value::String(s.into()),
            })
        });
        out
    }

    #[test]
    fn navigation_flattens_arrays_and_finds_choices() {
        let p = json!({"resourceType": "Patient", "name": [{"given": ["A", null, "B"]}, {"given": ["C"]}],
                       "deceasedDateTime": "2020", "multipleBirthBoolean": true});
        assert_eq!(
            eval("Patient.name.given", &p),
            [json!("A"), json!("B"), json!("C")]
        );
        assert_eq!(eval("Observation.name.given", &p), Vec::<Value>::new());
        assert_eq!(
            eval("Resource.name.given", &p),
            [json!("A"), json!("B"), json!("C")]
        );
        assert_eq!(eval("name[1].given", &p), [json!("C")]);
        assert_eq!(eval("Patient.deceased", &p), [json!("2020")]);
        assert_eq!(eval("(Patient.deceased as dateTime)", &p), [json!("2020")]);
        assert_eq!(
            eval("Patient.deceased.as(boolean)", &p),
            Vec::<Value>::new()
        );
        assert_eq!(
            eval("Patient.multipleBirth.ofType(boolean)", &p),
            [json!(true)]
        );
    }

    #[test]
    fn choice_lookup_needs_a_type_suffix() {
        // `code` must not find `codeFilter`, nor `value` find `valueSet`.
        let r = json!({"resourceType": "X", "codeFilter": [1], "valueSet": "s"});
        assert!(eval("X.code", &r).is_empty());
        assert!(eval("X.value", &r).is_empty());
    }

    #[test]
    fn where_resolve_is_and_equality() {
        let o = json!({"resourceType": "Observation",
            "performer": [{"reference": "Practitioner/1"}, {"reference": "http://x/fhir/Patient/2"},
                          {"reference": "Patient?identifier=a|b"}, {"display": "x"}],
            "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "2"}]});
        assert_eq!(
            eval("Observation.performer.where(resolve() is Patient)", &o),
            [
                json!({"reference": "http://x/fhir/Patient/2"}),
                json!({"reference": "Patient?identifier=a|b"})
            ]
        );
        assert_eq!(
            eval("telecom.where(system='email').value", &o),
            [json!("2")]
        );
        assert_eq!(
            eval("telecom.where(system != 'email').value", &o),
            [json!("1")]
        );
    }

    #[test]
    fn boolean_logic_is_three_valued() {
        let expr = "Patient.deceased.exists() and Patient.deceased != false";
        let p = |extra: Value| {
            let mut p = json!({"resourceType": "Patient"});
            p.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            p
        };
        assert_eq!(eval(expr, &p(json!({}))), [json!(false)]);
        assert_eq!(
            eval(expr, &p(json!({"deceasedBoolean": false}))),
            [json!(false)]
        );
        assert_eq!(
            eval(expr, &p(json!({"deceasedBoolean": true}))),
            [json!(true)]
        );
        assert_eq!(
            eval(expr, &p(json!({"deceasedDateTime": "2020"}))),
            [json!(true)]
        );
    }

    #[test]
    fn extensions_and_resource_variable() {
        let p = json!({"resourceType": "Patient", "extension": [
            {"url": "a", "valueString": "x"},
            {"url": "b", "extension": [{"url": "ombCategory", "valueCoding": {"code": "1"}},
                                      {"url": "text", "valueString": "t"}]}]});
        assert_eq!(eval("Patient.extension('a').value", &p), [json!("x")]);
        assert_eq!(
            eval(
                "Patient.extension.where(url = 'b').extension.value.code",
                &p
            ),
            [json!("1")]
        );
        assert_eq!(eval("%resource.extension('a').url", &p), [json!("a")]);
    }
}
