//! FHIR search, part 2: a search request's parameters parsed into a typed, validated
//! [`SearchQuery`] (pure: no SQL, no HTTP).
//!
//! Every value is already in the shape the index tables store (see `store::index` and
//! `migrations/*/0002_search_indexes.sql`): strings normalized with [`normalize_string`],
//! dates as `[start, end)` microseconds, numbers and quantities with their precision range,
//! references split into type / id / url, so compiling a query to SQL needs no more parsing.
//!
//! Rules beyond the letter of the spec (R4 search.html):
//! - a parameter with an empty value, and empty items of an OR list, are ignored;
//! - `name=a&name=b` is AND, `name=a,b` is OR; `\,` `\$` `\|` `\\` escape (see `escape.rs`);
//! - unknown parameters, and parameters of a system-level search other than the ones every
//!   type has, go to [`SearchQuery::unknown`]; anything malformed about a known parameter
//!   (value, modifier, chain) is a 400 whose diagnostics and expression name the parameter;
//! - chains (`subject:Patient.name`) without a type modifier follow the one target type of
//!   the reference parameter that has the chained parameter; more than one is a 400 asking
//!   for a modifier. At most [`MAX_HOPS`] links (chain and `_has`) per parameter;
//! - a search over the limits of `bounds` (parameters, OR values, values in all, chained
//!   parameters, `_sort` keys) is a 400 `too-costly` naming the limit;
//! - `ap` widens the value's range by 10% of its distance to now (dates) or 10% of the
//!   value (numbers, quantities), as the spec suggests;
//! - `_format` and `_pretty` are ignored; `_contained` / `_containedType` are rejected.
//!
//! [`normalize_string`]: super::normalize_string

pub mod bounds;
mod chain;
mod controls;
mod escape;
mod values;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;

use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};
use crate::fhir::validate::resource_types;

use super::{ParamType, SearchParam};

pub use chain::MAX_HOPS;
pub use controls::{Controls, Include, SortKey, Summary, Total};
pub use values::{
    ComponentValue, DateValue, NumberValue, Prefix, QuantityValue, ReferenceValue, StringValue,
    SystemCode, SystemMatch, TokenValue, UriValue, Value,
};

/// A parsed search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The searched type; `None` for a system-level search.
    pub resource_type: Option<&'static str>,
    /// `_type` of a system-level search (empty: every type).
    pub types: Vec<&'static str>,
    /// All must hold (AND).
    pub criteria: Vec<Criterion>,
    pub controls: Controls,
    /// Parameters ignored as unknown or unsupported, as written, once each: for a warning
    /// in the OperationOutcome, or a 400 under `Prefer: handling=strict`.
    pub unknown: Vec<String>,
}

/// One search parameter of the request: resources match when `test` holds for the index
/// rows of `param` of the resources reached through `chain`.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// The parameter as written (`subject:Patient.name:exact`), for messages.
    pub name: String,
    /// The links from the searched resources to the ones `param` is tested on (empty:
    /// the searched resources themselves).
    pub chain: Vec<Hop>,
    /// The type of the resources `param` is tested on; `None` in a system-level search.
    pub resource_type: Option<&'static str>,
    /// The parameter code, as in the index tables' `param` column.
    pub param: &'static str,
    /// Which index table holds `param`.
    pub kind: ParamType,
    pub test: Test,
}

/// One link of a chain: the `search_reference` rows of `source_type` resources whose
/// parameter `param` points at `target_type` resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// `Forward`: from the source to the target (`subject:Patient.name`); `Reverse`: from
    /// the target to the sources that refer to it (`_has:Observation:patient:code`).
    pub direction: Direction,
    pub source_type: &'static str,
    pub param: &'static str,
    pub target_type: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// What the index rows of a criterion's parameter must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `:missing=true`: no row; `:missing=false`: at least one.
    Missing(bool),
    /// Some row matches one of the values (OR).
    Any(Vec<Value>),
    /// Token `:not`: no row matches any of the values (resources without a row match).
    NotAny(Vec<Value>),
}

/// Parses the parameters of a search on `resource_type` (`None`: system-level search), in
/// request order with repeats kept, already percent-decoded. `ap` is relative to now.
pub fn parse_search(
    resource_type: Option<&str>,
    params: &[(String, String)],
) -> FhirResult<SearchQuery> {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    parse_search_at(resource_type, params, now_us)
}

