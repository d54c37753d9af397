//! FHIRPath Patch (R4 `fhirpatch.html`): a `Parameters` resource whose `operation`
//! parameters add, insert, delete, replace or move elements found by FHIRPath paths. Paths
//! are evaluated with the search module's FHIRPath subset; an element a path selects is
//! found again in the resource by its address, so the subset needs no write support.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};
use crate::fhir::validate::{Step, child_slot};
use crate::search::fhirpath::{Expr, Item, parse};

/// The operation types of the `patch-operation` code system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Insert,
    Delete,
    Replace,
    Move,
}

/// One `operation` parameter, parsed.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Its position in `Parameters.parameter` (errors point at it).
    position: usize,
    kind: Kind,
    path_text: String,
    path: Expr,
    name: Option<String>,
    value: Option<Value>,
    /// The type suffix of `value[x]` (`Boolean` in `valueBoolean`), for choice elements.
    value_type: Option<String>,
    index: Option<usize>,
    source: Option<usize>,
    destination: Option<usize>,
}

fn bad(position: usize, message: impl Into<String>) -> FhirError {
    FhirError::bad_request(message).expression_at(format!("Parameters.parameter[{position}]"))
}

fn unprocessable(position: usize, message: impl Into<String>) -> FhirError {
    FhirError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        IssueCode::Processing,
        message,
    )
    .expression_at(format!("Parameters.parameter[{position}]"))
}

/// Parses a `Parameters` resource into its operations; a malformed one is a 400.
pub fn parse_parameters(parameters: &Map<String, Value>) -> FhirResult<Vec<Operation>> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(FhirError::bad_request(
            "a FHIRPath Patch (application/fhir+json) is a Parameters resource",
        )
        .expression_at("resourceType"));
    }
    let items = match parameters.get("parameter") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            return Err(
                FhirError::bad_request("the FHIRPath Patch has no operation parameters")
                    .expression_at("Parameters.parameter"),
            );
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(position, item)| parse_operation(position, item))
        .collect()
}

fn parse_operation(position: usize, item: &Value) -> FhirResult<Operation> {
    if item.get("name").and_then(Value::as_str) != Some("operation") {
        return Err(bad(
            position,
            "every parameter of a FHIRPath Patch is named operation",
        ));
    }
    let Some(Value::Array(parts)) = item.get("part") else {
        return Err(bad(position, "the operation has no parts"));
    };
    let mut fields: HashMap<&str, &Value> = HashMap::new();
    for part in parts {
        let Some(name) = part.get("name").and_then(Value::as_str) else {
            return Err(bad(position, "an operation part has no name"));
        };
        if fields.insert(name, part).is_some() {
            return Err(bad(
                position,
                format!("the operation repeats the part {name:?}"),
            ));
        }
    }
    let text = |name: &str| -> FhirResult<Option<String>> {
        let Some(part) = fields.get(name) else {
            return Ok(None);
        };
        primitive_value(part)
            .and_then(Value::as_str)
            .map(|text| Some(text.to_string()))
            .ok_or_else(|| bad(position, format!("the part {name:?} must hold a string")))
    };
    let number = |name: &str| -> FhirResult<Option<usize>> {
        let Some(part) = fields.get(name) else {
            return Ok(None);
        };
        primitive_value(part)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                bad(
                    position,
                    format!("the part {name:?} must hold a non-negative integer"),
                )
            })
    };
    let kind = match text("type")?.as_deref() {
        Some("add") => Kind::Add,
        Some("insert") => Kind::Insert,
        Some("delete") => Kind::Delete,
        Some("replace") => Kind::Replace,
        Some("move") => Kind::Move,
        Some(other) => {
            return Err(bad(
                position,
                format!("unknown operation type {other:?} (add, insert, delete, replace or move)"),
            ));
        }
        None => return Err(bad(position, "the operation has no type")),
    };
    let Some(path_text) = text("path")? else {
        return Err(bad(position, "the operation has no path"));
    };
    let path = parse(&path_text, &|_| true)
        .map_err(|error| bad(position, format!("path {path_text:?}: {error}")))?;
    let (value, value_type) = match fields.get("value") {
        Some(part) => {
            let (value, value_type) =
                part_value(part).ok_or_else(|| bad(position, "the value part holds no value"))?;
            (Some(value), value_type)
        }
        None => (None, None),
    };
    let operation = Operation {
        position,
        kind,
        path_text,
        path,
        name: text("name")?,
        value,
        value_type,
        index: number("index")?,
        source: number("source")?,
        destination: number("destination")?,
    };
    let missing = match kind {
        Kind::Add if operation.name.is_none() => Some("name"),
        Kind::Add | Kind::Insert | Kind::Replace if operation.value.is_none() => Some("value"),
        Kind::Insert if operation.index.is_none() => Some("index"),
        Kind::Move if operation.source.is_none() => Some("source"),
        Kind::Move if operation.destination.is_none() => Some("destination"),
        _ => None,
    };
    match missing {
        Some(part) => Err(bad(
            position,
            format!(
                "the {} operation needs a {part:?} part",
                format!("{kind:?}").to_lowercase()
            ),
        )),
        None => Ok(operation),
    }
}

