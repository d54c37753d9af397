//! The order a search's criteria are run in: one criterion, the likeliest to match few
//! resources, drives (read from its lookup index); every other criterion
//! of the searched resources themselves is probed per candidate by its owner (`EXISTS` on
//! the `(resource_type, resource_id, param, value…)` probe indexes of
//! `migrations/*/0015_search_probe_indexes.sql`). A common code such as `intent=order` is
//! then one short index range per candidate, never its whole row set per match, whatever
//! the planner's statistics say (none, right after a load). Chains, `_has`, composites and
//! system-level criteria keep their own form (`criteria::push_criterion`). On PostgreSQL a
//! driving reference to one resource is read in id order, each row looked up with its
//! probes ([`Filter`]), so the first page of a Patient with 20,000 matches stops after the
//! page.

use crate::search::ParamType;
use crate::search::query::{
    Criterion, ReferenceValue, StringValue, Test, TokenValue, UriValue, Value,
};

use super::COLUMNS;
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

/// A search's matches: the resources `r` that pass `conditions` and, when one criterion
/// drives, have a row of it (`driver`).
#[derive(Debug, Clone)]
pub struct Filter {
    pub driver: Option<Driver>,
    /// `r.deleted = … AND …`: every other condition, on `r`.
    pub conditions: Sql,
}

/// The driving criterion: its rows of one resource type.
#[derive(Debug, Clone)]
pub struct Driver {
    pub resource_type: String,
    table: &'static str,
    /// `resource_type = … AND param = … AND (values)`, on `table`.
    test: Sql,
    /// PostgreSQL, a reference to one resource (`patient=G`): the rows are read in
    /// `resource_id` order (`search_reference_lookup` ends in it,
    /// `migrations/*/0018_reference_lookup_order.sql`) and each looked up with its probes,
    /// so a page in the default order stops after its last match whatever the statistics
    /// say; a `resources` primary-key walk merged with the lookup (chosen for `r.id IN
    /// (…)`, and for a plain join, when a Patient's rows are many) reads every resource of
    /// the type whose id sorts before the grown Patient's. Other drivers, whose lookup
    /// gives no id order (a common code would be sorted whole), and SQLite, which walks an
    /// `IN` list in order already, keep `r.id IN (…)`.
    ordered: bool,
}

impl Driver {
    /// The driver of `criterion` (probeable, positive: see [`rank`]); `postgres`: read in
    /// order when its lookup gives that order.
    pub fn new(criterion: &Criterion, base: &str, postgres: bool) -> Self {
        let resource_type = criterion.resource_type.unwrap_or_default();
        let mut test = Sql::default();
        test.push("resource_type = ")
            .text(resource_type)
            .push(" AND param = ")
            .text(criterion.param);
        push_values(&mut test, &criterion.test, base);
        Driver {
            resource_type: resource_type.to_owned(),
            table: table(criterion.kind),
            test,
            ordered: postgres && one_reference(criterion),
        }
    }

    /// `SELECT DISTINCT <columns> FROM <table> WHERE <test>`, only ids beyond `bound`.
    fn push_rows(&self, sql: &mut Sql, columns: &str, bound: Option<&Bound>) {
        sql.push("SELECT DISTINCT ")
            .push(columns)
            .push(" FROM ")
            .push(self.table)
            .push(" WHERE ")
            .append(self.test.clone());
        if let Some(bound) = bound {
            sql.push(if bound.backwards {
                " AND resource_id < "
            } else {
                " AND resource_id > "
            })
            .text(bound.id.as_str());
        }
    }
}

/// Whether `criterion` is a reference to one resource by its `Type/id` or id: an equality on
/// `search_reference_lookup`'s first columns, whose rows then come in `resource_id` order.
fn one_reference(criterion: &Criterion) -> bool {
    matches!(
        &criterion.test,
        Test::Any(values) if matches!(values.as_slice(), [Value::Reference(ReferenceValue::Local { .. })])
    )
}

/// Where a page in the default order starts among the driver's rows: after (`backwards`:
/// before) this id.
pub struct Bound {
    pub id: String,
    pub backwards: bool,
}

