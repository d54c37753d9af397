//! Running a parsed search against the index tables: matches, paging, totals, includes.

mod count;
mod criteria;
pub mod deadline;
mod export;
mod include;
mod keyset;
mod plan;
pub(super) mod sql;

use sqlx::Row;

use std::collections::HashSet;

use super::{Store, StoreResult, StoredResource, dispatch};
use crate::search::patient_link_params;
use crate::search::query::{Criterion, SearchQuery};
use criteria::push_criterion;
pub use export::{ExportScan, Population};
use keyset::page_sql;
pub use keyset::{Keyset, SortType, SortValue, sort_type};
use plan::{Driver, Filter};
pub(super) use sql::{Bind, Sql};

/// Where a page starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    /// The first page.
    Start,
    /// After this row in the search's order.
    After(Keyset),
    /// Before this row in the search's order (the previous page).
    Before(Keyset),
}

/// A search to run.
pub struct SearchSpec<'a> {
    pub query: &'a SearchQuery,
    /// The FHIR base URL, to recognise absolute references to this server.
    pub base: &'a str,
    /// Matches per page.
    pub count: i64,
    pub cursor: Cursor,
    /// Only resources in this Patient's compartment (`Patient/[id]/[type]`).
    pub patient_compartment: Option<&'a str>,
    /// Only what the caller's token reaches (`None`: everything).
    pub access: Option<&'a AccessFilter>,
}

/// The rows a caller may see: those of any group. Every type the caller reaches is in
/// one group; the resources a chain or `_has` passes through are limited by it too.
#[derive(Debug, Clone, Default)]
pub struct AccessFilter {
    pub groups: Vec<AccessGroup>,
}

impl AccessFilter {
    /// The limits on `resource_type` (empty: none), or `None` when it is out of reach.
    fn limits_of(&self, resource_type: &str) -> Option<&[FilterLimit]> {
        self.groups
            .iter()
            .find(|group| group.types.iter().any(|t| t == resource_type))
            .map(|group| group.limits.as_slice())
    }
}

/// Resources of these types, within one of the limits (no limits: all of them).
#[derive(Debug, Clone)]
pub struct AccessGroup {
    pub types: Vec<String>,
    pub limits: Vec<FilterLimit>,
}

/// One limit of a group: this Patient's data (when set: in their compartment, or for a type
/// outside it, referencing them) and matching these search criteria (when set).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterLimit {
    pub patient: Option<String>,
    pub criteria: Vec<Criterion>,
}

/// One page of results.
#[derive(Debug, Default)]
pub struct SearchPage {
    pub matches: Vec<StoredResource>,
    /// `_include` and `_revinclude` results, not counted as matches.
    pub included: Vec<StoredResource>,
    pub next: Option<Cursor>,
    pub previous: Option<Cursor>,
    pub total: Option<i64>,
}

/// How PostgreSQL plans a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Prepared once per connection and reused: fixed-shape queries.
    Cached,
    /// Planned on each run with its values: search SQL, whose best plan depends on them
    /// (a reused statement may switch to a generic plan that ignores them).
    PerRun,
}

/// The query of `$sql` with its values bound (for either engine's pool).
macro_rules! bound {
    ($sql:expr, $plan:expr) => {{
        let sql = $sql;
        let mut query =
            sqlx::query(sqlx::AssertSqlSafe(sql.text)).persistent($plan == Plan::Cached);
        for bind in sql.binds {
            query = match bind {
                $crate::store::search::sql::Bind::Text(value) => query.bind(value),
                $crate::store::search::sql::Bind::Int(value) => query.bind(value),
                $crate::store::search::sql::Bind::Float(value) => query.bind(value),
                $crate::store::search::sql::Bind::Bool(value) => query.bind(value),
            };
        }
        query
    }};
}
pub(super) use bound;

const COLUMNS: &str = "r.resource_type, r.id, r.version_id, r.last_updated, r.body";

/// A matching resource with its `_sort` values.
type Keyed = (StoredResource, Vec<Option<SortValue>>);

impl Store {
    pub async fn search(&self, spec: &SearchSpec<'_>) -> StoreResult<SearchPage> {
        self.search_in(spec, false).await
    }

