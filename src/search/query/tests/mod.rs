//! `parse_search` on whole requests: one file per area.

mod chains;
mod controls;
mod robustness;
mod values;

use axum::http::StatusCode;

use super::*;
use crate::fhir::outcome::FhirError;

/// 2025-01-01T00:00:00Z, the "now" of every test.
const NOW: i64 = 1_735_689_600_000_000;

fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
    query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse(resource_type: Option<&str>, query: &[(&str, &str)]) -> SearchQuery {
    parse_search_at(resource_type, &pairs(query), NOW)
        .unwrap_or_else(|e| panic!("{query:?}: {}", e.summary()))
}

/// The one criterion of `name=value` on `resource_type`.
fn criterion(resource_type: &str, name: &str, value: &str) -> Criterion {
    let mut query = parse(Some(resource_type), &[(name, value)]);
    assert!(query.unknown.is_empty(), "{:?}", query.unknown);
    assert_eq!(query.criteria.len(), 1, "{name}={value}");
    query.criteria.remove(0)
}

/// The values of the one criterion of `name=value` (a `Test::Any`).
fn values(resource_type: &str, name: &str, value: &str) -> Vec<Value> {
    match criterion(resource_type, name, value).test {
        Test::Any(values) => values,
        other => panic!("{name}={value}: {other:?}"),
    }
}

/// The one value of `name=value`.
fn value(resource_type: &str, name: &str, value: &str) -> Value {
    let mut all = values(resource_type, name, value);
    assert_eq!(all.len(), 1, "{name}={value}");
    all.remove(0)
}

/// The error of a request that must fail with a 400 naming `name` (diagnostics and
/// expression), with issue code `code`; returns the diagnostics.
fn rejected(
    resource_type: Option<&str>,
    query: &[(&str, &str)],
    name: &str,
    code: IssueCode,
) -> String {
    let error: FhirError = match parse_search_at(resource_type, &pairs(query), NOW) {
        Ok(parsed) => panic!("{query:?} accepted: {parsed:?}"),
        Err(error) => error,
    };
    assert_eq!(error.status, StatusCode::BAD_REQUEST, "{query:?}");
    assert_eq!(error.issues.len(), 1);
    let issue = &error.issues[0];
    assert_eq!(issue.code, code, "{query:?}: {}", issue.diagnostics);
    assert_eq!(issue.expression.as_deref(), Some(name), "{query:?}");
    assert!(
        issue.diagnostics.contains(&format!("'{name}'")),
        "{query:?}: {}",
        issue.diagnostics
    );
    issue.diagnostics.clone()
}

/// [`rejected`] for one invalid parameter of a type-level search.
fn invalid_param(resource_type: &str, name: &str, value: &str) -> String {
    rejected(
        Some(resource_type),
        &[(name, value)],
        name,
        IssueCode::Invalid,
    )
}
