//! Bulk Data export jobs and their files: the queue workers claim from with a lease.

use super::{Store, StoreResult, dispatch};

/// Where a job is, stored as its lowercase name: the text `as_str` gives (a test below
/// checks the two agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Encode, sqlx::Decode)]
#[sqlx(rename_all = "lowercase")]
pub enum ExportStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds its lease.
    Running,
    /// Finished: the manifest and files are served until the job expires.
    Done,
    Failed,
    /// Ended by its owner. Cancelling deletes the job, so Kiln never stores this status; a
    /// row that has it is still read as such.
    Cancelled,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Queued => "queued",
            ExportStatus::Running => "running",
            ExportStatus::Done => "done",
            ExportStatus::Failed => "failed",
            ExportStatus::Cancelled => "cancelled",
        }
    }
}

/// A text column on either backend.
impl<DB: sqlx::Database> sqlx::Type<DB> for ExportStatus
where
    str: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as sqlx::Type<DB>>::compatible(ty)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExportJob {
    pub id: String,
    pub client_id: String,
    /// The username of who started it through `client_id`; `None`: a backend service
    /// (or anonymous access).
    pub owner_user: Option<String>,
    pub request_url: String,
    /// `system`, `patient` or `group`.
    pub level: String,
    pub group_id: Option<String>,
    /// The kick-off parameters and the token's grant, as JSON.
    pub params: String,
    pub status: ExportStatus,
    pub progress: Option<String>,
    pub transaction_time: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// One file of a job's manifest.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExportFile {
    /// `output`, `error` or `deleted`.
    pub kind: String,
    /// The type of every line (for output organized by Patient: `Patient`).
    pub resource_type: String,
    pub name: String,
    pub count: i64,
    /// The last key written, where a resumed run goes on; `None` when the file ended its
    /// part of the export.
    pub resume_after: Option<String>,
    /// The partial-manifest page the file was handed out in.
    #[sqlx(rename = "manifest_page")]
    pub page: Option<i64>,
}

const COLUMNS: &str = "id, client_id, request_url, level, group_id, params, status, progress, \
                       transaction_time, error, created_at, expires_at, owner_user";

/// PostgreSQL lets replicas skip a row another one is claiming; SQLite has one writer.
const CLAIM_PG: &str = "FOR UPDATE SKIP LOCKED";

