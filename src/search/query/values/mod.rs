//! Search values by parameter type, with the modifiers each type takes, parsed into the
//! representation the index stores.

mod date;
mod number;
mod prefix;
mod reference;
mod string;
mod token;
mod uri;

use super::escape;
use super::{ParamType, Parsed, SearchParam, Test, invalid};

pub use date::DateValue;
pub use number::{NumberValue, QuantityValue};
pub use prefix::Prefix;
pub use reference::ReferenceValue;
pub use string::StringValue;
pub use token::{SystemCode, SystemMatch, TokenValue};
pub use uri::UriValue;

/// One value of an OR list, of the parameter's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(StringValue),
    Token(TokenValue),
    Date(DateValue),
    Number(NumberValue),
    Quantity(QuantityValue),
    Reference(ReferenceValue),
    Uri(UriValue),
    /// One value per component, in the order of [`SearchParam::components`].
    Composite(Vec<ComponentValue>),
}

/// A component of a composite value. Components take no modifiers: strings match by
/// prefix, uris exactly, and dates, numbers and quantities take prefixes.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentValue {
    /// The `param` of the component's index rows (`code-value-quantity$1`, see
    /// [`Component::row_param`](crate::search::Component::row_param)).
    pub param: &'static str,
    pub value: Value,
}

/// The test of `param` with `modifier` and the request value `raw` (an OR list); `None`
/// when the list has no non-empty item.
pub(super) fn parse_test(
    param: &'static SearchParam,
    modifier: Option<&str>,
    raw: &str,
    now_us: i64,
) -> Parsed<Option<Test>> {
    if modifier == Some("missing") {
        return match raw {
            "true" => Ok(Some(Test::Missing(true))),
            "false" => Ok(Some(Test::Missing(false))),
            _ => Err(invalid(format!(
                ":missing takes true or false, not '{raw}'"
            ))),
        };
    }
    let items: Vec<&str> = escape::split(raw, ',')
        .into_iter()
        .filter(|item| !item.is_empty())
        .collect();
    // Modifiers are checked even when every item is empty.
    let each = |parse: &dyn Fn(&str) -> Parsed<Value>| -> Parsed<Vec<Value>> {
        items.iter().map(|item| parse(item)).collect()
    };
    let values = match param.kind {
        ParamType::String => {
            let mode = string::mode(modifier)?;
            each(&|item| Ok(Value::String(string::value(mode, item))))?
        }
        ParamType::Token => {
            let mode = token::mode(modifier)?;
            let values = each(&|item| token::value(mode, item).map(Value::Token))?;
            if mode == token::Mode::Not && !values.is_empty() {
                return Ok(Some(Test::NotAny(values)));
            }
            values
        }
        ParamType::Reference => {
            let mode = reference::mode(param, modifier)?;
            each(&|item| reference::value(param, mode, item).map(Value::Reference))?
        }
        ParamType::Uri => {
            let mode = uri::mode(modifier)?;
            each(&|item| Ok(Value::Uri(uri::value(mode, item))))?
        }
        kind => {
            if let Some(modifier) = modifier {
                return Err(unknown_modifier(modifier, kind));
            }
            each(&|item| unmodified(param, kind, item, now_us))?
        }
    };
    Ok((!values.is_empty()).then_some(Test::Any(values)))
}

/// A value of a parameter or component without a modifier.
fn unmodified(
    param: &'static SearchParam,
    kind: ParamType,
    item: &str,
    now_us: i64,
) -> Parsed<Value> {
    Ok(match kind {
        ParamType::String => Value::String(string::value(string::Mode::StartsWith, item)),
        ParamType::Token => Value::Token(token::value(token::Mode::Code, item)?),
        ParamType::Reference => Value::Reference(reference::value(
            param,
            reference::Mode::Reference(None),
            item,
        )?),
        ParamType::Uri => Value::Uri(uri::value(uri::Mode::Exact, item)),
        ParamType::Date => Value::Date(date::value(item, now_us)?),
        ParamType::Number => Value::Number(number::number(item)?),
        ParamType::Quantity => Value::Quantity(number::quantity(item)?),
        ParamType::Composite => composite(param, item, now_us)?,
    })
}

/// `part$part...`: one part per component, each parsed by its component's type.
fn composite(param: &'static SearchParam, item: &str, now_us: i64) -> Parsed<Value> {
    let parts = escape::split(item, '$');
    if parts.len() != param.components.len() {
        return Err(invalid(format!(
            "'{item}' has {} parts separated by '$'; {} has {} components",
            parts.len(),
            param.code,
            param.components.len()
        )));
    }
    let components = param
        .components
        .iter()
        .zip(parts)
        .map(|(component, part)| {
            if part.is_empty() {
                return Err(invalid(format!(
                    "the {} component of '{item}' is empty",
                    component.code
                )));
            }
            Ok(ComponentValue {
                param: &component.row_param,
                value: unmodified(param, component.kind, part, now_us)?,
            })
        })
        .collect::<Parsed<_>>()?;
    Ok(Value::Composite(components))
}

fn kind_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::Number => "number",
        ParamType::Date => "date",
        ParamType::String => "string",
        ParamType::Token => "token",
        ParamType::Reference => "reference",
        ParamType::Composite => "composite",
        ParamType::Quantity => "quantity",
        ParamType::Uri => "uri",
    }
}

/// The error for a modifier `kind` parameters do not take.
fn unknown_modifier(modifier: &str, kind: ParamType) -> super::Rejection {
    invalid(format!(
        "unknown modifier ':{modifier}' for a {} parameter",
        kind_name(kind)
    ))
}

/// A part of a split value, unescaped; `None` when empty.
fn non_empty(part: &str) -> Option<String> {
    (!part.is_empty()).then(|| escape::unescape(part))
}
