//! `number` and `quantity` values: a prefix and a decimal with its precision range;
//! quantities also `|system|code` or `||code`.

use super::super::escape::{split, unescape};
use super::super::{Parsed, invalid};
use super::non_empty;
use super::prefix::{Prefix, split_prefix};
use crate::search::decimal_range;

/// A number value: `value` and `[low, high)` its written precision implies (`1.5` →
/// `[1.45, 1.55)`); for `ap`, widened by 10% of the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberValue {
    pub prefix: Prefix,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// A quantity value: the number as in [`NumberValue`], and the units to match. With a
/// `system`, the index's `system` and `code` must equal them; with only a `code`
/// (`value||code`), the index's `code` or `unit` must equal it; with neither, any units.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantityValue {
    pub prefix: Prefix,
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub system: Option<String>,
    pub code: Option<String>,
}

pub(super) fn number(item: &str) -> Parsed<NumberValue> {
    let text = unescape(item);
    let (prefix, number) = split_prefix(&text)?;
    if !is_decimal(number) {
        return Err(invalid(format!("'{number}' is not a number")));
    }
    let (value, mut low, mut high) =
        decimal_range(number).ok_or_else(|| invalid(format!("'{number}' is out of range")))?;
    if prefix == Prefix::Ap {
        // The spec suggests 10% of the value.
        let widen = value.abs() / 10.0;
        low = low.min(value - widen);
        high = high.max(value + widen);
    }
    Ok(NumberValue {
        prefix,
        value,
        low,
        high,
    })
}

/// `number`, `number|system|code` or `number||code`.
pub(super) fn quantity(item: &str) -> Parsed<QuantityValue> {
    let (number_part, system, code) = match split(item, '|').as_slice() {
        [number] => (*number, None, None),
        [number, system, code] => (*number, non_empty(system), non_empty(code)),
        _ => {
            return Err(invalid(format!(
                "'{item}' is not number, number|system|code or number||code"
            )));
        }
    };
    if system.is_some() && code.is_none() {
        return Err(invalid(format!(
            "'{item}' has a unit system but no unit code"
        )));
    }
    let NumberValue {
        prefix,
        value,
        low,
        high,
    } = number(number_part)?;
    Ok(QuantityValue {
        prefix,
        value,
        low,
        high,
        system,
        code,
    })
}

/// FHIR's decimal syntax plus exponents: `-?digits(.digits)?([eE][+-]?digits)?`. Checked
/// before parsing, since Rust also reads `inf`, `NaN`, `.5` and `+5`.
fn is_decimal(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(digits)
}
