//! `_include` and `_revinclude`: resources the matches point at, and that point at them.

use std::collections::HashSet;

use super::sql::{Bind, Sql};
use super::{AccessFilter, Plan, push_access};
use crate::search::query::{Include, SearchQuery};
use crate::store::{Store, StoreResult, StoredResource};

/// Rounds of `:iterate` followed at most, so a cycle of references ends.
const MAX_ITERATIONS: usize = 3;

/// The included resources of a page, each once, none of them a match. Only resources
/// within `access` are included, and only they lead `:iterate` further.
pub async fn included(
    store: &Store,
    query: &SearchQuery,
    matches: &[StoredResource],
    access: Option<&AccessFilter>,
    base: &str,
) -> StoreResult<Vec<StoredResource>> {
    let controls = &query.controls;
    if matches.is_empty() || (controls.include.is_empty() && controls.revinclude.is_empty()) {
        return Ok(Vec::new());
    }
    let mut seen: HashSet<(String, String)> = matches
        .iter()
        .map(|stored| (stored.resource_type.clone(), stored.id.clone()))
        .collect();
    let mut included = Vec::new();
    let mut round: Vec<&StoredResource> = matches.iter().collect();
    let mut found_in_round;
    for iteration in 0..=MAX_ITERATIONS {
        let wanted = |include: &&Include| iteration == 0 || include.iterate;
        let mut found = Vec::new();
        for include in controls.include.iter().filter(wanted) {
            let sql = within(forward(include, &round), access, base);
            found.extend(store.fetch(sql, Plan::PerRun).await?);
        }
        for include in controls.revinclude.iter().filter(wanted) {
            let sql = within(reverse(include, &round), access, base);
            found.extend(store.fetch(sql, Plan::PerRun).await?);
        }
        found_in_round = Vec::new();
        for stored in found {
            if seen.insert((stored.resource_type.clone(), stored.id.clone())) {
                found_in_round.push(stored);
            }
        }
        if found_in_round.is_empty() {
            break;
        }
        let start = included.len();
        included.extend(found_in_round);
        round = included[start..].iter().collect();
    }
    Ok(included)
}

/// `sql` limited to the resources within `access`.
fn within(mut sql: Sql, access: Option<&AccessFilter>, base: &str) -> Sql {
    if let Some(access) = access {
        sql.push(" AND ");
        push_access(&mut sql, access, base, &[]);
    }
    sql
}

/// Resources that `round`'s resources reference through the include's parameter.
fn forward(include: &Include, round: &[&StoredResource]) -> Sql {
    let mut sql = select_live();
    sql.push(" AND (r.resource_type, r.id) IN (SELECT target_type, target_id FROM search_reference WHERE (resource_type, resource_id) IN (");
    push_keys(&mut sql, round.iter().copied());
    sql.push(")");
    push_include_filters(&mut sql, include);
    if let Some(target_type) = include.target_type {
        sql.push(" AND target_type = ").text(target_type);
    }
    sql.push(")");
    sql
}

/// Resources that reference `round`'s resources through the include's parameter.
fn reverse(include: &Include, round: &[&StoredResource]) -> Sql {
    let mut sql = select_live();
    sql.push(" AND (r.resource_type, r.id) IN (SELECT resource_type, resource_id FROM search_reference WHERE (target_type, target_id) IN (");
    push_keys(&mut sql, round.iter().copied());
    sql.push(")");
    push_include_filters(&mut sql, include);
    sql.push(")");
    sql
}

fn select_live() -> Sql {
    let mut sql = Sql::default();
    sql.push("SELECT ")
        .push(super::COLUMNS)
        .push(" FROM resources r WHERE r.deleted = ")
        .bind(Bind::Bool(false));
    sql
}

fn push_include_filters(sql: &mut Sql, include: &Include) {
    if let Some(source_type) = include.source_type {
        sql.push(" AND resource_type = ").text(source_type);
    }
    match include.param {
        Some(param) => {
            sql.push(" AND param = ").text(param);
        }
        // `*`: every reference parameter, not the rows of a composite's components.
        None => {
            sql.push(" AND tuple_id IS NULL");
        }
    }
}

/// `VALUES ($1, $2), …` of the resources' keys.
pub(super) fn push_keys<'a>(
    sql: &mut Sql,
    resources: impl IntoIterator<Item = &'a StoredResource>,
) {
    sql.push("VALUES ");
    for (index, stored) in resources.into_iter().enumerate() {
        if index > 0 {
            sql.push(", ");
        }
        sql.push("(")
            .text(stored.resource_type.as_str())
            .push(", ")
            .text(stored.id.as_str())
            .push(")");
    }
}
