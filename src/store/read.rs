//! Reads of current and past versions.

use sqlx::Row;

use super::search::{Bind, Plan, Sql};
use super::{Store, StoreResult, dispatch};

/// One stored version of a resource, with the exact bytes to serve.
#[derive(Debug, Clone)]
pub struct StoredResource {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: i64,
    pub deleted: bool,
    pub body: Vec<u8>,
}

impl StoredResource {
    /// A version from its `(version_id, last_updated, deleted, body)` columns.
    fn from_parts(resource_type: &str, id: &str, parts: (i64, i64, bool, Vec<u8>)) -> Self {
        let (version_id, last_updated, deleted, body) = parts;
        StoredResource {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            version_id,
            last_updated,
            deleted,
            body,
        }
    }
}

impl Store {
    /// The current version (or tombstone) of a resource.
    pub async fn read(&self, resource_type: &str, id: &str) -> StoreResult<Option<StoredResource>> {
        let row = dispatch!(self, pool => {
            sqlx::query(
                "SELECT version_id, last_updated, deleted, body FROM resources \
                 WHERE resource_type = $1 AND id = $2",
            )
            .bind(resource_type)
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?))
            })
            .transpose()?
        });
        Ok(row.map(|parts| StoredResource::from_parts(resource_type, id, parts)))
    }

    /// A specific version of a resource.
    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> StoreResult<Option<StoredResource>> {
        let row = dispatch!(self, pool => {
            sqlx::query(
                "SELECT last_updated, deleted, body FROM resource_versions \
                 WHERE resource_type = $1 AND id = $2 AND version_id = $3",
            )
            .bind(resource_type)
            .bind(id)
            .bind(version_id)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
            })
            .transpose()?
        });
        Ok(row.map(|(last_updated, deleted, body)| StoredResource {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            version_id,
            last_updated,
            deleted,
            body,
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

impl Store {
    /// The version of a resource current at `at` (microseconds): the latest written then.
    pub async fn version_at(
        &self,
        resource_type: &str,
        id: &str,
        at: i64,
    ) -> StoreResult<Option<StoredResource>> {
        let row = dispatch!(self, pool => {
            sqlx::query(
                "SELECT version_id, last_updated, deleted, body FROM resource_versions \
                 WHERE resource_type = $1 AND id = $2 AND last_updated <= $3 \
                 ORDER BY version_id DESC LIMIT 1",
            )
            .bind(resource_type)
            .bind(id)
            .bind(at)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?))
            })
            .transpose()?
        });
        Ok(row.map(|parts| StoredResource::from_parts(resource_type, id, parts)))
    }
}