    /// `Patient/[id]/$everything`: the search over `spec.patient_compartment` and what its
    /// resources reference, each once in the walk. Compartment resources are the matches;
    /// the others are returned as included.
    pub async fn everything(&self, spec: &SearchSpec<'_>) -> StoreResult<SearchPage> {
        let mut page = self.search_in(spec, true).await?;
        let Some(patient) = spec.patient_compartment else {
            return Ok(page);
        };
        let members = self.compartment_members(patient, &page.matches).await?;
        let (matches, referenced): (Vec<_>, Vec<_>) = std::mem::take(&mut page.matches)
            .into_iter()
            .partition(|stored| {
                members.contains(&(stored.resource_type.clone(), stored.id.clone()))
            });
        page.matches = matches;
        page.included.splice(0..0, referenced);
        Ok(page)
    }

    /// Which of `resources` are in `patient`'s compartment.
    async fn compartment_members(
        &self,
        patient: &str,
        resources: &[StoredResource],
    ) -> StoreResult<HashSet<(String, String)>> {
        if resources.is_empty() {
            return Ok(HashSet::new());
        }
        let mut sql = Sql::default();
        sql.push(
            "SELECT resource_type, resource_id FROM resource_compartment \
             WHERE compartment_type = ",
        )
        .text("Patient")
        .push(" AND compartment_id = ")
        .text(patient)
        .push(" AND (resource_type, resource_id) IN (");
        include::push_keys(&mut sql, resources);
        sql.push(")");
        dispatch!(self, pool => {
            let rows = bound!(sql, Plan::PerRun).fetch_all(pool).await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<HashSet<_>, sqlx::Error>>()
                .map_err(Into::into)
        })
    }

    async fn search_in(&self, spec: &SearchSpec<'_>, everything: bool) -> StoreResult<SearchPage> {
        let filter = filter(spec, everything, matches!(self, Store::Postgres(_)));
        let mut page = SearchPage::default();
        if spec.count > 0 {
            self.search_page(spec, filter.clone(), &mut page).await?;
        }
        self.set_total(
            spec.query.controls.total,
            spec.count == 0,
            filter,
            &mut page,
        )
        .await?;
        page.included =
            include::included(self, spec.query, &page.matches, spec.access, spec.base).await?;
        Ok(page)
    }

    /// The page's matches and the cursors of its neighbours.
    async fn search_page(
        &self,
        spec: &SearchSpec<'_>,
        filter: Filter,
        page: &mut SearchPage,
    ) -> StoreResult<()> {
        let keys = &spec.query.controls.sort;
        let sql = page_sql(keys, filter, &spec.cursor, spec.count + 1);
        let types: Vec<SortType> = keys.iter().map(sort_type).collect();
        let mut rows = self.fetch_keyed(sql, Plan::PerRun, &types).await?;
        let more = rows.len() as i64 > spec.count;
        rows.truncate(spec.count as usize);
        let backwards = matches!(spec.cursor, Cursor::Before(_));
        if backwards {
            rows.reverse();
        }
        let first = rows.first().map(keyset);
        let last = rows.last().map(keyset);
        // Walking back, the page after this one is where the walk came from.
        let (has_next, has_previous) = if backwards {
            (true, more)
        } else {
            (more, spec.cursor != Cursor::Start)
        };
        if has_next {
            page.next = last.map(Cursor::After);
        }
        if has_previous {
            page.previous = first.map(Cursor::Before);
        }
        if spec.cursor == Cursor::Start && !more {
            // The whole result fits on the first page: its size is the total, for free.
            page.total = Some(rows.len() as i64);
        }
        page.matches = rows.into_iter().map(|(stored, _)| stored).collect();
        Ok(())
    }

    pub(super) async fn fetch(&self, sql: Sql, plan: Plan) -> StoreResult<Vec<StoredResource>> {
        let rows = self.fetch_keyed(sql, plan, &[]).await?;
        Ok(rows.into_iter().map(|(stored, _)| stored).collect())
    }

    /// Rows of the five resource columns, then one column of each type in `types`.
    async fn fetch_keyed(
        &self,
        sql: Sql,
        plan: Plan,
        types: &[SortType],
    ) -> StoreResult<Vec<Keyed>> {
        match self {
            Store::Postgres(pool) => {
                let mut search = deadline::postgres(pool).await?;
                let rows = bound!(sql, plan).fetch_all(&mut *search.tx).await?;
                search.tx.commit().await?;
                keyed_rows(&rows, types)
            }
            Store::Sqlite(pool) => {
                let mut conn = deadline::sqlite(pool).await?;
                let rows = bound!(sql, plan).fetch_all(&mut *conn).await?;
                conn.finish().await?;
                keyed_rows(&rows, types)
            }
        }
    }
}

