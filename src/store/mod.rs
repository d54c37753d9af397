//! Storage: one `Store` over PostgreSQL or SQLite, with the same behaviour on both.
//!
//! The SQL text is shared: both engines accept `$n` placeholders, `ON CONFLICT` and
//! `RETURNING`; the `dispatch!` macro compiles each body once per backend.

pub mod auth;
mod connect;
mod export;
mod history;
mod index;
mod read;
mod search;
mod settings;
mod write;

pub use export::{ExportFile, ExportJob};
pub use history::{HistoryEntry, HistoryQuery, HistoryScope};
pub use index::{
    CompartmentRow, DateRow, IndexRows, Indexed, NumberRow, QuantityRow, ReferenceRow, StringRow,
    TokenRow, UriRow,
};
pub use read::StoredResource;
pub use search::deadline::{SearchLimits, set_search_limits};
pub use search::{
    AccessFilter, AccessGroup, Cursor, ExportScan, Keyset, Population, SearchPage, SearchSpec,
    SortType, SortValue, sort_type,
};
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

impl From<StoreError> for crate::fhir::outcome::FhirError {
    fn from(error: StoreError) -> Self {
        use crate::fhir::outcome::FhirError;
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
        FhirError::internal("accessing the database", error)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which engine a `Store` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
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

    pub async fn close(&self) {
        dispatch!(self, pool => pool.close().await)
    }
}
