//! Write transactions: optimistic version checks, batched rows, index rows in the same commit.

use std::collections::{HashMap, HashSet};

use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use super::copy::CopyRows;
use super::index::{IndexRows, Indexed};
use super::{Store, StoreResult};

/// Rows per multi-row statement: far below both engines' bind-parameter limits.
pub(super) const CHUNK_ROWS: usize = 500;

/// An open write transaction on either backend. Dropping it rolls back.
pub enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// A transaction begun on a backend's own pool becomes a [`Tx`] (to append audit events
/// on it, for one).
impl From<Transaction<'static, Postgres>> for Tx {
    fn from(tx: Transaction<'static, Postgres>) -> Tx {
        Tx::Postgres(tx)
    }
}

impl From<Transaction<'static, Sqlite>> for Tx {
    fn from(tx: Transaction<'static, Sqlite>) -> Tx {
        Tx::Sqlite(tx)
    }
}

/// Runs `$body` with the transaction of either backend as `$conn`.
macro_rules! dispatch_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Postgres($conn) => $body,
            $crate::store::Tx::Sqlite($conn) => $body,
        }
    };
}
pub(super) use dispatch_tx;

/// The current version of a resource as seen inside a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    pub version_id: i64,
    pub deleted: bool,
    pub last_updated: i64,
}

/// A new version to store. `version_id` must be the current version + 1 (or 1 when the
/// resource is new); otherwise the write reports a conflict.
#[derive(Debug, Clone)]
pub struct VersionWrite {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: i64,
    pub deleted: bool,
    /// The history entry's request method: POST, PUT or DELETE.
    pub method: &'static str,
    pub body: Vec<u8>,
    pub index: IndexRows,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    Applied,
    /// Another writer changed one of the resources first: roll back and retry.
    Conflict,
}

impl Store {
    /// Starts a write transaction. SQLite takes its write lock up front (`BEGIN IMMEDIATE`)
    /// so a transaction that reads before writing cannot fail to upgrade its lock.
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Store::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Store::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }
}

impl Tx {
    pub async fn commit(self) -> StoreResult<()> {
        dispatch_tx!(self, tx => tx.commit().await?);
        Ok(())
    }

    /// Current versions of the given resources, keyed by `(type, id)`; absent ones are missing.
    pub async fn current(
        &mut self,
        keys: &[(&str, &str)],
    ) -> StoreResult<HashMap<(String, String), Current>> {
        let mut found = HashMap::with_capacity(keys.len());
        let rows: Vec<(String, String, i64, bool, i64)> = match self {
            // One array per column: planning thousands of VALUES parameters costs more than
            // the lookup. The rows are locked (in key order, so writers cannot deadlock) so
            // that concurrent writers of one resource queue up instead of retrying.
            Tx::Postgres(tx) => {
                sqlx::query_as(
                    "SELECT r.resource_type, r.id, r.version_id, r.deleted, r.last_updated \
                     FROM resources r \
                     JOIN UNNEST($1::text[], $2::text[]) AS k(resource_type, id) \
                     ON r.resource_type = k.resource_type AND r.id = k.id \
                     ORDER BY r.resource_type, r.id FOR UPDATE OF r",
                )
                .bind(
                    keys.iter()
                        .map(|(resource_type, _)| *resource_type)
                        .collect::<Vec<_>>(),
                )
                .bind(keys.iter().map(|(_, id)| *id).collect::<Vec<_>>())
                .fetch_all(&mut **tx)
                .await?
            }
            Tx::Sqlite(tx) => {
                let mut rows = Vec::new();
                for chunk in keys.chunks(CHUNK_ROWS) {
                    let mut sql = QueryBuilder::new(
                        "SELECT resource_type, id, version_id, deleted, last_updated FROM resources \
                         WHERE (resource_type, id) IN (VALUES ",
                    );
                    let mut values = sql.separated(", ");
                    for (resource_type, id) in chunk {
                        values.push("(");
                        values.push_bind_unseparated(*resource_type);
                        values.push_unseparated(", ");
                        values.push_bind_unseparated(*id);
                        values.push_unseparated(")");
                    }
                    sql.push(")");
                    let found: Vec<(String, String, i64, bool, i64)> =
                        sql.build_query_as().fetch_all(&mut **tx).await?;
                    rows.extend(found);
                }
                rows
            }
        };
        for (resource_type, id, version_id, deleted, last_updated) in rows {
            found.insert(
                (resource_type, id),
                Current {
                    version_id,
                    deleted,
                    last_updated,
                },
            );
        }
        Ok(found)
    }