impl Filter {
    /// The column the default order ends in: the driver's id when its rows come in order
    /// (the same as `r.id`, but the planner only knows the order of `d.resource_id`).
    pub fn id_column(&self) -> &'static str {
        match &self.driver {
            Some(driver) if driver.ordered => "d.resource_id",
            _ => "r.id",
        }
    }

    /// `FROM … WHERE …`: the matches as `r`, the driver's beyond `bound` only.
    pub fn source(&self, bound: Option<&Bound>) -> Sql {
        let mut sql = Sql::default();
        match &self.driver {
            Some(driver) if driver.ordered => {
                // Each candidate's resource and probes in a subquery of its own (`LIMIT 1`
                // keeps it one): the plan can only be the driver's rows in order, each
                // looked up, under the page's LIMIT; a merge join with a walk of the whole
                // primary key is not among its choices.
                sql.push("FROM (");
                driver.push_rows(&mut sql, "resource_id", bound);
                sql.push(") d CROSS JOIN LATERAL (SELECT ")
                    .push(COLUMNS)
                    .push(" FROM resources r WHERE r.id = d.resource_id AND ")
                    .append(self.conditions.clone())
                    .push(" LIMIT 1) r WHERE r.resource_type = ")
                    .text(driver.resource_type.as_str());
            }
            Some(driver) => {
                sql.push("FROM resources r WHERE ")
                    .append(self.conditions.clone())
                    .push(" AND r.id IN (");
                driver.push_rows(&mut sql, "resource_id", bound);
                sql.push(")");
            }
            None => {
                sql.push("FROM resources r WHERE ")
                    .append(self.conditions.clone());
            }
        }
        sql
    }

    /// `FROM … WHERE …` to count the matches: with a driver, its rows alone stand for `r`
    /// (`resource_type`, `id`, and `deleted` false: a tombstone keeps no index rows, see
    /// `engine::write`), so a count reads the index tables only, never `resources`.
    pub fn count_source(&self) -> Sql {
        let Some(driver) = &self.driver else {
            return self.source(None);
        };
        let mut sql = Sql::default();
        sql.push("FROM (");
        driver.push_rows(
            &mut sql,
            "resource_type, resource_id AS id, FALSE AS deleted",
            None,
        );
        sql.push(") r WHERE ").append(self.conditions.clone());
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::search::sql::Bind;

    fn filter(ordered: bool) -> Filter {
        let mut test = Sql::default();
        test.push("resource_type = ")
            .text("Observation")
            .push(" AND param = ")
            .text("patient")
            .push(" AND ((target_id = ")
            .text("g")
            .push("))");
        let mut conditions = Sql::default();
        conditions
            .push("r.deleted = ")
            .bind(Bind::Bool(false))
            .push(" AND r.resource_type = ")
            .text("Observation");
        Filter {
            driver: Some(Driver {
                resource_type: "Observation".into(),
                table: "search_reference",
                test,
                ordered,
            }),
            conditions,
        }
    }

    #[test]
    fn an_ordered_driver_is_joined_to_its_resources_from_the_cursor_on() {
        let bound = Bound {
            id: "o7".into(),
            backwards: false,
        };
        let sql = filter(true).source(Some(&bound));
        assert_eq!(
            sql.text,
            "FROM (SELECT DISTINCT resource_id FROM search_reference WHERE resource_type = $1 \
             AND param = $2 AND ((target_id = $3)) AND resource_id > $4) d \
             CROSS JOIN LATERAL (SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body \
             FROM resources r WHERE r.id = d.resource_id AND r.deleted = $5 AND r.resource_type = $6 \
             LIMIT 1) r WHERE r.resource_type = $7"
        );
        assert_eq!(filter(true).id_column(), "d.resource_id");
        assert_eq!(filter(false).id_column(), "r.id");
        assert_eq!(sql.binds[3], Bind::Text("o7".into()));
        let back = Bound {
            id: "o7".into(),
            backwards: true,
        };
        let unordered = filter(false).source(Some(&back));
        assert_eq!(
            unordered.text,
            "FROM resources r WHERE r.deleted = $1 AND r.resource_type = $2 AND r.id IN (\
             SELECT DISTINCT resource_id FROM search_reference WHERE resource_type = $3 \
             AND param = $4 AND ((target_id = $5)) AND resource_id < $6)"
        );
    }

    #[test]
    fn a_count_reads_the_driver_rows_alone() {
        assert_eq!(
            filter(true).count_source().text,
            "FROM (SELECT DISTINCT resource_type, resource_id AS id, FALSE AS deleted \
             FROM search_reference WHERE resource_type = $1 AND param = $2 AND ((target_id = $3))) r \
             WHERE r.deleted = $4 AND r.resource_type = $5"
        );
    }
}
