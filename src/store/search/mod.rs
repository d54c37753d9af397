//! Running a parsed search against the index tables: matches, paging, totals, includes.

mod criteria;
mod include;
pub(super) mod sql;

use sqlx::Row;

use super::{Store, StoreResult, StoredResource, dispatch};
use crate::search::query::{SearchQuery, SortKey, Total};
use criteria::{push_criterion, table};
pub(super) use sql::{Bind, Sql};

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The first page.
    Start,
    /// After this `(type, id)` in the default order (keyset paging).
    After(String, String),
    /// Before this `(type, id)` in the default order (the previous page).
    Before(String, String),
    /// After this many matches (pages of a `_sort`ed search).
    Offset(i64),
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

/// The query of `$sql` with its values bound (for either engine's pool).
macro_rules! bound {
    ($sql:expr) => {{
        let sql = $sql;
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.text));
        for bind in sql.binds {
            query = match bind {
                Bind::Text(value) => query.bind(value),
                Bind::Int(value) => query.bind(value),
                Bind::Float(value) => query.bind(value),
                Bind::Bool(value) => query.bind(value),
            };
        }
        query
    }};
}

const COLUMNS: &str = "r.resource_type, r.id, r.version_id, r.last_updated, r.body";

impl Store {
    pub async fn search(&self, spec: &SearchSpec<'_>) -> StoreResult<SearchPage> {
        let filter = filter(spec);
        let mut page = SearchPage::default();
        if spec.count > 0 {
            let backwards = matches!(spec.cursor, Cursor::Before(..));
            let mut sql = Sql::default();
            sql.push("SELECT ")
                .push(COLUMNS)
                .push(" FROM resources r WHERE ");
            sql.append(filter.clone());
            push_cursor(&mut sql, &spec.cursor);
            push_order(&mut sql, &spec.query.controls.sort, backwards);
            sql.push(" LIMIT ").int(spec.count + 1);
            if let Cursor::Offset(offset) = spec.cursor {
                sql.push(" OFFSET ").int(offset);
            }
            let mut matches = self.fetch(sql).await?;
            let more = matches.len() as i64 > spec.count;
            matches.truncate(spec.count as usize);
            if backwards {
                matches.reverse();
            }
            let key = |stored: &StoredResource| (stored.resource_type.clone(), stored.id.clone());
            match (&spec.cursor, spec.query.controls.sort.is_empty()) {
                // Keyset pages (the default order): neighbours are named by the edge keys.
                (Cursor::Before(..), true) => {
                    page.next = matches
                        .last()
                        .map(|last| Cursor::After(key(last).0, key(last).1));
                    if more {
                        page.previous = matches
                            .first()
                            .map(|first| Cursor::Before(key(first).0, key(first).1));
                    }
                }
                (cursor, true) => {
                    if more {
                        page.next = matches
                            .last()
                            .map(|last| Cursor::After(key(last).0, key(last).1));
                    }
                    if *cursor != Cursor::Start {
                        page.previous = matches
                            .first()
                            .map(|first| Cursor::Before(key(first).0, key(first).1));
                    }
                }
                // `_sort`ed pages are numbered by position.
                (cursor, false) => {
                    let offset = match cursor {
                        Cursor::Offset(offset) => *offset,
                        _ => 0,
                    };
                    if more {
                        page.next = Some(Cursor::Offset(offset + spec.count));
                    }
                    if offset > 0 {
                        page.previous = Some(Cursor::Offset((offset - spec.count).max(0)));
                    }
                }
            }
            if spec.cursor == Cursor::Start && !more {
                // The whole result fits on the first page: its size is the total, for free.
                page.total = Some(matches.len() as i64);
            }
            page.matches = matches;
        }
        let wants_total = matches!(
            spec.query.controls.total,
            Some(Total::Accurate | Total::Estimate)
        ) || spec.count == 0;
        if page.total.is_none() && wants_total {
            let mut sql = Sql::default();
            sql.push("SELECT COUNT(*) FROM resources r WHERE ");
            sql.append(filter.clone());
            page.total = Some(self.fetch_count(sql).await?);
        }
        page.included = include::included(self, spec.query, &page.matches).await?;
        Ok(page)
    }

