//! The order a search's criteria are run in: one criterion, the likeliest to match few
//! resources, drives (`r.id IN (…)`, read from its lookup index); every other criterion
//! of the searched resources themselves is probed per candidate by its owner (`EXISTS` on
//! the `(resource_type, resource_id, param, value…)` probe indexes of
//! `migrations/*/0015_search_probe_indexes.sql`). A common code such as `intent=order` is
//! then one short index range per candidate, never its whole row set per match, whatever
//! the planner's statistics say (none, right after a load). Chains, `_has`, composites and
//! system-level criteria keep their own form (`criteria::push_criterion`).

use crate::search::ParamType;
use crate::search::query::{Criterion, StringValue, Test, TokenValue, UriValue, Value};

use super::criteria::{push_values, table};
use super::sql::Sql;

/// Token parameters whose codes come from a short, required value set: most resources
/// share a handful of codes, so they are the last to drive.
const FEW_CODES: [&str; 10] = [
    "status",
    "intent",
    "category",
    "clinical-status",
    "verification-status",
    "gender",
    "active",
    "class",
    "priority",
    "type",
];

/// The criterion to drive the search from: the lowest [`rank`] of those that can be
/// probed, the first on ties; `None` when none can (or `everything_probed`: another
/// condition, such as a Patient compartment, drives).
pub fn driver(criteria: &[Criterion], everything_probed: bool) -> Option<usize> {
    if everything_probed {
        return None;
    }
    criteria
        .iter()
        .enumerate()
        .filter_map(|(index, criterion)| rank(criterion).map(|rank| (rank, index)))
        .min()
        .map(|(_, index)| index)
}

/// Whether `criterion` is tested on the searched resource's own index rows, so it can be
/// probed by owner.
pub fn probeable(criterion: &Criterion) -> bool {
    criterion.chain.is_empty()
        && criterion.resource_type.is_some()
        && criterion.kind != ParamType::Composite
}

/// How many resources a criterion is likely to match, lower first; `None`: it cannot
/// drive (not probeable, or negated: `:not`, `:missing=true`).
fn rank(criterion: &Criterion) -> Option<u8> {
    if !probeable(criterion) {
        return None;
    }
    let values = match &criterion.test {
        Test::Any(values) => values,
        Test::Missing(false) => return Some(100),
        Test::Missing(true) | Test::NotAny(_) => return None,
    };
    values
        .iter()
        .map(|value| value_rank(criterion, value))
        .max()
}

fn value_rank(criterion: &Criterion, value: &Value) -> u8 {
    match value {
        Value::Token(_) if criterion.param == "_id" => 0,
        Value::Reference(_) => 10,
        Value::Token(TokenValue::OfType { .. }) => 5,
        Value::Token(_) if criterion.param == "identifier" => 5,
        Value::Uri(UriValue::Exact(_)) => 5,
        Value::String(StringValue::Exact(_)) => 15,
        Value::String(StringValue::StartsWith(_)) => 20,
        Value::Token(_) if FEW_CODES.contains(&criterion.param) => 70,
        Value::Token(TokenValue::Code(_)) => 25,
        Value::Token(TokenValue::Text(_)) => 35,
        Value::Quantity(_) | Value::Number(_) => 40,
        Value::String(StringValue::Contains(_)) | Value::Uri(_) => 45,
        Value::Date(_) => 50,
        Value::Composite(_) => 90,
    }
}

/// Appends `criterion` (probeable) as a test of `r` by its owner: `EXISTS` a row of the
/// parameter that passes the values, or `NOT EXISTS` for `:not` and `:missing=true`.
pub fn push_probe(sql: &mut Sql, criterion: &Criterion, base: &str) {
    let resource_type = criterion.resource_type.unwrap_or_default();
    sql.push(match criterion.test {
        Test::Missing(true) | Test::NotAny(_) => "NOT EXISTS (SELECT 1 FROM ",
        Test::Missing(false) | Test::Any(_) => "EXISTS (SELECT 1 FROM ",
    })
    .push(table(criterion.kind))
    .push(" t WHERE t.resource_type = ")
    .text(resource_type)
    .push(" AND t.resource_id = r.id AND t.param = ")
    .text(criterion.param);
    push_values(sql, &criterion.test, base);
    sql.push(")");
}
