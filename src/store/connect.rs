//! Opening a `Store` from a database URL.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Store, StoreError, StoreResult};

impl Store {
    /// Connects to `postgres://…` or `sqlite://…`; a SQLite file and its directory are
    /// created when absent.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Store> {
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
            if let Some(parent) = options.get_filename().parent() {
                create_dir(parent)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
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

fn create_dir(dir: &Path) -> StoreResult<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|error| StoreError(sqlx::Error::Io(error)))
}