/// The `value[x]` of a part.
fn primitive_value(part: &Value) -> Option<&Value> {
    part.as_object()?
        .iter()
        .find(|(key, _)| key.starts_with("value") && key.len() > "value".len())
        .map(|(_, value)| value)
}

/// A part's value and its type suffix: `value[x]`, or (an anonymous type such as a
/// backbone element) the nested parts as the element's properties.
fn part_value(part: &Value) -> Option<(Value, Option<String>)> {
    let object = part.as_object()?;
    if let Some((key, value)) = object
        .iter()
        .find(|(key, _)| key.starts_with("value") && key.len() > "value".len())
    {
        return Some((value.clone(), Some(key["value".len()..].to_string())));
    }
    let Some(Value::Array(parts)) = object.get("part") else {
        return None;
    };
    let mut element = Map::new();
    for part in parts {
        let name = part.get("name")?.as_str()?;
        let (value, _) = part_value(part)?;
        match element.get_mut(name) {
            Some(Value::Array(items)) => items.push(value),
            Some(single) => *single = Value::Array(vec![single.take(), value]),
            None => {
                element.insert(name.to_string(), value);
            }
        }
    }
    Some((Value::Object(element), None))
}

/// The values the operations add (references in them are rewritten in transactions).
pub fn values_mut(operations: &mut [Operation]) -> impl Iterator<Item = &mut Value> {
    operations
        .iter_mut()
        .filter_map(|operation| operation.value.as_mut())
}

/// Applies the operations in order to `resource`; an operation that cannot be applied is a
/// 422 naming it.
pub fn apply(resource: &mut Value, operations: &[Operation]) -> FhirResult<()> {
    for operation in operations {
        apply_one(resource, operation)?;
    }
    Ok(())
}

fn apply_one(resource: &mut Value, op: &Operation) -> FhirResult<()> {
    let found = locate(resource, op)?;
    match op.kind {
        Kind::Add => add(resource, op, single(op, found)?),
        Kind::Insert => insert(resource, op, found),
        Kind::Delete => match found.len() {
            0 => Ok(()),
            _ => {
                let path = single(op, found)?;
                remove_at(resource, op, &path)
            }
        },
        Kind::Replace => {
            let path = single(op, found)?;
            if path.is_empty() {
                return Err(unprocessable(
                    op.position,
                    "the resource itself cannot be replaced",
                ));
            }
            let target = get_mut(resource, &path)
                .ok_or_else(|| unprocessable(op.position, "the element disappeared"))?;
            *target = op.value.clone().unwrap_or_default();
            Ok(())
        }
        Kind::Move => {
            let (list, len) = whole_list(resource, op, &found)?;
            let (source, destination) = (op.source.unwrap_or(0), op.destination.unwrap_or(0));
            if source >= len || destination >= len {
                return Err(unprocessable(
                    op.position,
                    format!(
                        "move: source {source} and destination {destination} must be below the list's length {len}"
                    ),
                ));
            }
            let items = array_mut(resource, &list, op)?;
            let item = items.remove(source);
            items.insert(destination, item);
            Ok(())
        }
    }
}

/// The paths (from the root) of the elements `op.path` selects.
fn locate(resource: &Value, op: &Operation) -> FhirResult<Vec<Vec<Step>>> {
    let mut targets: Vec<*const Value> = Vec::new();
    let mut not_elements = false;
    op.path.eval(resource, &mut |item| match item {
        Item::Node { value, .. } => targets.push(value),
        _ => not_elements = true,
    });
    if not_elements {
        return Err(unprocessable(
            op.position,
            format!(
                "the path {:?} must select elements of the resource",
                op.path_text
            ),
        ));
    }
    let mut wanted: HashMap<*const Value, Vec<usize>> = HashMap::new();
    for (slot, target) in targets.iter().enumerate() {
        wanted.entry(*target).or_default().push(slot);
    }
    let mut found = vec![Vec::new(); targets.len()];
    walk(resource, &mut Vec::new(), &wanted, &mut found);
    Ok(found)
}

/// Records the path of every node of `value` that `wanted` names.
fn walk(
    value: &Value,
    path: &mut Vec<Step>,
    wanted: &HashMap<*const Value, Vec<usize>>,
    found: &mut [Vec<Step>],
) {
    if let Some(slots) = wanted.get(&(value as *const Value)) {
        for slot in slots {
            found[*slot] = path.clone();
        }
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(Step::Key(key.clone()));
                walk(child, path, wanted, found);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                path.push(Step::Index(index));
                walk(child, path, wanted, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// FHIRPath Patch paths must select exactly one element.
fn single(op: &Operation, mut found: Vec<Vec<Step>>) -> FhirResult<Vec<Step>> {
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(unprocessable(
            op.position,
            format!("the path {:?} selects no element", op.path_text),
        )),
        n => Err(unprocessable(
            op.position,
            format!(
                "the path {:?} selects {n} elements; it must select one",
                op.path_text
            ),
        )),
    }
}

fn get_mut<'a>(mut node: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    for step in path {
        node = match step {
            Step::Key(key) => node.get_mut(key.as_str())?,
            Step::Index(index) => node.get_mut(*index)?,
        };
    }
    Some(node)
}

