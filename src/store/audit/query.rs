//! Reading the audit log back: filtered, sorted pages of `audit_events` (the FHIR search, the
//! admin console's report), one event by id, and every matching row streamed in order (export,
//! CSV report). The filter is plain values the callers build; no SQL text comes from them.

use futures_util::TryStreamExt;
use sqlx::Row;

use crate::store::search::{Plan, Sql, bound};
use crate::store::{Store, StoreError, StoreResult, dispatch};

/// A column of `audit_events` a filter or sort names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditColumn {
    Seq,
    Recorded,
    Type,
    Subtype,
    Action,
    Outcome,
    AgentWho,
    AgentUser,
    AgentClient,
    Patient,
    Entity,
}

impl AuditColumn {
    /// Every column, in the report's order.
    pub const ALL: [AuditColumn; 11] = [
        AuditColumn::Seq,
        AuditColumn::Recorded,
        AuditColumn::Type,
        AuditColumn::Subtype,
        AuditColumn::Action,
        AuditColumn::Outcome,
        AuditColumn::AgentWho,
        AuditColumn::AgentUser,
        AuditColumn::AgentClient,
        AuditColumn::Patient,
        AuditColumn::Entity,
    ];

    /// The column's name in reports, sort keys and the admin console (`date` is `recorded`).
    pub fn name(self) -> &'static str {
        match self {
            AuditColumn::Seq => "seq",
            AuditColumn::Recorded => "date",
            AuditColumn::Type => "type",
            AuditColumn::Subtype => "subtype",
            AuditColumn::Action => "action",
            AuditColumn::Outcome => "outcome",
            AuditColumn::AgentWho => "agent",
            AuditColumn::AgentUser => "user",
            AuditColumn::AgentClient => "client",
            AuditColumn::Patient => "patient",
            AuditColumn::Entity => "entity",
        }
    }

    /// The column [`name`](Self::name)d so.
    pub fn named(name: &str) -> Option<AuditColumn> {
        AuditColumn::ALL
            .into_iter()
            .find(|column| column.name() == name)
    }

    /// `name[,-name]…` as sort keys (`-`: descending); the unknown name when one is.
    pub fn parse_sort(text: &str) -> Result<Vec<AuditSort>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(|key| {
                let (name, descending) = match key.strip_prefix('-') {
                    Some(name) => (name, true),
                    None => (key, false),
                };
                AuditColumn::named(name)
                    .map(|column| (column, descending))
                    .ok_or_else(|| name.to_owned())
            })
            .collect()
    }

    /// The SQL the column is compared and sorted by (fixed text).
    fn sql(self) -> &'static str {
        match self {
            AuditColumn::Seq => "seq",
            AuditColumn::Recorded => "recorded",
            AuditColumn::Type => "type_code",
            AuditColumn::Subtype => "subtype",
            AuditColumn::Action => "action",
            AuditColumn::Outcome => "outcome",
            AuditColumn::AgentWho => "agent_who",
            AuditColumn::AgentUser => "agent_user",
            AuditColumn::AgentClient => "agent_client",
            AuditColumn::Patient => "patient",
            AuditColumn::Entity => "entity",
        }
    }

    /// The expression rows are ordered by: outcome codes are numbers kept as text.
    fn order_sql(self) -> &'static str {
        match self {
            AuditColumn::Outcome => "CAST(outcome AS INTEGER)",
            other => other.sql(),
        }
    }

    fn nullable(self) -> bool {
        !matches!(
            self,
            AuditColumn::Seq
                | AuditColumn::Recorded
                | AuditColumn::Type
                | AuditColumn::Action
                | AuditColumn::Outcome
        )
    }
}

/// One way a row can pass a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditAtom {
    /// The text column holds exactly this value.
    Is(AuditColumn, String),
    /// `recorded` (microseconds) is in `[from, until)`; an open end when `None`.
    Within {
        from: Option<i64>,
        until: Option<i64>,
    },
    /// `recorded` is outside `[from, until)`.
    Outside { from: i64, until: i64 },
}

/// Rows of the audit log: each condition (a list of atoms, of which one must hold) holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub conditions: Vec<Vec<AuditAtom>>,
}

impl AuditFilter {
    /// Adds a condition (an empty one matches nothing).
    pub fn require(&mut self, any_of: Vec<AuditAtom>) {
        self.conditions.push(any_of);
    }