/// [`parse_search`] with "now" given, in microseconds since the Unix epoch.
pub fn parse_search_at(
    resource_type: Option<&str>,
    params: &[(String, String)],
    now_us: i64,
) -> FhirResult<SearchQuery> {
    let resource_type = match resource_type {
        None => None,
        Some(name) => Some(
            static_type(name)
                .ok_or_else(|| FhirError::not_found(format!("Unknown resource type '{name}'")))?,
        ),
    };
    let mut query = SearchQuery {
        resource_type,
        types: Vec::new(),
        criteria: Vec::new(),
        controls: Controls::default(),
        unknown: Vec::new(),
    };
    for (name, value) in params {
        // No index value holds a control character, and PostgreSQL rejects NUL in text.
        if let Some(control) = name
            .chars()
            .chain(value.chars())
            .find(|c| (*c as u32) < 0x20 && !matches!(c, '\t' | '\r' | '\n'))
        {
            return Err(FhirError::bad_request(format!(
                "Search parameter '{name}': contains the control character U+{:04X}",
                control as u32
            ))
            .expression_at(name.clone()));
        }
        if !value.is_empty() {
            query
                .add(name, value, now_us)
                .and_then(|()| {
                    let includes = query.controls.include.len() + query.controls.revinclude.len();
                    bounds::check(&query.criteria, includes)
                })
                .map_err(|rejection| rejection.at(name))?;
        }
    }
    Ok(query)
}

impl SearchQuery {
    fn add(&mut self, name: &str, value: &str, now_us: i64) -> Parsed<()> {
        let base = &name[..name.find([':', '.']).unwrap_or(name.len())];
        let suffix = &name[base.len()..];
        match base {
            // Output format, not search.
            "_format" | "_pretty" => {}
            "_type" if self.resource_type.is_none() => {
                no_suffix(suffix)?;
                if !self.types.is_empty() {
                    return Err(invalid("may appear only once"));
                }
                self.types = escape::split(value, ',')
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .map(|t| {
                        static_type(t)
                            .ok_or_else(|| invalid(format!("'{t}' is not a resource type")))
                    })
                    .collect::<Parsed<_>>()?;
            }
            _ if controls::is_control(base) => {
                self.controls
                    .apply(self.resource_type, base, suffix, value)?;
            }
            _ => match chain::resolve(self.resource_type, name)? {
                None => {
                    if !self.unknown.iter().any(|u| u == name) {
                        self.unknown.push(name.to_owned());
                    }
                }
                Some(leaf) => {
                    if let Some(test) =
                        values::parse_test(leaf.param, leaf.modifier, value, now_us)?
                    {
                        self.criteria.push(Criterion {
                            name: name.to_owned(),
                            chain: leaf.chain,
                            resource_type: leaf.resource_type,
                            param: &leaf.param.code,
                            kind: leaf.param.kind,
                            test,
                        });
                    }
                }
            },
        }
        Ok(())
    }
}

/// Why a parameter is rejected; [`Rejection::at`] makes it a 400 naming the parameter.
#[derive(Debug)]
struct Rejection {
    code: IssueCode,
    message: String,
}

type Parsed<T> = Result<T, Rejection>;

/// A malformed parameter.
fn invalid(message: impl Into<String>) -> Rejection {
    Rejection {
        code: IssueCode::Invalid,
        message: message.into(),
    }
}

/// A well-formed parameter this server does not implement.
fn unsupported(message: impl Into<String>) -> Rejection {
    Rejection {
        code: IssueCode::NotSupported,
        message: message.into(),
    }
}

impl Rejection {
    fn at(self, name: &str) -> FhirError {
        FhirError::new(
            StatusCode::BAD_REQUEST,
            self.code,
            format!("Search parameter '{name}': {}", self.message),
        )
        .expression_at(name)
    }
}

fn no_suffix(suffix: &str) -> Parsed<()> {
    if suffix.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!("takes no modifier or chain ('{suffix}')")))
    }
}

/// The registry's own copy of a resource type name.
fn static_type(name: &str) -> Option<&'static str> {
    resource_types()
        .iter()
        .find(|t| *t == name)
        .map(String::as_str)
}

/// The parameters every resource type has: the only ones of a system-level search.
const COMMON_PARAMS: [&str; 6] = [
    "_id",
    "_lastUpdated",
    "_profile",
    "_security",
    "_source",
    "_tag",
];

/// The parameter `code` of `resource_type`, or of every type (system-level search).
fn lookup(resource_type: Option<&str>, code: &str) -> Option<&'static SearchParam> {
    match resource_type {
        Some(t) => super::param(t, code),
        // Every type has the common parameters, with the same definition.
        None if COMMON_PARAMS.contains(&code) => super::param("Patient", code),
        None => None,
    }
}
