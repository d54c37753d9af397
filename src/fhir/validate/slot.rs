//! Where a new element goes in a resource (FHIRPath Patch `add`): the JSON property a
//! child element takes and whether it repeats, looked up in the element model along a
//! path of JSON keys and array indexes.

use serde_json::Value;

use super::definitions::{TypeId, TypeRef, defs, upper_first};

/// One step from a resource root to an element: a JSON property or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// The JSON property a child element takes, and whether it is an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub key: String,
    pub repeating: bool,
}

/// The slot of child `name` of the element that `path` leads to in `resource`. For a
/// choice element (`deceased[x]`), `value_type` (the type of the value to add, e.g.
/// `boolean`) selects the property (`deceasedBoolean`). `None` when the path or the name is
/// not an element of the model.
pub fn child_slot(
    resource: &Value,
    path: &[Step],
    name: &str,
    value_type: Option<&str>,
) -> Option<Slot> {
    let defs = defs();
    // `None`: the element is a resource (`contained`), typed by its own `resourceType`.
    let mut ty = resource_type_id(resource);
    let mut node = resource;
    for step in path {
        match step {
            Step::Index(index) => node = node.get(*index)?,
            Step::Key(key) => {
                let parent = ty.or_else(|| resource_type_id(node))?;
                node = node.get(key)?;
                ty = match defs.types[parent as usize].lookup.get(key.as_str())?.ty {
                    TypeRef::Complex(id) => Some(id),
                    TypeRef::Resource => None,
                    TypeRef::Primitive(_) => return None,
                };
            }
        }
    }
    let ty = ty.or_else(|| resource_type_id(node))?;
    let lookup = &defs.types[ty as usize].lookup;
    let (key, child) = match lookup.get_key_value(name) {
        Some((key, child)) => (key.to_string(), child),
        None => {
            let key = format!("{name}{}", upper_first(value_type?));
            let child = lookup.get(key.as_str())?;
            (key, child)
        }
    };
    let element = &defs.types[ty as usize].elements[child.elem as usize];
    Some(Slot {
        key,
        repeating: element.repeating,
    })
}

fn resource_type_id(resource: &Value) -> Option<TypeId> {
    let resource_type = resource.get("resourceType")?.as_str()?;
    defs().resource_index.get(resource_type).copied()
}