    /// Adds `recorded` in `[from, until)` (an open end when `None`; nothing when both are).
    pub fn period(&mut self, from: Option<i64>, until: Option<i64>) {
        if from.is_some() || until.is_some() {
            self.require(vec![AuditAtom::Within { from, until }]);
        }
    }
}

/// A sort key: the column and whether it runs descending. Rows without a value come last
/// either way; `seq` breaks ties.
pub type AuditSort = (AuditColumn, bool);

/// One page of a search.
#[derive(Debug, Clone)]
pub struct AuditPageQuery<'a> {
    pub filter: &'a AuditFilter,
    pub sort: &'a [AuditSort],
    pub offset: i64,
    pub limit: i64,
    /// Count every matching row too.
    pub total: bool,
}

/// A stored event with its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub event_id: String,
    pub recorded: i64,
    pub type_code: String,
    pub subtype: Option<String>,
    pub action: String,
    pub outcome: String,
    pub agent_who: Option<String>,
    pub agent_user: Option<String>,
    pub agent_client: Option<String>,
    pub patient: Option<String>,
    pub entity: Option<String>,
    pub body: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A page of rows: whether more follow, and the count of every match when asked for.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub more: bool,
    pub total: Option<i64>,
}

const COLUMNS: &str = "SELECT seq, event_id, recorded, type_code, subtype, action, outcome, \
                       agent_who, agent_user, agent_client, patient, entity, body, hash \
                       FROM audit_events";

fn row_of<R>(row: &R) -> Result<AuditRow, sqlx::Error>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        event_id: row.try_get("event_id")?,
        recorded: row.try_get("recorded")?,
        type_code: row.try_get("type_code")?,
        subtype: row.try_get("subtype")?,
        action: row.try_get("action")?,
        outcome: row.try_get("outcome")?,
        agent_who: row.try_get("agent_who")?,
        agent_user: row.try_get("agent_user")?,
        agent_client: row.try_get("agent_client")?,
        patient: row.try_get("patient")?,
        entity: row.try_get("entity")?,
        body: row.try_get("body")?,
        hash: row.try_get("hash")?,
    })
}

/// A walk's writer (an export, a CSV download) stops on a database error as on its own.
impl From<StoreError> for std::io::Error {
    fn from(error: StoreError) -> Self {
        std::io::Error::other(error)
    }
}

/// ` WHERE …` for `filter` (nothing when it has no condition).
fn push_filter(sql: &mut Sql, filter: &AuditFilter) {
    for (index, condition) in filter.conditions.iter().enumerate() {
        sql.push(if index == 0 { " WHERE (" } else { " AND (" });
        if condition.is_empty() {
            sql.push("1 = 0");
        }
        for (index, atom) in condition.iter().enumerate() {
            if index > 0 {
                sql.push(" OR ");
            }
            match atom {
                AuditAtom::Is(column, value) => {
                    sql.push(column.sql()).push(" = ").text(value.clone());
                }
                AuditAtom::Within { from, until } => {
                    sql.push("(1 = 1");
                    if let Some(from) = from {
                        sql.push(" AND recorded >= ").int(*from);
                    }
                    if let Some(until) = until {
                        sql.push(" AND recorded < ").int(*until);
                    }
                    sql.push(")");
                }
                AuditAtom::Outside { from, until } => {
                    sql.push("(recorded < ")
                        .int(*from)
                        .push(" OR recorded >= ")
                        .int(*until)
                        .push(")");
                }
            }
        }
        sql.push(")");
    }
}

/// ` ORDER BY …` for `sort`, `seq` last (in the first key's direction, ascending without one).
fn push_order(sql: &mut Sql, sort: &[AuditSort]) {
    sql.push(" ORDER BY ");
    for (column, descending) in sort {
        if *column == AuditColumn::Seq {
            continue;
        }
        if column.nullable() {
            sql.push("(").push(column.sql()).push(" IS NULL), ");
        }
        sql.push(column.order_sql())
            .push(if *descending { " DESC, " } else { " ASC, " });
    }
    let descending = sort.first().is_some_and(|(_, descending)| *descending);
    sql.push(if descending { "seq DESC" } else { "seq ASC" });
}

