//! A search's `total` (R4 search.html, `_total`): what each mode costs.
//!
//! - absent: no count; the total is given only when the whole result fits the first page
//!   (its size, for free). `_count=0` (`_summary=count`) asks for the count alone: exact.
//! - `none`: never a total.
//! - `estimate`: exact up to [`EXACT_UP_TO`] matches (a count that stops there); beyond,
//!   PostgreSQL's planner estimate of the search's rows (never below the counted part), so
//!   a large match costs a bounded scan plus one `EXPLAIN`; SQLite, with no estimate to
//!   give, counts exactly.
//! - `accurate`: an exact `COUNT(*)` over the search's plan (the driving criterion's lookup
//!   index, the others probed per candidate: see `plan.rs`), on the index tables alone when
//!   a criterion drives ([`Filter::count_source`]): no resource row is read.

use sqlx::Row;

use super::deadline;
use super::plan::Filter;
use super::sql::Sql;
use super::{Plan, SearchPage, Store, StoreResult};
use crate::search::query::Total;

/// Up to this many matches an estimate is an exact count.
pub const EXACT_UP_TO: i64 = 1000;

impl Store {
    /// Sets `page.total` for the `_total` mode asked (`None`: absent) over the matches of
    /// `filter` (`page.total` already set: the first page held them all).
    pub(super) async fn set_total(
        &self,
        mode: Option<Total>,
        count_only: bool,
        filter: Filter,
        page: &mut SearchPage,
    ) -> StoreResult<()> {
        match mode {
            Some(Total::None) => page.total = None,
            _ if page.total.is_some() => {}
            Some(Total::Estimate) => page.total = Some(self.estimate(filter).await?),
            Some(Total::Accurate) => page.total = Some(self.exact(filter).await?),
            None if count_only => page.total = Some(self.exact(filter).await?),
            None => {}
        }
        Ok(())
    }

    async fn exact(&self, filter: Filter) -> StoreResult<i64> {
        let mut sql = Sql::default();
        sql.push("SELECT COUNT(*) ").append(filter.count_source());
        self.fetch_count(sql).await
    }

    async fn estimate(&self, filter: Filter) -> StoreResult<i64> {
        let Store::Postgres(pool) = self else {
            return self.exact(filter).await;
        };
        let mut bounded = Sql::default();
        bounded
            .push("SELECT COUNT(*) FROM (SELECT 1 ")
            .append(filter.count_source())
            .push(" LIMIT ")
            .int(EXACT_UP_TO + 1)
            .push(") m");
        let counted = self.fetch_count(bounded).await?;
        if counted <= EXACT_UP_TO {
            return Ok(counted);
        }
        let mut explain = Sql::default();
        explain
            .push("EXPLAIN SELECT 1 ")
            .append(filter.count_source());
        let mut search = deadline::postgres(pool).await?;
        let row = super::bound!(explain, Plan::PerRun)
            .fetch_one(&mut *search.tx)
            .await?;
        search.tx.commit().await?;
        // The top node's line: `Hash Join  (cost=1.00..2.00 rows=1234 width=0)`.
        let top: String = row.try_get(0)?;
        let rows = top
            .split_once(" rows=")
            .and_then(|(_, rest)| rest.split(' ').next())
            .and_then(|rows| rows.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(rows.max(counted))
    }

    pub(super) async fn fetch_count(&self, sql: Sql) -> StoreResult<i64> {
        match self {
            Store::Postgres(pool) => {
                let mut search = deadline::postgres(pool).await?;
                let row = super::bound!(sql, Plan::PerRun)
                    .fetch_one(&mut *search.tx)
                    .await?;
                search.tx.commit().await?;
                Ok(row.try_get::<i64, _>(0)?)
            }
            Store::Sqlite(pool) => {
                let mut conn = deadline::sqlite(pool).await?;
                let row = super::bound!(sql, Plan::PerRun)
                    .fetch_one(&mut *conn)
                    .await?;
                conn.finish().await?;
                Ok(row.try_get::<i64, _>(0)?)
            }
        }
    }
}
