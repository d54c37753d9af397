//! Bulk loading (import): the connection an import writes through, its settings, and the
//! wait for durability at the end. The audit log's batched writer appends through such a
//! connection too.

use std::time::Duration;

use sqlx::sqlite::{SqlitePoolOptions, SqliteSynchronous};

use super::write::Tx;
use super::{Store, StoreResult};

/// SQLite page cache of the import's connection, in KiB: the index B-trees of a growing
/// database outgrow the 2 MiB default at once, and every page it misses is read again from
/// the file.
const BULK_CACHE_KIB: u32 = 64 * 1024;

/// WAL pages after which the import's SQLite connection checkpoints (1,000 by default): a
/// checkpoint copies each page changed since the last one back to the database file and
/// syncs it, so checkpointing less often copies the index pages every batch touches fewer
/// times. Bounds the WAL at about 64 MiB of 4 KiB pages.
const BULK_WAL_PAGES: u32 = 16 * 1024;

/// Where an import writes.
///
/// On SQLite, one connection of its own for the whole import, outside the store's pool. A
/// SQLite connection keeps its page cache between transactions only while no other
/// connection writes; batches written through the pool's connections in turn would each
/// start with an empty cache and read every index page again. That connection also keeps a
/// larger page cache ([`BULK_CACHE_KIB`]) and checkpoints less often ([`BULK_WAL_PAGES`]).
/// On PostgreSQL (and on an in-memory SQLite database, which a second pool could not share
/// safely), the store's own pool.
pub struct BulkWriter {
    store: Store,
    /// Whether `store` is a pool of its own, closed with the writer.
    own_pool: bool,
}

impl Store {
    pub async fn bulk_writer(&self) -> StoreResult<BulkWriter> {
        self.writer(SqliteSynchronous::Normal).await
    }

    /// A [`Store::bulk_writer`] whose every SQLite commit is on disk before it returns
    /// (`synchronous = FULL`; the pool's `NORMAL` makes a commit survive a crash of the
    /// process only), for a writer that deletes its input once it is committed.
    /// PostgreSQL's commits wait for the disk already.
    pub async fn synced_writer(&self) -> StoreResult<BulkWriter> {
        self.writer(SqliteSynchronous::Full).await
    }

    async fn writer(&self, synchronous: SqliteSynchronous) -> StoreResult<BulkWriter> {
        let Store::Sqlite(pool) = self else {
            return Ok(BulkWriter {
                store: self.clone(),
                own_pool: false,
            });
        };
        let options = pool.connect_options();
        if super::connect::sqlite_file(&options).is_none() {
            return Ok(BulkWriter {
                store: self.clone(),
                own_pool: false,
            });
        }
        let options = options
            .as_ref()
            .clone()
            .synchronous(synchronous)
            .pragma("cache_size", format!("-{BULK_CACHE_KIB}"))
            .pragma("wal_autocheckpoint", BULK_WAL_PAGES.to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // A batch whose commit failed must not leave the import's only connection
            // inside a transaction no later batch could begin.
            .after_release(|conn, _| {
                Box::pin(async move { super::connect::still_usable(conn).await })
            })
            .connect_with(options)
            .await?;
        Ok(BulkWriter {
            store: Store::Sqlite(pool),
            own_pool: true,
        })
    }
}

impl BulkWriter {
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Waits until every transaction committed so far is on disk, then lets go of the
    /// writer's own connection. On PostgreSQL a commit with the default
    /// `synchronous_commit` waits for the WAL up to its own commit record, which covers
    /// every earlier commit (the WAL is written in order), so one small transaction that
    /// takes a transaction id is enough. SQLite's bulk commits are made like any other.
    pub async fn finish(self) -> StoreResult<()> {
        if let Store::Postgres(pool) = &self.store {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT txid_current()")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        if self.own_pool {
            self.store.close().await;
        }
        Ok(())
    }
}

impl Store {
    /// [`Store::begin`] for a bulk load, on the store of a [`BulkWriter`]. On PostgreSQL
    /// the commit does not wait for its WAL to reach the disk (`synchronous_commit = off`,
    /// this transaction only): a crash of the server may lose the last such commits (never
    /// part of one), which a re-run of the import writes again; [`BulkWriter::finish`]
    /// waits for all of them.
    pub async fn begin_bulk(&self) -> StoreResult<Tx> {
        let mut tx = self.begin().await?;
        if let Tx::Postgres(conn) = &mut tx {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut **conn)
                .await?;
        }
        Ok(tx)
    }
}
