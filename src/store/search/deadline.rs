//! The limits of search statements, so that costly searches cannot take the database pool
//! from everything else:
//!
//! - at most [`SearchLimits::slots`] search statements hold a connection at once (the others
//!   wait for a slot without holding one), so reads and writes always find a connection;
//! - a search statement stops at [`SearchLimits::timeout`], even after its request has timed
//!   out or its client has gone: the database stops the statement itself.
//!
//! - PostgreSQL: each search statement runs in a read transaction with
//!   `SET LOCAL statement_timeout`; the server cancels it at the limit (SQLSTATE 57014).
//! - SQLite: a progress handler on the connection interrupts the statement at the limit, or
//!   as soon as the request that runs it is dropped (timeout, client gone); the pool clears
//!   the handler before handing the connection out again.
//!
//! Either way the search fails with a [`StoreError`] whose [`StoreError::is_timeout`] holds:
//! a 503 with `Retry-After`, not a 500.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::store::StoreResult;

/// SQLite virtual machine instructions between two checks of the limit (a few microseconds).
const PROGRESS_OPS: i32 = 1000;

/// The limits of this process's search statements.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// How long one statement may run.
    pub timeout: Duration,
    /// How many statements may hold a pooled connection at once.
    pub slots: usize,
}

struct Limits {
    timeout: Duration,
    slots: Semaphore,
}

static LIMITS: OnceLock<Limits> = OnceLock::new();

/// Sets the limits of every search statement of this process (`kiln serve` sets them from
/// its settings; without them, statements run unbounded). The first call wins.
pub fn set_search_limits(limits: SearchLimits) {
    let _ = LIMITS.set(Limits {
        timeout: limits.timeout,
        slots: Semaphore::new(limits.slots.max(1)),
    });
}

fn timeout() -> Option<Duration> {
    LIMITS.get().map(|limits| limits.timeout)
}

/// A search slot, held while the statement holds its connection.
async fn slot() -> Option<SemaphorePermit<'static>> {
    LIMITS.get()?.slots.acquire().await.ok()
}

/// A PostgreSQL transaction whose statements stop at the search time limit, with its slot.
pub(super) struct PostgresSearch {
    pub tx: Transaction<'static, Postgres>,
    _slot: Option<SemaphorePermit<'static>>,
}

pub(super) async fn postgres(pool: &PgPool) -> StoreResult<PostgresSearch> {
    let slot = slot().await;
    let mut tx = pool.begin().await?;
    if let Some(limit) = timeout() {
        sqlx::query("SELECT set_config('statement_timeout', $1, true)")
            .bind(format!("{}ms", limit.as_millis().max(1)))
            .execute(&mut *tx)
            .await?;
    }
    Ok(PostgresSearch { tx, _slot: slot })
}

/// A pooled SQLite connection whose statements stop at the search time limit, or when it is
/// dropped while one runs.
pub(super) struct SqliteSearch {
    conn: PoolConnection<Sqlite>,
    abandoned: Arc<AtomicBool>,
    _slot: Option<SemaphorePermit<'static>>,
}

pub(super) async fn sqlite(pool: &SqlitePool) -> StoreResult<SqliteSearch> {
    let slot = slot().await;
    let mut conn = pool.acquire().await?;
    let abandoned = Arc::new(AtomicBool::new(false));
    if let Some(limit) = timeout() {
        let deadline = Instant::now() + limit;
        let flag = Arc::clone(&abandoned);
        conn.lock_handle()
            .await?
            .set_progress_handler(PROGRESS_OPS, move || {
                !flag.load(Ordering::Relaxed) && Instant::now() < deadline
            });
    }
    Ok(SqliteSearch {
        conn,
        abandoned,
        _slot: slot,
    })
}

impl SqliteSearch {
    /// Ends the search: its statements are done, so the handler goes.
    pub(super) async fn finish(mut self) -> StoreResult<()> {
        Ok(clear(&mut self.conn).await?)
    }
}

impl Drop for SqliteSearch {
    fn drop(&mut self) {
        // After `finish` the handler is gone; otherwise the statement in flight (if any)
        // belongs to a request nobody waits for.
        self.abandoned.store(true, Ordering::Relaxed);
    }
}

impl Deref for SqliteSearch {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for SqliteSearch {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

/// Removes a search's progress handler (the SQLite pool runs this before handing out a
/// connection). The connection's worker runs commands in order, so this waits for a
/// statement still in flight, which the handler stops.
pub async fn clear(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    if timeout().is_some() {
        conn.lock_handle().await?.set_progress_handler(0, || true);
    }
    Ok(())
}