impl Store {
    pub async fn insert_export_job(&self, job: &ExportJob) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO bulk_export_jobs ({COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            )))
            .bind(&job.id)
            .bind(&job.client_id)
            .bind(&job.request_url)
            .bind(&job.level)
            .bind(&job.group_id)
            .bind(&job.params)
            .bind(job.status)
            .bind(&job.progress)
            .bind(job.transaction_time)
            .bind(&job.error)
            .bind(job.created_at)
            .bind(job.expires_at)
            .bind(&job.owner_user)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn export_job(&self, id: &str) -> StoreResult<Option<ExportJob>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM bulk_export_jobs WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Jobs of `client_id` still queued or running.
    pub async fn active_export_jobs(&self, client_id: &str) -> StoreResult<i64> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM bulk_export_jobs \
                 WHERE client_id = $1 AND status IN ('queued', 'running')",
            )
            .bind(client_id)
            .fetch_one(pool)
            .await?)
        })
    }

    /// How many jobs there are in each status (`/metrics`); a status without jobs is absent.
    pub async fn export_jobs_by_status(&self) -> StoreResult<Vec<(String, i64)>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT status, COUNT(*) FROM bulk_export_jobs GROUP BY status",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// Takes the oldest queued job, or a running one whose lease ran out (its worker died),
    /// for `worker` until `lease_until`.
    pub async fn claim_export_job(
        &self,
        worker: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<ExportJob>> {
        let lock = match self {
            Store::Postgres(_) => CLAIM_PG,
            Store::Sqlite(_) => "",
        };
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE bulk_export_jobs SET status = 'running', worker = $1, lease_until = $2 \
                 WHERE id = (SELECT id FROM bulk_export_jobs \
                             WHERE status = 'queued' OR (status = 'running' AND lease_until < $3) \
                             ORDER BY created_at, id LIMIT 1 {lock}) \
                 RETURNING {COLUMNS}"
            )))
            .bind(worker)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Extends `worker`'s lease and records progress; false when the job is no longer its
    /// own (cancelled, or taken over after the lease ran out).
    pub async fn renew_export_lease(
        &self,
        id: &str,
        worker: &str,
        lease_until: i64,
        progress: &str,
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let done = sqlx::query(
                "UPDATE bulk_export_jobs SET lease_until = $1, progress = $2 \
                 WHERE id = $3 AND worker = $4 AND status = 'running'",
            )
            .bind(lease_until)
            .bind(progress)
            .bind(id)
            .bind(worker)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Records a finished file of `worker`'s run; false when the job is no longer its own
    /// (cancelled, or taken over after the lease ran out), so nothing was recorded.
    pub async fn add_export_file(
        &self,
        id: &str,
        worker: &str,
        seq: i64,
        file: &ExportFile,
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let done = sqlx::query(
                "INSERT INTO bulk_export_files \
                 (job_id, seq, kind, resource_type, name, count, resume_after) \
                 SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS \
                 (SELECT 1 FROM bulk_export_jobs \
                  WHERE id = $1 AND worker = $8 AND status = 'running')",
            )
            .bind(id)
            .bind(seq)
            .bind(&file.kind)
            .bind(&file.resource_type)
            .bind(&file.name)
            .bind(file.count)
            .bind(&file.resume_after)
            .bind(worker)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn export_files(&self, id: &str) -> StoreResult<Vec<ExportFile>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT kind, resource_type, name, count, resume_after, manifest_page \
                 FROM bulk_export_files WHERE job_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Hands out the job's files not yet in a partial-manifest page as page `page`, unless
    /// that page (or a later one) exists already: a page once given never changes.
    pub async fn freeze_export_page(&self, id: &str, page: i64) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "UPDATE bulk_export_files SET manifest_page = $2 \
                 WHERE job_id = $1 AND manifest_page IS NULL AND NOT EXISTS \
                 (SELECT 1 FROM bulk_export_files later \
                  WHERE later.job_id = $1 AND later.manifest_page >= $2)",
            )
            .bind(id)
            .bind(page)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Ends `worker`'s run: `done` (with its expiry) or `failed`; false if the job was
    /// cancelled or taken over meanwhile.
    pub async fn finish_export_job(
        &self,
        id: &str,
        worker: &str,
        status: ExportStatus,
        error: Option<&str>,
        expires_at: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let done = sqlx::query(
                "UPDATE bulk_export_jobs SET status = $1, error = $2, expires_at = $3, \
                 lease_until = NULL, progress = NULL \
                 WHERE id = $4 AND worker = $5 AND status = 'running'",
            )
            .bind(status)
            .bind(error)
            .bind(expires_at)
            .bind(id)
            .bind(worker)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Deletes a job and its file rows (cancellation, expiry).
    pub async fn delete_export_job(&self, id: &str) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let done = sqlx::query("DELETE FROM bulk_export_jobs WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Ids of finished jobs past their expiry.
    pub async fn expired_export_jobs(&self, now: i64) -> StoreResult<Vec<String>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT id FROM bulk_export_jobs WHERE expires_at IS NOT NULL AND expires_at < $1",
            )
            .bind(now)
            .fetch_all(pool)
            .await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ExportStatus;

    /// The stored text is the name `as_str` reports, and reads back as the same status.
    #[tokio::test]
    async fn status_is_stored_as_its_name() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        for status in [
            ExportStatus::Queued,
            ExportStatus::Running,
            ExportStatus::Done,
            ExportStatus::Failed,
            ExportStatus::Cancelled,
        ] {
            let (text, back): (String, ExportStatus) = sqlx::query_as("SELECT $1, $1")
                .bind(status)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!((text.as_str(), back), (status.as_str(), status));
        }
    }
}
