//! The durable, batched writer of the events that are not written with a resource (reads,
//! searches, operations, refusals, security events). A request hands its event to one
//! writer task and waits: the task appends everything waiting in one transaction (group
//! commit), then answers each request. The queue is bounded: when it is full, requests wait
//! for room. When the log cannot be written the request gets [`AuditUnavailable`] (a 503)
//! and no answer: an event is never dropped silently.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::event::Event;
use crate::fhir::outcome::{FhirError, IssueCode};
use crate::store::Store;
use crate::store::audit::chain::AuditRow;

/// Events waiting for the writer, at most: beyond this, requests wait (backpressure).
const QUEUE: usize = 4096;
/// Events per transaction, at most.
const BATCH: usize = 512;

/// The audit log could not be written: the request must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditUnavailable;

impl std::fmt::Display for AuditUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the audit log could not be written")
    }
}

impl std::error::Error for AuditUnavailable {}

impl From<AuditUnavailable> for FhirError {
    fn from(error: AuditUnavailable) -> FhirError {
        FhirError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            IssueCode::NoStore,
            error.to_string(),
        )
    }
}

struct Pending {
    row: AuditRow,
    done: oneshot::Sender<Result<(), AuditUnavailable>>,
}

/// Hands events to the writer task; cheap to clone. Off (`--disable-audit`): records nothing.
#[derive(Clone)]
pub struct Recorder {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    queue: mpsc::Sender<Pending>,
    /// The FHIR base URL: the events' observer.
    base: String,
}

impl Recorder {
    /// A recorder appending to `store`'s log, its writer task spawned on the current runtime;
    /// `enabled == false` records nothing.
    pub fn start(store: Store, base: String, enabled: bool) -> Recorder {
        if !enabled {
            return Recorder { inner: None };
        }
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, receiver));
        Recorder {
            inner: Some(Arc::new(Inner { queue, base })),
        }
    }

    /// Whether events are recorded.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The stored row of `event` as this server records it, for a caller that appends it
    /// in its own transaction; `None` when auditing is off.
    pub fn row(&self, event: &Event) -> Option<AuditRow> {
        self.inner.as_ref().map(|inner| event.row(&inner.base))
    }

    /// Appends `event` and returns once it is committed.
    pub async fn record(&self, event: Event) -> Result<(), AuditUnavailable> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let (done, committed) = oneshot::channel();
        let pending = Pending {
            row: event.row(&inner.base),
            done,
        };
        inner
            .queue
            .send(pending)
            .await
            .map_err(|_| AuditUnavailable)?;
        committed.await.map_err(|_| AuditUnavailable)?
    }
}

/// The writer task: takes everything waiting (up to [`BATCH`]), appends it in one
/// transaction and answers every request of the batch.
async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Pending>) {
    // On a SQLite file, a connection of its own: its page cache (the chain's index pages)
    // stays warm between batches while the pool's connections only read.
    let writer = match store.bulk_writer().await {
        Ok(writer) => Some(writer),
        Err(error) => {
            tracing::warn!(%error, "the audit log appends through the shared pool");
            None
        }
    };
    let store = writer
        .as_ref()
        .map_or(store, |writer| writer.store().clone());
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let rows: Vec<AuditRow> = batch.iter().map(|pending| pending.row.clone()).collect();
        let result = match store.append_audit(&rows).await {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::error!(%error, events = rows.len(), "the audit log could not be written");
                Err(AuditUnavailable)
            }
        };
        for pending in batch.drain(..) {
            let _ = pending.done.send(result);
        }
    }
}
