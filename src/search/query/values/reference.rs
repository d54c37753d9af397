//! `reference` values: `id`, `Type/id`, absolute URLs; the `:Type` and `:identifier`
//! modifiers (`:above` / `:below` are not supported).

use super::super::chain::allowed_target;
use super::super::escape::unescape;
use super::super::{Parsed, invalid, static_type, unsupported};
use super::token::{SystemCode, system_code};
use super::unknown_modifier;
use crate::search::{ParamType, SearchParam, parse_reference};

/// A reference value, compared with the index's `search_reference` columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceValue {
    /// `id` or `Type/id` (a `/_history/n` ending is ignored): `target_id` equals `id`, and
    /// `target_type` equals `target_type` when known (from the value or a `:Type` modifier).
    Local {
        target_type: Option<&'static str>,
        id: String,
    },
    /// An absolute reference or canonical (`http…://`, `urn:`), as written: `url` equals
    /// it. `local` is its `Type/id` ending: when `url` is under this server's base (which
    /// the caller knows), local references to `Type/id` match too.
    Url {
        url: String,
        local: Option<(&'static str, String)>,
    },
    /// `:identifier` (`system|value`, `value`, `|value`, `system|`): the reference's
    /// `identifier_system` / `identifier_value`.
    Identifier(SystemCode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// With the type of a `:Type` modifier.
    Reference(Option<&'static str>),
    Identifier,
}

pub(super) fn mode(param: &'static SearchParam, modifier: Option<&str>) -> Parsed<Mode> {
    let Some(modifier) = modifier else {
        return Ok(Mode::Reference(None));
    };
    match modifier {
        "identifier" => Ok(Mode::Identifier),
        "above" | "below" => Err(unsupported(format!(
            "the modifier ':{modifier}' is not supported on reference parameters"
        ))),
        _ => match allowed_target(param, modifier) {
            Some(target) => Ok(Mode::Reference(Some(target))),
            None if static_type(modifier).is_some() => Err(not_a_target(param, modifier)),
            None => Err(unknown_modifier(modifier, ParamType::Reference)),
        },
    }
}

pub(super) fn value(param: &'static SearchParam, mode: Mode, item: &str) -> Parsed<ReferenceValue> {
    let Mode::Reference(modifier_type) = mode else {
        return system_code(item).map(ReferenceValue::Identifier);
    };
    let text = unescape(item);
    if text.contains("://") || text.starts_with("urn:") {
        let local = parse_reference(&text).and_then(|parsed| {
            Some((
                static_type(parsed.target_type?)?,
                parsed.target_id?.to_owned(),
            ))
        });
        if let (Some(wanted), Some((found, _))) = (modifier_type, &local)
            && wanted != *found
        {
            return Err(type_mismatch(&text, wanted));
        }
        return Ok(ReferenceValue::Url { url: text, local });
    }
    if !text.contains('/') {
        if !is_id(&text) {
            return Err(invalid(format!("'{text}' is not a resource id")));
        }
        return Ok(ReferenceValue::Local {
            target_type: modifier_type,
            id: text,
        });
    }
    let (target_type, id) = parse_reference(&text)
        .filter(|parsed| parsed.url.is_none())
        .and_then(|parsed| Some((parsed.target_type?, parsed.target_id?)))
        .ok_or_else(|| {
            invalid(format!(
                "'{text}' is not a reference (id, Type/id or an absolute URL)"
            ))
        })?;
    let target_type =
        allowed_target(param, target_type).ok_or_else(|| not_a_target(param, target_type))?;
    if let Some(wanted) = modifier_type
        && wanted != target_type
    {
        return Err(type_mismatch(&text, wanted));
    }
    Ok(ReferenceValue::Local {
        target_type: Some(target_type),
        id: id.to_owned(),
    })
}

fn not_a_target(param: &SearchParam, type_name: &str) -> super::super::Rejection {
    invalid(format!(
        "'{type_name}' is not a target type of the reference parameter '{}'",
        param.code
    ))
}

fn type_mismatch(text: &str, wanted: &str) -> super::super::Rejection {
    invalid(format!(
        "'{text}' does not refer to a {wanted}, as the modifier ':{wanted}' requires"
    ))
}

/// FHIR `id`: 1-64 of `[A-Za-z0-9.-]`.
fn is_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
