//! The export worker started by `kiln serve`: claims jobs from the database queue (shared by
//! every replica), runs them, and removes expired exports.

use std::time::{Duration, Instant};

use super::run::{Ended, Run};
use crate::state::AppState;
use crate::store::{ExportJob, ExportStatus, Store};

const IDLE_POLL: Duration = Duration::from_millis(500);
const CLEANUP_EVERY: Duration = Duration::from_secs(5);

/// The handle lets an in-process user (`kiln bench`) stop the worker with its server.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_cleanup: Option<Instant> = None;
        loop {
            if last_cleanup.is_none_or(|at| at.elapsed() >= CLEANUP_EVERY) {
                if let Err(error) = remove_expired(&state).await {
                    tracing::warn!(%error, "could not remove expired exports");
                }
                last_cleanup = Some(Instant::now());
            }
            match claim_and_run(&state).await {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(IDLE_POLL).await,
                Err(error) => {
                    tracing::warn!(%error, "export worker error");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    })
}

/// Runs one claimed job; false when none was waiting.
async fn claim_and_run(state: &AppState) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    // A fresh id per claim: a run that lost its lease can never touch its successor's work.
    let worker = uuid::Uuid::new_v4().simple().to_string();
    let now = crate::auth::now();
    let lease = now + state.config.export.export_lease.max(1);
    let Some(job) = state.store.claim_export_job(&worker, now, lease).await? else {
        return Ok(false);
    };
    tracing::info!(job = %job.id, level = %job.level, "export started");
    let reads = match &state.read_replica {
        Some(replica) => replica.for_export().await,
        None => state.store.clone(),
    };
    // An interrupted run's recorded files stay and this run goes on after them.
    let ended = match Run::new(state, &job, &worker, reads) {
        Ok(run) => run.execute().await,
        Err(error) => Err(error),
    };
    finish(state, &job, &worker, ended).await?;
    Ok(true)
}

async fn finish(
    state: &AppState,
    job: &ExportJob,
    worker: &str,
    ended: Result<Ended, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let expires = crate::auth::now() + state.config.export.export_expiry.max(1);
    let kept = match ended {
        Ok(Ended::Complete) => {
            state
                .store
                .finish_export_job(&job.id, worker, ExportStatus::Done, None, expires)
                .await?
        }
        Ok(Ended::Lost) => false,
        Err(error) => {
            tracing::warn!(job = %job.id, %error, "export failed");
            state
                .store
                .finish_export_job(
                    &job.id,
                    worker,
                    ExportStatus::Failed,
                    Some(&error.to_string()),
                    expires,
                )
                .await?;
            false
        }
    };
    if kept {
        tracing::info!(job = %job.id, "export complete");
    } else if abandoned(&state.store, &job.id).await? {
        state.exports.remove_job(&job.id).await?;
    }
    Ok(())
}

/// Whether nothing will ever serve the job's files: it was cancelled, or it failed. A job
/// another run took over keeps them; its expiry removes what this run left.
async fn abandoned(store: &Store, id: &str) -> Result<bool, crate::store::StoreError> {
    Ok(store
        .export_job(id)
        .await?
        .is_none_or(|job| match job.status {
            ExportStatus::Failed | ExportStatus::Cancelled => true,
            ExportStatus::Queued | ExportStatus::Running | ExportStatus::Done => false,
        }))
}

async fn remove_expired(state: &AppState) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for id in state.store.expired_export_jobs(crate::auth::now()).await? {
        // Files first: should the store fail, the job stays listed and the next sweep retries.
        state.exports.remove_job(&id).await?;
        state.store.delete_export_job(&id).await?;
        tracing::info!(job = %id, "expired export removed");
    }
    Ok(())
}