    /// Stores new versions: current row, history row and index rows.
    /// A deadlock between concurrent writers also reports a conflict: the caller retries.
    /// The Patients whose compartment holds the current version of a resource (read before a
    /// delete removes its index rows, so the delete's audit event can name its Patient).
    pub async fn patient_compartments(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> StoreResult<Vec<String>> {
        // `compartment_type || ''`: compared as the bare column, SQLite (which keeps no
        // statistics) walks the primary key's `compartment_type` prefix, every row of every
        // Patient's compartment, instead of this resource's rows in resource_compartment_owner.
        const SQL: &str = "SELECT compartment_id FROM resource_compartment \
                           WHERE resource_type = $1 AND resource_id = $2 \
                           AND compartment_type || '' = 'Patient'";
        let rows: Vec<(String,)> = dispatch_tx!(self, tx => {
            sqlx::query_as(SQL)
                .bind(resource_type)
                .bind(id)
                .fetch_all(&mut **tx)
                .await?
        });
        Ok(rows.into_iter().map(|(patient,)| patient).collect())
    }

    pub async fn write(&mut self, writes: &[VersionWrite]) -> StoreResult<WriteStatus> {
        match self.write_chunks(writes).await {
            Err(error) if error.is_transient() => Ok(WriteStatus::Conflict),
            result => result,
        }
    }

    async fn write_chunks(&mut self, writes: &[VersionWrite]) -> StoreResult<WriteStatus> {
        for chunk in unique_key_chunks(writes) {
            if self.upsert_current(chunk).await? != chunk.len() as u64 {
                return Ok(WriteStatus::Conflict);
            }
            self.insert_versions(chunk).await?;
            let indexed: Vec<Indexed> = chunk
                .iter()
                .map(|write| Indexed {
                    resource_type: &write.resource_type,
                    id: &write.id,
                    index: &write.index,
                    may_have_rows: write.version_id > 1,
                })
                .collect();
            self.replace_index_rows(&indexed).await?;
        }
        Ok(WriteStatus::Applied)
    }

    /// Compare-and-swap on the version: a row is only replaced by its direct successor.
    /// `patient`: the one Patient whose compartment holds the version (its index rows say).
    async fn upsert_current(&mut self, chunk: &[VersionWrite]) -> StoreResult<u64> {
        const ON_CONFLICT: &str = " ON CONFLICT (resource_type, id) DO UPDATE SET \
             version_id = excluded.version_id, last_updated = excluded.last_updated, \
             deleted = excluded.deleted, body = excluded.body, patient = excluded.patient \
             WHERE resources.version_id = excluded.version_id - 1";
        Ok(match self {
            // One array per column (see `insert_rows!`).
            Tx::Postgres(tx) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, body, \
                 patient) SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], \
                 $5::bool[], $6::bytea[], $7::text[]){ON_CONFLICT}"
            )))
            .bind(column(chunk, |write| write.resource_type.as_str()))
            .bind(column(chunk, |write| write.id.as_str()))
            .bind(column(chunk, |write| write.version_id))
            .bind(column(chunk, |write| write.last_updated))
            .bind(column(chunk, |write| write.deleted))
            .bind(column(chunk, |write| write.body.as_slice()))
            .bind(column(chunk, |write| write.index.sole_patient()))
            .execute(&mut **tx)
            .await?
            .rows_affected(),
            Tx::Sqlite(tx) => {
                let mut sql = QueryBuilder::new(
                    "INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, body, patient) ",
                );
                sql.push_values(chunk, |mut row, write| {
                    row.push_bind(write.resource_type.as_str())
                        .push_bind(write.id.as_str())
                        .push_bind(write.version_id)
                        .push_bind(write.last_updated)
                        .push_bind(write.deleted)
                        .push_bind(write.body.as_slice())
                        .push_bind(write.index.sole_patient());
                });
                sql.push(ON_CONFLICT);
                sql.build().execute(&mut **tx).await?.rows_affected()
            }
        })
    }

    async fn insert_versions(&mut self, chunk: &[VersionWrite]) -> StoreResult<()> {
        match self {
            // History rows are only ever added: one binary COPY.
            Tx::Postgres(tx) => {
                let mut copy = CopyRows::new();
                for write in chunk {
                    copy.row(7);
                    copy.put(write.resource_type.as_str());
                    copy.put(write.id.as_str());
                    copy.put(write.version_id);
                    copy.put(write.last_updated);
                    copy.put(write.deleted);
                    copy.put(write.method);
                    copy.put(write.body.as_slice());
                }
                copy.send(
                    tx,
                    "COPY resource_versions \
                     (resource_type, id, version_id, last_updated, deleted, method, body) \
                     FROM STDIN (FORMAT binary)",
                )
                .await?;
            }
            Tx::Sqlite(tx) => {
                let mut sql = QueryBuilder::new(
                    "INSERT INTO resource_versions \
                     (resource_type, id, version_id, last_updated, deleted, method, body) ",
                );
                sql.push_values(chunk, |mut row, write| {
                    row.push_bind(write.resource_type.as_str())
                        .push_bind(write.id.as_str())
                        .push_bind(write.version_id)
                        .push_bind(write.last_updated)
                        .push_bind(write.deleted)
                        .push_bind(write.method)
                        .push_bind(write.body.as_slice());
                });
                sql.build().execute(&mut **tx).await?;
            }
        }
        Ok(())
    }
}

/// One column of `chunk`, as an array parameter.
fn column<'a, T>(chunk: &'a [VersionWrite], value: impl Fn(&'a VersionWrite) -> T) -> Vec<T> {
    chunk.iter().map(value).collect()
}

/// Splits writes into chunks in which each resource appears once (a multi-row upsert may
/// touch a row only once).
fn unique_key_chunks(writes: &[VersionWrite]) -> Vec<&[VersionWrite]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (index, write) in writes.iter().enumerate() {
        let key = (write.resource_type.as_str(), write.id.as_str());
        if index - start == CHUNK_ROWS || seen.contains(&key) {
            chunks.push(&writes[start..index]);
            start = index;
            seen.clear();
        }
        seen.insert(key);
    }
    if start < writes.len() {
        chunks.push(&writes[start..]);
    }
    chunks
}
