//! `uri` values: exact (default), `:above` and `:below`.

use super::super::Parsed;
use super::super::escape::unescape;
use super::unknown_modifier;
use crate::search::ParamType;

/// A uri value, compared with the index's `uri` column as written (no normalization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriValue {
    /// Default: the indexed uri equals it.
    Exact(String),
    /// `:above`: the indexed uri is a prefix of it (`http://a/b/c` finds `http://a/b`).
    Above(String),
    /// `:below`: the indexed uri starts with it (`http://a/b` finds `http://a/b/c`).
    Below(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Exact,
    Above,
    Below,
}

pub(super) fn mode(modifier: Option<&str>) -> Parsed<Mode> {
    match modifier {
        None => Ok(Mode::Exact),
        Some("above") => Ok(Mode::Above),
        Some("below") => Ok(Mode::Below),
        Some(other) => Err(unknown_modifier(other, ParamType::Uri)),
    }
}

pub(super) fn value(mode: Mode, item: &str) -> UriValue {
    let uri = unescape(item);
    match mode {
        Mode::Exact => UriValue::Exact(uri),
        Mode::Above => UriValue::Above(uri),
        Mode::Below => UriValue::Below(uri),
    }
}