impl Store {
    /// One page of the rows matching `query.filter`, in its order.
    pub async fn audit_page(&self, query: &AuditPageQuery<'_>) -> StoreResult<AuditPage> {
        let mut sql = Sql::default();
        sql.push(COLUMNS);
        push_filter(&mut sql, query.filter);
        push_order(&mut sql, query.sort);
        sql.push(" LIMIT ")
            .int(query.limit.max(0) + 1)
            .push(" OFFSET ")
            .int(query.offset.max(0));
        let mut rows = dispatch!(self, pool => {
            let found = bound!(sql, Plan::PerRun).fetch_all(pool).await?;
            found.iter().map(row_of).collect::<Result<Vec<_>, _>>()?
        });
        let more = rows.len() as i64 > query.limit.max(0);
        rows.truncate(query.limit.max(0) as usize);
        let total = if query.total {
            Some(self.audit_count(query.filter).await?)
        } else {
            None
        };
        Ok(AuditPage { rows, more, total })
    }

    /// How many rows match `filter`.
    pub async fn audit_count(&self, filter: &AuditFilter) -> StoreResult<i64> {
        let mut sql = Sql::default();
        sql.push("SELECT COUNT(*) AS n FROM audit_events");
        push_filter(&mut sql, filter);
        dispatch!(self, pool => {
            let row = bound!(sql, Plan::PerRun).fetch_one(pool).await?;
            Ok(row.try_get::<i64, _>("n")?)
        })
    }

    /// The event with this id (`AuditEvent.id`).
    pub async fn audit_event(&self, event_id: &str) -> StoreResult<Option<AuditRow>> {
        let mut sql = Sql::default();
        sql.push(COLUMNS).push(" WHERE event_id = ").text(event_id);
        dispatch!(self, pool => {
            let row = bound!(sql, Plan::Cached).fetch_optional(pool).await?;
            Ok(row.as_ref().map(row_of).transpose()?)
        })
    }

    /// Every row matching `filter`, in `sort` order, handed to `each` one at a time as the
    /// database streams them (memory stays one row whatever the log's size; `each` may wait,
    /// e.g. for a slow reader). `each` may stop the walk with its error.
    pub async fn audit_each<E, F, Fut>(
        &self,
        filter: &AuditFilter,
        sort: &[AuditSort],
        mut each: F,
    ) -> Result<(), E>
    where
        E: From<StoreError>,
        F: FnMut(AuditRow) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
    {
        let mut sql = Sql::default();
        sql.push(COLUMNS);
        push_filter(&mut sql, filter);
        push_order(&mut sql, sort);
        dispatch!(self, pool => {
            let mut rows = bound!(sql, Plan::PerRun).fetch(pool);
            while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
                each(row_of(&row).map_err(StoreError::from)?).await?;
            }
        });
        Ok(())
    }

    /// The chain's head: the last seq appended and its hash.
    pub async fn audit_head(&self) -> StoreResult<(i64, Vec<u8>)> {
        dispatch!(self, pool => {
            let row = sqlx::query("SELECT seq, hash FROM audit_chain_head")
                .fetch_one(pool)
                .await?;
            Ok((row.try_get("seq")?, row.try_get("hash")?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_sorts_become_fixed_sql_with_bound_values() {
        let mut filter = AuditFilter::default();
        filter.require(vec![AuditAtom::Is(AuditColumn::Patient, "p1".into())]);
        filter.require(vec![
            AuditAtom::Is(AuditColumn::AgentClient, "app".into()),
            AuditAtom::Is(AuditColumn::AgentUser, "app".into()),
        ]);
        filter.require(vec![AuditAtom::Outside { from: 1, until: 2 }]);
        let mut sql = Sql::default();
        push_filter(&mut sql, &filter);
        push_order(&mut sql, &[(AuditColumn::Outcome, true)]);
        assert_eq!(
            sql.text,
            " WHERE (patient = $1) AND (agent_client = $2 OR agent_user = $3) \
             AND ((recorded < $4 OR recorded >= $5)) \
             ORDER BY CAST(outcome AS INTEGER) DESC, seq DESC"
        );
        assert_eq!(sql.binds.len(), 5);
        let mut empty = Sql::default();
        push_filter(&mut empty, &AuditFilter::default());
        push_order(&mut empty, &[(AuditColumn::Patient, false)]);
        assert_eq!(
            empty.text,
            " ORDER BY (patient IS NULL), patient ASC, seq ASC"
        );
    }
}
