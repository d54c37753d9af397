//! Conditional references and matches (`Patient?identifier=system|value`): the criteria of
//! conditional create, update and delete and of conditional references, run through search
//! with the caller's search limits (a match never sees what the caller could not search).

use axum::http::StatusCode;

use crate::access::check::search_filter;
use crate::access::reach::Access;
use crate::access::scope::Permission;
use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};
use crate::fhir::validate::is_resource_type;
use crate::search::query::{SearchQuery, parse_search};
use crate::store::{Cursor, SearchSpec, Store};

/// `_format` and `_pretty` shape the response; they are not criteria.
pub fn is_format_param(name: &str) -> bool {
    name == "_format" || name == "_pretty"
}

/// A parsed `Type?params` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub resource_type: String,
    query: SearchQuery,
}

impl Condition {
    /// Parses `Type?query`; `None` when `text` is not a conditional URL at all.
    pub fn parse_reference(text: &str) -> Option<FhirResult<Condition>> {
        let (resource_type, query) = text.split_once('?')?;
        if !is_resource_type(resource_type) {
            return None;
        }
        Some(Self::parse(resource_type, query))
    }

    /// Parses the query part of a conditional interaction on `resource_type`. Every
    /// parameter must be understood: ignoring one would widen the match.
    pub fn parse(resource_type: &str, query: &str) -> FhirResult<Condition> {
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .filter(|(name, _)| !is_format_param(name))
            .collect();
        Self::from_query(resource_type, query, &params)
    }

    /// The condition of a conditional interaction whose query arrived as parameters
    /// (`PUT [type]?…`, `DELETE [type]?…`).
    pub fn from_params(resource_type: &str, params: &[(String, String)]) -> FhirResult<Condition> {
        let params: Vec<(String, String)> = params
            .iter()
            .filter(|(name, _)| !is_format_param(name))
            .cloned()
            .collect();
        let mut text = form_urlencoded::Serializer::new(String::new());
        text.extend_pairs(&params);
        Self::from_query(resource_type, &text.finish(), &params)
    }

    /// `query_text` names the query in errors.
    fn from_query(
        resource_type: &str,
        query_text: &str,
        params: &[(String, String)],
    ) -> FhirResult<Condition> {
        let query = parse_search(Some(resource_type), params)?;
        if let Some(unknown) = query.unknown.first() {
            return Err(FhirError::new(
                StatusCode::BAD_REQUEST,
                IssueCode::NotSupported,
                format!(
                    "conditional match {resource_type}?{query_text}: parameter {unknown:?} is not a search parameter of {resource_type}"
                ),
            ));
        }
        if query.criteria.is_empty() {
            return Err(FhirError::bad_request(format!(
                "the conditional match {resource_type}?{query_text} has no criteria"
            )));
        }
        Ok(Condition {
            resource_type: resource_type.to_string(),
            query,
        })
    }

    /// Ids of live resources that meet the criteria and that `access` may search (at most
    /// two: enough to tell "none", "one" and "several" apart).
    pub async fn matches(
        &self,
        store: &Store,
        base: &str,
        access: &Access,
    ) -> FhirResult<Vec<String>> {
        let filter = search_filter(access, &[&self.resource_type], Permission::Search)?;
        let page = store
            .search(&SearchSpec {
                access: filter.as_ref(),
                query: &self.query,
                base,
                count: 2,
                cursor: Cursor::Start,
                patient_compartment: None,
            })
            .await?;
        Ok(page.matches.into_iter().map(|stored| stored.id).collect())
    }

    /// The one matching id, or an error naming the reference when there are none or several.
    pub async fn resolve_one(
        &self,
        store: &Store,
        base: &str,
        text: &str,
        access: &Access,
    ) -> FhirResult<String> {
        let mut ids = self.matches(store, base, access).await?;
        match ids.len() {
            1 => Ok(ids.remove(0)),
            0 => Err(FhirError::new(
                StatusCode::PRECONDITION_FAILED,
                IssueCode::NotFound,
                format!("the conditional reference {text:?} matches no resource"),
            )),
            _ => Err(FhirError::new(
                StatusCode::PRECONDITION_FAILED,
                IssueCode::Duplicate,
                format!("the conditional reference {text:?} matches more than one resource"),
            )),
        }
    }
}

/// Calls `visit` on every `reference` string in a resource (including in contained resources).
pub fn for_each_reference(value: &mut serde_json::Value, visit: &mut dyn FnMut(&mut String)) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    serde_json::Value::String(text) if key == "reference" => visit(text),
                    _ => for_each_reference(child, visit),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                for_each_reference(item, visit);
            }
        }
        _ => {}
    }
}