    pub(super) async fn fetch(&self, sql: Sql) -> StoreResult<Vec<StoredResource>> {
        dispatch!(self, pool => {
            let query = bound!(sql);
            let rows = query.fetch_all(pool).await?;
            rows.into_iter()
                .map(|row| {
                    Ok(StoredResource {
                        resource_type: row.try_get(0)?,
                        id: row.try_get(1)?,
                        version_id: row.try_get(2)?,
                        last_updated: row.try_get(3)?,
                        deleted: false,
                        body: row.try_get(4)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(Into::into)
        })
    }

    async fn fetch_count(&self, sql: Sql) -> StoreResult<i64> {
        dispatch!(self, pool => {
            let query = bound!(sql);
            let row = query.fetch_one(pool).await?;
            Ok(row.try_get::<i64, _>(0)?)
        })
    }
}

/// The WHERE conditions of the search, without paging.
fn filter(spec: &SearchSpec<'_>) -> Sql {
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
        sql.push(
            " AND r.id IN (SELECT resource_id FROM resource_compartment WHERE compartment_type = ",
        )
        .text("Patient")
        .push(" AND compartment_id = ")
        .text(patient)
        .push(" AND resource_type = r.resource_type)");
    }
    for criterion in &spec.query.criteria {
        sql.push(" AND ");
        push_criterion(&mut sql, criterion, spec.base);
    }
    sql
}

fn push_cursor(sql: &mut Sql, cursor: &Cursor) {
    let (resource_type, id, comparison) = match cursor {
        Cursor::After(resource_type, id) => (resource_type, id, " > "),
        Cursor::Before(resource_type, id) => (resource_type, id, " < "),
        Cursor::Start | Cursor::Offset(_) => return,
    };
    sql.push(" AND (r.resource_type")
        .push(comparison)
        .text(resource_type.as_str())
        .push(" OR (r.resource_type = ")
        .text(resource_type.as_str())
        .push(" AND r.id")
        .push(comparison)
        .text(id.as_str())
        .push("))");
}

/// `_sort` keys by their smallest (ascending) or largest (descending) index value, then the
/// resource key, so the order is total and stable.
/// `backwards` walks the default order in reverse (to find a previous page).
fn push_order(sql: &mut Sql, keys: &[SortKey], backwards: bool) {
    sql.push(" ORDER BY ");
    for key in keys {
        let direction = if key.descending { " DESC" } else { " ASC" };
        match key.param {
            "_id" => {
                sql.push("r.id").push(direction);
            }
            "_lastUpdated" => {
                sql.push("r.last_updated").push(direction);
            }
            param => {
                let (aggregate, column) = sort_column(key);
                sql.push("(SELECT ")
                    .push(aggregate)
                    .push("(")
                    .push(column)
                    .push(") FROM ")
                    .push(table(key.kind))
                    .push(" s WHERE s.resource_type = r.resource_type AND s.resource_id = r.id AND s.param = ")
                    .text(param)
                    .push(")")
                    .push(direction)
                    // Resources without a value come last, on both engines.
                    .push(" NULLS LAST");
            }
        }
        sql.push(", ");
    }
    sql.push(if backwards {
        "r.resource_type DESC, r.id DESC"
    } else {
        "r.resource_type, r.id"
    });
}

fn sort_column(key: &SortKey) -> (&'static str, &'static str) {
    use crate::search::ParamType;
    let aggregate = if key.descending { "MAX" } else { "MIN" };
    let column = match key.kind {
        ParamType::String => "normalized",
        ParamType::Token => "code",
        ParamType::Date => {
            if key.descending {
                "end_us"
            } else {
                "start_us"
            }
        }
        ParamType::Reference => "target_id",
        ParamType::Quantity | ParamType::Number => "value",
        ParamType::Uri => "uri",
        ParamType::Composite => "code",
    };
    (aggregate, column)
}
