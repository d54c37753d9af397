//! How much one search may ask for, checked while it is parsed so that a costly search is a
//! 400 naming the limit before any SQL runs (and never reaches the engines' own limits:
//! SQLite's expression depth, PostgreSQL's 65,535 bound values).
//!
//! The limits are generous for real clients (US Core apps send a handful of parameters with
//! a few OR values each; `_id` lists of a page of ids fit) and bound the work of a hostile
//! one: each parameter is a subquery, each OR value a condition in it, each chain or `_has`
//! link a join.

use super::{Criterion, Parsed, Rejection, Test};
use crate::fhir::outcome::IssueCode;

/// Most parameters that select or include (each occurrence of a repeated one counts).
pub const MAX_PARAMS: usize = 100;
/// Most comma-separated (OR) values of one parameter.
pub const MAX_OR_VALUES: usize = 100;
/// Most values of all parameters together.
pub const MAX_TOTAL_VALUES: usize = 500;
/// Most parameters with a chain or `_has` (each has at most `MAX_HOPS` links).
pub const MAX_CHAINED_PARAMS: usize = 10;
/// Most `_sort` keys.
pub const MAX_SORT_KEYS: usize = 10;

/// A search over one of the limits.
pub(super) fn too_costly(message: impl Into<String>) -> Rejection {
    Rejection {
        code: IssueCode::TooCostly,
        message: message.into(),
    }
}

/// Checks the criteria parsed so far and `includes` (`_include` and `_revinclude`) against
/// the limits; `last` is the criterion just added.
pub(super) fn check(criteria: &[Criterion], includes: usize) -> Parsed<()> {
    if let Some(last) = criteria.last() {
        let values = value_count(last);
        if values > MAX_OR_VALUES {
            return Err(too_costly(format!(
                "has {values} values; at most {MAX_OR_VALUES} OR values per parameter are allowed"
            )));
        }
    }
    let params = criteria.len() + includes;
    if params > MAX_PARAMS {
        return Err(too_costly(format!(
            "the search has more than {MAX_PARAMS} parameters, the most allowed"
        )));
    }
    let total: usize = criteria.iter().map(value_count).sum();
    if total > MAX_TOTAL_VALUES {
        return Err(too_costly(format!(
            "the search has more than {MAX_TOTAL_VALUES} values in all, the most allowed"
        )));
    }
    let chained = criteria.iter().filter(|c| !c.chain.is_empty()).count();
    if chained > MAX_CHAINED_PARAMS {
        return Err(too_costly(format!(
            "the search has more than {MAX_CHAINED_PARAMS} chained or _has parameters, the most allowed"
        )));
    }
    Ok(())
}

fn value_count(criterion: &Criterion) -> usize {
    match &criterion.test {
        Test::Missing(_) => 1,
        Test::Any(values) | Test::NotAny(values) => values.len(),
    }
}
