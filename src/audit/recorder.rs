//! Where the events not written with a resource go (reads, searches, operations, refusals,
//! security events): a request hands its event over and is answered once it is durable.
//! When the log cannot be written the request gets [`AuditUnavailable`] (a 503) and no
//! answer: an event is never dropped silently. Two ways:
//!
//! - With a spool (`kiln serve` on a SQLite file, or with `--audit-spool-dir`): the request
//!   writes the event to the spool file itself, and a task loads the spool into the table in
//!   large batches; a search of the log first waits for it ([`Recorder::settled`]). See
//!   [`super::spooled`].
//! - Without ([`Recorder::start`]): one task appends everything waiting to the table in one
//!   transaction, then answers; the queue is bounded, so when it is full requests wait.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::event::Event;
use super::spooled::Spooled;
use crate::fhir::outcome::{FhirError, IssueCode};
use crate::store::Store;
use crate::store::audit::chain::AuditRow;

/// Events waiting for the writer, at most: beyond this, requests wait (backpressure).
const QUEUE: usize = 4096;
/// Events per transaction, at most.
const BATCH: usize = 512;
/// How long [`Recorder::settled`] waits for the table to catch up with the spool.
const SETTLE_WAIT: Duration = Duration::from_secs(30);

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

/// Where a request waits for its event to be durable.
type Done = oneshot::Sender<Result<(), AuditUnavailable>>;

struct Pending {
    row: AuditRow,
    done: Done,
}

/// Hands events to the writer; cheap to clone. Off (`--disable-audit`): records nothing.
#[derive(Clone)]
pub struct Recorder {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    writer: Writer,
    /// The FHIR base URL: the events' observer.
    base: String,
}

enum Writer {
    /// The writer task's queue.
    Direct(mpsc::Sender<Pending>),
    Spooled(Arc<Spooled>),
}

impl Recorder {
    /// A recorder appending to `store`'s log, its writer task spawned on the current runtime:
    /// each batch is committed to the table before its requests are answered. `enabled ==
    /// false` records nothing.
    pub fn start(store: Store, base: String, enabled: bool) -> Recorder {
        if !enabled {
            return Recorder { inner: None };
        }
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, receiver));
        Recorder {
            inner: Some(Arc::new(Inner {
                writer: Writer::Direct(queue),
                base,
            })),
        }
    }

    /// A recorder writing through the spool in `dir` (opened and locked here; fails when
    /// another server holds it): each event is written to the spool before its request is
    /// answered, and loaded into `store`'s table in large batches by a task spawned on the
    /// current runtime, which first loads what earlier runs left in the spool.
    pub fn spooled(store: Store, base: String, dir: &Path) -> std::io::Result<Recorder> {
        Ok(Recorder {
            inner: Some(Arc::new(Inner {
                writer: Writer::Spooled(Spooled::open(store, dir)?),
                base,
            })),
        })
    }

    /// Whether events are recorded.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The stored row of `event` as this server records it, for a caller that appends it
    /// in its own transaction; `None` when auditing is off.
    pub fn row(&self, event: &Event) -> Option<AuditRow> {
        self.inner
            .as_ref()
            .map(|inner| event.clone().row(&inner.base))
    }

    /// Appends `event` and returns once it is durable: committed, or written to the spool.
    pub async fn record(&self, event: Event) -> Result<(), AuditUnavailable> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let row = event.row(&inner.base);
        let queue = match &inner.writer {
            Writer::Spooled(spooled) => return spooled.record(row).await,
            Writer::Direct(queue) => queue,
        };
        let (done, committed) = oneshot::channel();
        queue
            .send(Pending { row, done })
            .await
            .map_err(|_| AuditUnavailable)?;
        committed.await.map_err(|_| AuditUnavailable)?
    }

    /// Returns once every event recorded before the call is in the searchable table (at once
    /// without a spool), or fails after [`SETTLE_WAIT`]: a search of the log sees every
    /// request this server has answered.
    pub async fn settled(&self) -> Result<(), AuditUnavailable> {
        match self.inner.as_ref().map(|inner| &inner.writer) {
            Some(Writer::Spooled(spooled)) => spooled.settled(SETTLE_WAIT).await,
            _ => Ok(()),
        }
    }
}

/// The writer task: takes everything waiting (up to [`BATCH`]), appends it in one
/// transaction and answers every request of the batch.
async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Pending>) {
    let writer = own_connection(&store, false).await;
    let store = writer
        .as_ref()
        .map_or(store, |writer| writer.store().clone());
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let (rows, waiting) = split(&mut batch);
        let result = match store.append_audit(&rows).await {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::error!(%error, events = rows.len(), "the audit log could not be written");
                Err(AuditUnavailable)
            }
        };
        answer(waiting, result);
    }
}

/// On a SQLite file, a connection of the log's own: its page cache (the chain's index pages)
/// stays warm between batches while the pool's connections only read. `synced`: each of its
/// commits is on disk before it returns ([`Store::synced_writer`]).
pub(super) async fn own_connection(
    store: &Store,
    synced: bool,
) -> Option<crate::store::BulkWriter> {
    let writer = if synced {
        store.synced_writer().await
    } else {
        store.bulk_writer().await
    };
    match writer {
        Ok(writer) => Some(writer),
        Err(error) => {
            tracing::warn!(%error, "the audit log appends through the shared pool");
            None
        }
    }
}

/// Empties `batch` into its rows (moved, not copied) and the requests waiting on them.
fn split(batch: &mut Vec<Pending>) -> (Vec<AuditRow>, Vec<Done>) {
    batch
        .drain(..)
        .map(|pending| (pending.row, pending.done))
        .unzip()
}

/// Answers every request of a batch with `result`.
fn answer(waiting: Vec<Done>, result: Result<(), AuditUnavailable>) {
    for done in waiting {
        let _ = done.send(result);
    }
}
