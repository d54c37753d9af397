//! `string` values: prefix (default), `:exact` and `:contains`.

use super::super::Parsed;
use super::super::escape::unescape;
use super::unknown_modifier;
use crate::search::{ParamType, normalize_string};

/// A string value, compared with the index's `normalized` column (prefix, contains) or its
/// original text (`exact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringValue {
    /// Default: `normalized` starts with this normalized text.
    StartsWith(String),
    /// `:contains`: `normalized` contains this normalized text.
    Contains(String),
    /// `:exact`: `exact` equals this text (case, accents and spaces included).
    Exact(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    StartsWith,
    Contains,
    Exact,
}

pub(super) fn mode(modifier: Option<&str>) -> Parsed<Mode> {
    match modifier {
        None => Ok(Mode::StartsWith),
        Some("contains") => Ok(Mode::Contains),
        Some("exact") => Ok(Mode::Exact),
        Some(other) => Err(unknown_modifier(other, ParamType::String)),
    }
}

pub(super) fn value(mode: Mode, item: &str) -> StringValue {
    let text = unescape(item);
    match mode {
        Mode::StartsWith => StringValue::StartsWith(normalize_string(&text)),
        Mode::Contains => StringValue::Contains(normalize_string(&text)),
        Mode::Exact => StringValue::Exact(text),
    }
}
