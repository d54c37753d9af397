//! Storage: one `Store` over PostgreSQL or SQLite, with the same behaviour on both. Imports
//! only `fhir` and `search`; it takes plain filter values it owns, never access or auth types.
//!
//! The SQL text is shared: both engines accept `$n` placeholders, `ON CONFLICT` and
//! `RETURNING`; the `dispatch!` macro compiles each body once per backend.

pub mod apps;
pub mod audit;
pub mod auth;
mod bulk;
mod connect;
mod copy;
pub mod developers;
mod export;
mod history;
mod index;
mod read;
mod replica;
mod search;
mod settings;
mod write;

pub use bulk::BulkWriter;
pub use export::{ExportFile, ExportJob, ExportStatus};
pub use history::{HistoryEntry, HistoryQuery, HistoryScope};
pub use index::{
    CompartmentRow, DateRow, IndexRows, Indexed, NumberRow, QuantityRow, ReferenceRow, StringRow,
    TokenRow, UriRow,
};
pub use read::StoredResource;
pub use search::deadline::{SearchLimits, set_search_limits};
pub use search::{
    AccessFilter, AccessGroup, Cursor, ExportScan, FilterLimit, Keyset, Population, SearchPage,
    SearchSpec, SortType, SortValue, sort_type,
};
pub use settings::BASE_URL_SETTING;
pub use write::{Current, Tx, VersionWrite, WriteStatus};

use sqlx::{PgPool, SqlitePool};

/// A database error, kept whole for the log.
#[derive(Debug)]
pub struct StoreError(pub sqlx::Error);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database error: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError(sqlx::Error::Migrate(Box::new(error)))
    }
}

impl StoreError {
    /// A serialization failure or deadlock: the client may simply try again.
    pub fn is_transient(&self) -> bool {
        match &self.0 {
            sqlx::Error::Database(error) => {
                matches!(error.code().as_deref(), Some("40001" | "40P01"))
            }
            _ => false,
        }
    }

    /// A search statement stopped at its time limit (see `search::deadline`).
    pub fn is_timeout(&self) -> bool {
        match &self.0 {
            sqlx::Error::Database(error) => {
                // PostgreSQL query_canceled; SQLite SQLITE_INTERRUPT.
                matches!(error.code().as_deref(), Some("57014" | "9"))
            }
            _ => false,
        }
    }
}

/// What a failed database call means for the client: worth retrying later, out of space, or
/// a fault of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// The database cannot be reached or refuses work for now (connections lost, refused or
    /// cut while set up, the pool timed out, the database shutting down or locked): 503 with
    /// `Retry-After`.
    Unavailable,
    /// The database or its disk is full: 507.
    Full,
    /// Anything else: a server fault (500).
    Fault,
}

/// Seconds a client is asked to wait (`Retry-After`) while the database is unavailable.
pub const RETRY_AFTER_SECS: u32 = 5;

impl StoreError {
    pub fn trouble(&self) -> Trouble {
        match &self.0 {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            // What a connection cut while it is being set up reads as.
            | sqlx::Error::Protocol(_) => Trouble::Unavailable,
            sqlx::Error::Database(error) => {
                if let Some(error) = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    postgres_trouble(error.code())
                } else if let Some(code) = error.code() {
                    sqlite_trouble(&code)
                } else {
                    Trouble::Fault
                }
            }
            _ => Trouble::Fault,
        }
    }
}

/// PostgreSQL SQLSTATEs: class 08 (connection exception), 57P01–57P03 (shutdown, cannot
/// connect now), 53300 (too many connections), 53200 (out of memory); 53100 is a full disk.
fn postgres_trouble(sqlstate: &str) -> Trouble {
    match sqlstate {
        "53100" => Trouble::Full,
        "53200" | "53300" | "57P01" | "57P02" | "57P03" => Trouble::Unavailable,
        code if code.starts_with("08") => Trouble::Unavailable,
        _ => Trouble::Fault,
    }
}

/// SQLite result codes (extended; the primary code is the low byte): FULL (13) is a full
/// database or disk; BUSY (5), LOCKED (6), IOERR (10) and CANTOPEN (14) are unavailability.
fn sqlite_trouble(code: &str) -> Trouble {
    match code.parse::<i32>().map(|code| code & 0xff) {
        Ok(13) => Trouble::Full,
        Ok(5 | 6 | 10 | 14) => Trouble::Unavailable,
        _ => Trouble::Fault,
    }
}

impl From<StoreError> for crate::fhir::outcome::FhirError {
    fn from(error: StoreError) -> Self {
        use crate::fhir::outcome::{FhirError, IssueCode};
        use axum::http::StatusCode;
        if error.is_transient() {
            tracing::warn!(%error, "transient database conflict");
            return FhirError::conflict("the write collided with a concurrent write; try again");
        }
        if error.is_timeout() {
            tracing::warn!(%error, "search stopped at its time limit");
            return FhirError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                crate::fhir::outcome::IssueCode::TooCostly,
                "the search took longer than this server allows; narrow it and try again",
            );
        }
        match error.trouble() {
            Trouble::Unavailable => {
                tracing::warn!(%error, "database unavailable");
                FhirError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    IssueCode::NoStore,
                    "the database is unavailable; try again shortly",
                )
            }
            Trouble::Full => {
                tracing::error!(%error, "database storage full");
                FhirError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    IssueCode::NoStore,
                    "the database has no space left for this write; nothing was stored",
                )
            }
            Trouble::Fault => FhirError::internal("accessing the database", error),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which engine a `Store` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A connection pool's use at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The database behind Kiln: cheap to clone (a pool handle).
#[derive(Clone)]
pub enum Store {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
macro_rules! dispatch {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Postgres($pool) => $body,
            $crate::store::Store::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use dispatch;

/// Starting a transaction that writes, on either pool (in a [`dispatch`] body). SQLite takes
/// its write lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads before it
/// writes fails to upgrade its lock (SQLITE_BUSY_SNAPSHOT, which the busy timeout does not
/// wait out) when another connection committed in between, as the audit log's loader does
/// at any moment.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;

    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;

    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send
    {
        self.begin()
    }
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;

    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send
    {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl Store {
    pub fn backend(&self) -> Backend {
        match self {
            Store::Postgres(_) => Backend::Postgres,
            Store::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the backend's embedded migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Store::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
            Store::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// Checks that the database answers (`/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Refreshes the planner's statistics: after a bulk load they describe an empty
    /// database, and searches would be planned for one.
    pub async fn analyze(&self) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("ANALYZE").execute(pool).await?;
        });
        Ok(())
    }

    /// The connection pool right now: connections open, of them idle, and the most it opens
    /// (`/metrics`).
    pub fn pool_use(&self) -> PoolUse {
        dispatch!(self, pool => PoolUse {
            size: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        })
    }

    pub async fn close(&self) {
        dispatch!(self, pool => pool.close().await)
    }
}
