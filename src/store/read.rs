//! Reads of current and past versions.

use super::search::{Bind, Plan, Sql};
use super::{Store, StoreResult, dispatch};

/// One stored version of a resource, with the exact bytes to serve.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredResource {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: i64,
    pub deleted: bool,
    pub body: Vec<u8>,
    /// Read with a current version ([`Store::read`]): the one Patient whose compartment holds
    /// it (`None` when none or several), what a read's audit event names. `None` from every
    /// other query.
    #[sqlx(default)]
    pub patient: Option<String>,
}

/// A query of one [`StoredResource`]: its columns, then `$rest` (which may name `patient` too).
macro_rules! select_version {
    ($rest:literal) => {
        concat!(
            "SELECT resource_type, id, version_id, last_updated, deleted, body",
            $rest
        )
    };
}

impl Store {
    /// The current version (or tombstone) of a resource, with its Patient.
    pub async fn read(&self, resource_type: &str, id: &str) -> StoreResult<Option<StoredResource>> {
        self.one_version(
            select_version!(", patient FROM resources WHERE resource_type = $1 AND id = $2"),
            resource_type,
            id,
            None,
        )
        .await
    }

    /// A specific version of a resource.
    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> StoreResult<Option<StoredResource>> {
        self.one_version(
            select_version!(
                " FROM resource_versions WHERE resource_type = $1 AND id = $2 AND version_id = $3"
            ),
            resource_type,
            id,
            Some(version_id),
        )
        .await
    }

    /// The version of a resource current at `at` (microseconds): the latest written then.
    pub async fn version_at(
        &self,
        resource_type: &str,
        id: &str,
        at: i64,
    ) -> StoreResult<Option<StoredResource>> {
        self.one_version(
            select_version!(
                " FROM resource_versions \
                 WHERE resource_type = $1 AND id = $2 AND last_updated <= $3 \
                 ORDER BY version_id DESC LIMIT 1"
            ),
            resource_type,
            id,
            Some(at),
        )
        .await
    }

    /// The version `sql` finds, bound to the type, the id and, if given, a third number.
    async fn one_version(
        &self,
        sql: &'static str,
        resource_type: &str,
        id: &str,
        number: Option<i64>,
    ) -> StoreResult<Option<StoredResource>> {
        Ok(dispatch!(self, pool => {
            let query = sqlx::query_as(sql).bind(resource_type).bind(id);
            match number {
                Some(number) => query.bind(number),
                None => query,
            }
            .fetch_optional(pool)
            .await?
        }))
    }
}

impl Store {
    /// Live resources in `(type, id)` order after `after`, at most `limit`: a stable scan of
    /// the whole store that keeps no cursor open.
    pub async fn scan_live(
        &self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<StoredResource>> {
        let (after_type, after_id) = after.unwrap_or(("", ""));
        let mut sql = Sql::default();
        sql.push("SELECT resource_type, id, version_id, last_updated, body FROM resources r WHERE deleted = ")
            .bind(Bind::Bool(false))
            .push(" AND (resource_type > ")
            .text(after_type)
            .push(" OR (resource_type = ")
            .text(after_type)
            .push(" AND id > ")
            .text(after_id)
            .push(")) ORDER BY resource_type, id LIMIT ")
            .int(limit);
        self.fetch(sql, Plan::Cached).await
    }
}
