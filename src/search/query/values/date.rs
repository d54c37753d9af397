//! `date` values: a prefix and a date / dateTime / instant, as the `[start, end)` it covers.

use super::super::escape::unescape;
use super::super::{Parsed, invalid};
use super::prefix::{Prefix, split_prefix};
use crate::search::date_range;

/// A date value: `[start, end)` in microseconds since the Unix epoch (UTC), as the index's
/// `start_us` / `end_us`; for `ap`, already widened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateValue {
    pub prefix: Prefix,
    pub start: i64,
    pub end: i64,
}

pub(super) fn value(item: &str, now_us: i64) -> Parsed<DateValue> {
    let text = unescape(item);
    let (prefix, date) = split_prefix(&text)?;
    // An unencoded `+` of a zone offset arrives as a space (form decoding).
    let (start, end) = date_range(date)
        .or_else(|| date_range(&date.replace(' ', "+")))
        .ok_or_else(|| {
            invalid(format!(
                "'{date}' is not a valid date, dateTime or instant (YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm])"
            ))
        })?;
    if prefix != Prefix::Ap {
        return Ok(DateValue { prefix, start, end });
    }
    // The spec suggests 10% of the time between now and the date.
    let distance = start
        .saturating_sub(now_us)
        .max(now_us.saturating_sub(end))
        .max(0);
    let widen = distance / 10;
    Ok(DateValue {
        prefix,
        start: start.saturating_sub(widen),
        end: end.saturating_add(widen),
    })
}
