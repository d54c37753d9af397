//! The comparison prefixes of date, number and quantity values.

use super::super::{Parsed, invalid};

/// How a value's range `[low, high)` (its written precision; a date's precision) compares
/// with an indexed range (R4 search.html, prefixes on ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// The indexed range lies within the value's range.
    Eq,
    /// The indexed range does not lie within the value's range.
    Ne,
    /// Part of the indexed range is at or above `high`.
    Gt,
    /// Part of the indexed range is below `low`.
    Lt,
    /// `Gt` or `Eq`.
    Ge,
    /// `Lt` or `Eq`.
    Le,
    /// The indexed range starts at or after `high`.
    Sa,
    /// The indexed range ends at or before `low`.
    Eb,
    /// The indexed range overlaps the value's range, which is already widened by the
    /// approximation (see the module `query`).
    Ap,
}

/// The prefix of `text` (`Eq` when none) and the rest. Two lower-case letters that are not
/// a prefix are an error: no date or number starts with a letter.
pub(super) fn split_prefix(text: &str) -> Parsed<(Prefix, &str)> {
    let b = text.as_bytes();
    if b.len() < 2 || !b[0].is_ascii_lowercase() || !b[1].is_ascii_lowercase() {
        return Ok((Prefix::Eq, text));
    }
    let prefix = match &b[..2] {
        b"eq" => Prefix::Eq,
        b"ne" => Prefix::Ne,
        b"gt" => Prefix::Gt,
        b"lt" => Prefix::Lt,
        b"ge" => Prefix::Ge,
        b"le" => Prefix::Le,
        b"sa" => Prefix::Sa,
        b"eb" => Prefix::Eb,
        b"ap" => Prefix::Ap,
        _ => {
            return Err(invalid(format!(
                "unknown prefix '{}' (eq, ne, gt, lt, ge, le, sa, eb, ap)",
                &text[..2]
            )));
        }
    };
    // Both bytes are ASCII, so 2 is a char boundary.
    Ok((prefix, &text[2..]))
}