fn array_mut<'a>(
    resource: &'a mut Value,
    path: &[Step],
    op: &Operation,
) -> FhirResult<&'a mut Vec<Value>> {
    match get_mut(resource, path) {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(unprocessable(op.position, "the list disappeared")),
    }
}

fn add(resource: &mut Value, op: &Operation, path: Vec<Step>) -> FhirResult<()> {
    let name = op.name.as_deref().unwrap_or_default();
    let slot = child_slot(resource, &path, name, op.value_type.as_deref()).ok_or_else(|| {
        unprocessable(
            op.position,
            format!(
                "{name:?} is not an element of what {:?} selects",
                op.path_text
            ),
        )
    })?;
    let value = op.value.clone().unwrap_or_default();
    let Some(Value::Object(target)) = get_mut(resource, &path) else {
        return Err(unprocessable(
            op.position,
            format!(
                "the path {:?} does not select a complex element",
                op.path_text
            ),
        ));
    };
    match target.get_mut(&slot.key) {
        Some(Value::Array(items)) if slot.repeating => items.push(value),
        Some(_) => {
            return Err(unprocessable(
                op.position,
                format!("{} already exists (use replace)", slot.key),
            ));
        }
        None if slot.repeating => {
            target.insert(slot.key, Value::Array(vec![value]));
        }
        None => {
            target.insert(slot.key, value);
        }
    }
    Ok(())
}

/// The list a collection path selects: its path and length. The path must select every
/// item of one list (an empty collection has none).
fn whole_list(
    resource: &Value,
    op: &Operation,
    found: &[Vec<Step>],
) -> FhirResult<(Vec<Step>, usize)> {
    let not_a_list = || {
        unprocessable(
            op.position,
            format!(
                "the path {:?} must select all the items of one list",
                op.path_text
            ),
        )
    };
    let first = found.first().ok_or_else(not_a_list)?;
    let Some((Step::Index(_), list)) = first.split_last() else {
        return Err(not_a_list());
    };
    let Some(Value::Array(items)) = get(resource, list) else {
        return Err(not_a_list());
    };
    let all_of_it = found.len() == items.len()
        && found
            .iter()
            .enumerate()
            .all(|(index, path)| path.split_last() == Some((&Step::Index(index), list)));
    if !all_of_it {
        return Err(not_a_list());
    }
    Ok((list.to_vec(), items.len()))
}

fn get<'a>(mut node: &'a Value, path: &[Step]) -> Option<&'a Value> {
    for step in path {
        node = match step {
            Step::Key(key) => node.get(key.as_str())?,
            Step::Index(index) => node.get(*index)?,
        };
    }
    Some(node)
}

fn insert(resource: &mut Value, op: &Operation, found: Vec<Vec<Step>>) -> FhirResult<()> {
    let index = op.index.unwrap_or(0);
    let value = op.value.clone().unwrap_or_default();
    if found.is_empty() {
        // An absent list: `insert` at 0 creates it under the element the path's base selects.
        let Expr::Child { base, name, .. } = &op.path else {
            return Err(unprocessable(
                op.position,
                format!("the path {:?} selects no list", op.path_text),
            ));
        };
        if index != 0 {
            return Err(unprocessable(
                op.position,
                format!("insert: index {index} is beyond the end of the empty list"),
            ));
        }
        let parent = Operation {
            path: (**base).clone(),
            name: Some(name.to_string()),
            value_type: None,
            kind: Kind::Add,
            ..op.clone()
        };
        let parent_path = single(&parent, locate(resource, &parent)?)?;
        let slot = child_slot(resource, &parent_path, name, None);
        if !slot.is_some_and(|slot| slot.repeating) {
            return Err(unprocessable(
                op.position,
                format!("the path {:?} is not a list", op.path_text),
            ));
        }
        return add(resource, &parent, parent_path);
    }
    let (list, len) = whole_list(resource, op, &found)?;
    if index > len {
        return Err(unprocessable(
            op.position,
            format!("insert: index {index} is beyond the list's length {len}"),
        ));
    }
    array_mut(resource, &list, op)?.insert(index, value);
    Ok(())
}

/// Deletes the element at `path`; a list left empty goes too (FHIR has no empty arrays).
fn remove_at(resource: &mut Value, op: &Operation, path: &[Step]) -> FhirResult<()> {
    let Some((last, parent)) = path.split_last() else {
        return Err(unprocessable(
            op.position,
            "the resource itself cannot be deleted",
        ));
    };
    match (last, get_mut(resource, parent)) {
        (Step::Key(key), Some(Value::Object(map))) => {
            map.shift_remove(key.as_str());
        }
        (Step::Index(index), Some(Value::Array(items))) => {
            items.remove(*index);
            if items.is_empty()
                && let Some((Step::Key(key), grandparent)) = parent.split_last()
                && let Some(Value::Object(map)) = get_mut(resource, grandparent)
            {
                map.shift_remove(key.as_str());
            }
        }
        _ => return Err(unprocessable(op.position, "the element disappeared")),
    }
    Ok(())
}