/// Search result rows as resources with their `_sort` values.
fn keyed_rows<R: Row>(rows: &[R], types: &[SortType]) -> StoreResult<Vec<Keyed>>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|row| {
            let stored = StoredResource {
                resource_type: row.try_get(0)?,
                id: row.try_get(1)?,
                version_id: row.try_get(2)?,
                last_updated: row.try_get(3)?,
                deleted: false,
                body: row.try_get(4)?,
                patient: None,
            };
            Ok((stored, sort_values(row, types)?))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(Into::into)
}

/// The `_sort` values after the five resource columns of `row`.
fn sort_values<R: Row>(row: &R, types: &[SortType]) -> Result<Vec<Option<SortValue>>, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    types
        .iter()
        .enumerate()
        .map(|(index, sort_type)| {
            let index = 5 + index;
            Ok(match sort_type {
                SortType::Text => row
                    .try_get::<Option<String>, _>(index)?
                    .map(SortValue::Text),
                SortType::Int => row.try_get::<Option<i64>, _>(index)?.map(SortValue::Int),
                SortType::Float => row.try_get::<Option<f64>, _>(index)?.map(SortValue::Float),
            })
        })
        .collect()
}

fn keyset((stored, values): &Keyed) -> Keyset {
    Keyset {
        values: values.clone(),
        resource_type: stored.resource_type.clone(),
        id: stored.id.clone(),
    }
}

/// The search's matches, without paging; with `everything`, the compartment takes in what
/// its resources reference. `postgres`: a driver whose lookup gives the id order is read in
/// it (see `plan::Driver`).
fn filter(spec: &SearchSpec<'_>, everything: bool, postgres: bool) -> Filter {
    let mut sql = Sql::default();
    sql.push("r.deleted = ").bind(Bind::Bool(false));
    match spec.query.resource_type {
        Some(resource_type) => {
            sql.push(" AND r.resource_type = ").text(resource_type);
        }
        None if !spec.query.types.is_empty() => {
            sql.push(" AND r.resource_type IN (");
            for (index, resource_type) in spec.query.types.iter().enumerate() {
                if index > 0 {
                    sql.push(", ");
                }
                sql.text(*resource_type);
            }
            sql.push(")");
        }
        None => {}
    }
    if let Some(patient) = spec.patient_compartment {
        sql.push(" AND ");
        if everything {
            sql.push("(");
            push_in_compartment(&mut sql, patient);
            sql.push(" OR ");
            push_referenced_by_compartment(&mut sql, patient);
            sql.push(")");
        } else {
            push_in_compartment(&mut sql, patient);
        }
    }
    // In a Patient's compartment the compartment drives; otherwise one criterion does.
    let criteria = &spec.query.criteria;
    let driver = plan::driver(criteria, spec.patient_compartment.is_some());
    let mut driver_rows = None;
    for (index, criterion) in criteria.iter().enumerate() {
        if Some(index) == driver && criterion.resource_type == spec.query.resource_type {
            driver_rows = Some(Driver::new(criterion, spec.base, postgres));
            continue;
        }
        sql.push(" AND ");
        if Some(index) != driver && plan::probeable(criterion) {
            plan::push_probe(&mut sql, criterion, spec.base);
        } else {
            push_criterion(&mut sql, criterion, spec.base, spec.access);
        }
    }
    if let Some(access) = spec.access {
        let types: Vec<&str> = match spec.query.resource_type {
            Some(resource_type) => vec![resource_type],
            None => spec.query.types.clone(),
        };
        sql.push(" AND ");
        push_access(&mut sql, access, spec.base, &types);
    }
    Filter {
        driver: driver_rows,
        conditions: sql,
    }
}

fn push_in_compartment(sql: &mut Sql, patient: &str) {
    sql.push("r.id IN (SELECT resource_id FROM resource_compartment WHERE compartment_type = ")
        .text("Patient")
        .push(" AND compartment_id = ")
        .text(patient)
        .push(" AND resource_type = r.resource_type)");
}

