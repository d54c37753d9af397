//! Read-your-writes over a PostgreSQL streaming standby: the primary records the WAL
//! position after a client's write (a "fence"), and a standby serves that client only once
//! it has replayed past it. Other backends have no standby: nothing is recorded.

use super::{Store, StoreResult};

impl Store {
    /// Records the primary's current WAL position as `client`'s fence (never moving it back).
    /// Called after the write committed, so the position is at or past its commit record.
    pub async fn record_read_fence(&self, client: &str) -> StoreResult<()> {
        if let Store::Postgres(pool) = self {
            sqlx::query(
                "INSERT INTO read_fences (client, write_lsn) VALUES ($1, pg_current_wal_lsn()) \
                 ON CONFLICT (client) DO UPDATE \
                 SET write_lsn = GREATEST(read_fences.write_lsn, EXCLUDED.write_lsn)",
            )
            .bind(client)
            .execute(pool)
            .await?;
        }
        Ok(())
    }

    /// `client`'s fence (a `pg_lsn` as text), if it ever wrote.
    pub async fn read_fence(&self, client: &str) -> StoreResult<Option<String>> {
        match self {
            Store::Postgres(pool) => Ok(sqlx::query_scalar(
                "SELECT write_lsn::text FROM read_fences WHERE client = $1",
            )
            .bind(client)
            .fetch_optional(pool)
            .await?),
            Store::Sqlite(_) => Ok(None),
        }
    }

    /// The primary's current WAL position (a fence for everything committed so far).
    pub async fn current_wal_position(&self) -> StoreResult<Option<String>> {
        match self {
            Store::Postgres(pool) => Ok(Some(
                sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
                    .fetch_one(pool)
                    .await?,
            )),
            Store::Sqlite(_) => Ok(None),
        }
    }

    /// Whether this standby has replayed the WAL up to `position`; false on a server that
    /// is not replaying (a primary).
    pub async fn replayed_past(&self, position: &str) -> StoreResult<bool> {
        match self {
            Store::Postgres(pool) => Ok(sqlx::query_scalar(
                "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
            )
            .bind(position)
            .fetch_one(pool)
            .await?),
            Store::Sqlite(_) => Ok(false),
        }
    }
}
