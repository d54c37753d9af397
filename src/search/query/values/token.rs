//! `token` values: `code`, `system|code`, `|code`, `system|`; `:not`, `:text`, `:of-type`
//! (`:in`, `:not-in`, `:above`, `:below` need a terminology service: not supported).

use super::super::escape::{split, unescape};
use super::super::{Parsed, invalid, unsupported};
use super::{non_empty, unknown_modifier};
use crate::search::{ParamType, normalize_string};

/// A token value, compared with the index's `system` / `code` / `display` / `type_*` columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenValue {
    /// Default and `:not`.
    Code(SystemCode),
    /// `:text`: the normalized `display` (a CodeableConcept's text, a Coding's display)
    /// starts with this normalized text. The index keeps `display` as written, so the SQL
    /// side must compare it case-insensitively.
    Text(String),
    /// `:of-type` on an Identifier (`type-system|type-code|value`): `type_system` /
    /// `type_code` and the identifier's value (`code`) equal these.
    OfType {
        type_system: Option<String>,
        type_code: String,
        value: String,
    },
}

/// `[system|]code` as searched (also an identifier's `system|value` in reference
/// `:identifier`): `code` is `None` only for `system|` (any code in the system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemCode {
    pub system: SystemMatch,
    pub code: Option<String>,
}

/// The system part of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemMatch {
    /// `code`: any system, or none.
    Any,
    /// `|code`: no system.
    Absent,
    /// `system|code`, `system|`.
    Is(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Code,
    Not,
    Text,
    OfType,
}

pub(super) fn mode(modifier: Option<&str>) -> Parsed<Mode> {
    match modifier {
        None => Ok(Mode::Code),
        Some("not") => Ok(Mode::Not),
        Some("text") => Ok(Mode::Text),
        Some("of-type") => Ok(Mode::OfType),
        Some(m @ ("in" | "not-in" | "above" | "below")) => Err(unsupported(format!(
            "the modifier ':{m}' needs terminology services, which this server does not have"
        ))),
        Some(other) => Err(unknown_modifier(other, ParamType::Token)),
    }
}

pub(super) fn value(mode: Mode, item: &str) -> Parsed<TokenValue> {
    match mode {
        Mode::Code | Mode::Not => system_code(item).map(TokenValue::Code),
        Mode::Text => Ok(TokenValue::Text(normalize_string(&unescape(item)))),
        Mode::OfType => match split(item, '|').as_slice() {
            [system, code, value] if !code.is_empty() && !value.is_empty() => {
                Ok(TokenValue::OfType {
                    type_system: non_empty(system),
                    type_code: unescape(code),
                    value: unescape(value),
                })
            }
            _ => Err(invalid(format!(
                "'{item}' is not type-system|type-code|value (:of-type)"
            ))),
        },
    }
}

/// `code`, `system|code`, `|code` or `system|` (`item` is not empty).
pub(super) fn system_code(item: &str) -> Parsed<SystemCode> {
    let (system, code) = match split(item, '|').as_slice() {
        [code] => (SystemMatch::Any, non_empty(code)),
        ["", code] => (SystemMatch::Absent, non_empty(code)),
        [system, code] => (SystemMatch::Is(unescape(system)), non_empty(code)),
        _ => {
            return Err(invalid(format!(
                "'{item}' has more than one unescaped '|' (system|code)"
            )));
        }
    };
    if code.is_none() && !matches!(system, SystemMatch::Is(_)) {
        return Err(invalid(format!("'{item}' has neither a system nor a code")));
    }
    Ok(SystemCode { system, code })
}