/// The resources that resources of `patient`'s compartment reference (not through a
/// composite's components).
fn push_referenced_by_compartment(sql: &mut Sql, patient: &str) {
    sql.push(
        "(r.resource_type, r.id) IN (SELECT s.target_type, s.target_id FROM search_reference s \
         JOIN resource_compartment c ON c.resource_type = s.resource_type \
         AND c.resource_id = s.resource_id WHERE c.compartment_type = ",
    )
    .text("Patient")
    .push(" AND c.compartment_id = ")
    .text(patient)
    .push(" AND s.tuple_id IS NULL AND s.target_id IS NOT NULL)");
}

/// `(group OR group …)`, each `type IN (…) AND (limit OR limit …)`, for the groups of
/// `types` (empty: every group); no group: nothing.
pub(super) fn push_access(sql: &mut Sql, access: &AccessFilter, base: &str, types: &[&str]) {
    let wanted =
        |resource_type: &String| types.is_empty() || types.contains(&resource_type.as_str());
    let groups: Vec<(Vec<&String>, &[FilterLimit])> = access
        .groups
        .iter()
        .map(|group| {
            let kept: Vec<&String> = group.types.iter().filter(|t| wanted(t)).collect();
            (kept, group.limits.as_slice())
        })
        .filter(|(kept, _)| !kept.is_empty())
        .collect();
    if groups.is_empty() {
        sql.push("1 = 0");
        return;
    }
    sql.push("(");
    for (index, (group_types, limits)) in groups.iter().enumerate() {
        if index > 0 {
            sql.push(" OR ");
        }
        sql.push("(r.resource_type IN (");
        for (i, resource_type) in group_types.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.text(resource_type.as_str());
        }
        sql.push(")");
        if !limits.is_empty() {
            sql.push(" AND ");
            push_limits(sql, limits, group_types, base);
        }
        sql.push(")");
    }
    sql.push(")");
}

/// `(limit OR limit …)` on `r`, a resource of one of `types`.
fn push_limits(sql: &mut Sql, limits: &[FilterLimit], types: &[&String], base: &str) {
    sql.push("(");
    for (i, limit) in limits.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(1 = 1");
        if let Some(patient) = &limit.patient {
            sql.push(" AND ");
            push_patient_data(sql, patient, types);
        }
        for criterion in &limit.criteria {
            sql.push(" AND ");
            // A scope's own filter, not limited again.
            push_criterion(sql, criterion, base, None);
        }
        sql.push(")");
    }
    sql.push(")");
}

/// `r` is `patient`'s data: in their compartment, or of a type outside the compartment that
/// references them through one of its `patient_link_params` (the SQL form of
/// `search::patient_owners`).
fn push_patient_data(sql: &mut Sql, patient: &str, types: &[&String]) {
    sql.push("(");
    push_in_compartment(sql, patient);
    for resource_type in types {
        let params: Vec<&str> = patient_link_params(resource_type)
            .map(|param| &*param.code)
            .collect();
        if params.is_empty() {
            continue;
        }
        sql.push(" OR (r.resource_type = ")
            .text(resource_type.as_str())
            .push(" AND r.id IN (SELECT resource_id FROM search_reference WHERE resource_type = ")
            .text(resource_type.as_str())
            .push(" AND param IN (");
        for (i, param) in params.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.text(*param);
        }
        sql.push(") AND target_type = ")
            .text("Patient")
            .push(" AND target_id = ")
            .text(patient)
            .push(" AND url IS NULL))");
    }
    sql.push(")");
}

/// Appends to a set of `resource_type` ids (a chain's or `_has`'s inner resources) the
/// condition that each is within `access`: nothing when the type is not limited, no id
/// when it is out of reach.
pub(super) fn push_within(
    sql: &mut Sql,
    ids: Sql,
    resource_type: &str,
    access: Option<&AccessFilter>,
    base: &str,
) {
    let limits = match access.map(|access| access.limits_of(resource_type)) {
        None | Some(Some([])) => {
            sql.append(ids);
            return;
        }
        Some(None) => {
            sql.push("SELECT id FROM resources WHERE 1 = 0");
            return;
        }
        Some(Some(limits)) => limits,
    };
    let resource_type = resource_type.to_owned();
    sql.push("SELECT r.id FROM resources r WHERE r.resource_type = ")
        .text(resource_type.as_str())
        .push(" AND r.id IN (");
    sql.append(ids);
    sql.push(") AND ");
    push_limits(sql, limits, &[&resource_type], base);
}
