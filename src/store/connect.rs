//! Opening a `Store` from a database URL.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Store, StoreError, StoreResult};

/// SQLite's page size when the database size is capped (its default).
const SQLITE_PAGE_BYTES: u32 = 4096;

impl Store {
    /// Connects to `postgres://…` or `sqlite://…`; a SQLite file and its directory are
    /// created when absent.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Store> {
        Self::connect_with(url, max_connections, None).await
    }

    /// [`Store::connect`], with a cap on the size of a SQLite database (`sqlite_max_bytes`,
    /// whole 4 KiB pages; ignored for PostgreSQL): a write past it fails as a full disk would.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        sqlite_max_bytes: Option<u64>,
    ) -> StoreResult<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            return Ok(Store::Postgres(pool));
        }
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL under WAL: a committed write survives a crash of the process.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            let options = match sqlite_max_bytes {
                Some(bytes) => options.page_size(SQLITE_PAGE_BYTES).pragma(
                    "max_page_count",
                    (bytes / u64::from(SQLITE_PAGE_BYTES)).to_string(),
                ),
                None => options,
            };
            if let Some(parent) = options.get_filename().parent() {
                create_dir(parent)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .after_release(|conn, _| Box::pin(async move { still_usable(conn).await }))
                // A search dropped mid-statement leaves its time limit on the connection.
                .before_acquire(|conn, _| {
                    Box::pin(async move {
                        super::search::deadline::clear(conn).await?;
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await?;
            return Ok(Store::Sqlite(pool));
        }
        Err(StoreError(sqlx::Error::Configuration(
            format!("unsupported database URL {url:?}: use postgres://… or sqlite://…").into(),
        )))
    }
}

impl Store {
    /// The file of a SQLite database; `None` for PostgreSQL and an in-memory database.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        let Store::Sqlite(pool) = self else {
            return None;
        };
        sqlite_file(&pool.connect_options()).map(Path::to_path_buf)
    }
}

/// The file of a SQLite database; `None` for an in-memory one.
pub(super) fn sqlite_file(options: &SqliteConnectOptions) -> Option<&Path> {
    let file = options.get_filename();
    let name = file.to_str()?;
    if name.is_empty() || name == ":memory:" || name.starts_with("file:sqlx-in-memory-") {
        return None;
    }
    Some(file)
}

/// Whether a SQLite connection may go back to the pool. A transaction that failed to commit
/// or roll back (SQLite rolls back by itself on a full disk, so the later `ROLLBACK` fails)
/// leaves sqlx counting an open transaction, and every later `BEGIN` on that connection
/// would fail: such a connection is closed instead. The ping first lets the rollback that
/// dropping the transaction queued run, so only a connection still in one is refused.
pub(super) async fn still_usable(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("closing a database connection left inside a failed transaction");
        return Ok(false);
    }
    Ok(true)
}

fn create_dir(dir: &Path) -> StoreResult<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|error| StoreError(sqlx::Error::Io(error)))
}
