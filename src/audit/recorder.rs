//! The durable, batched writer of the events that are not written with a resource (reads,
//! searches, operations, refusals, security events). A request hands its event over and
//! waits until it is durable; the queue is bounded, so when it is full requests wait for
//! room. When the log cannot be written the request gets [`AuditUnavailable`] (a 503) and no
//! answer: an event is never dropped silently. Two ways to durability:
//!
//! - With a spool (`kiln serve` on a SQLite file, or with `--audit-spool-dir`): one thread
//!   writes everything waiting to the spool file and syncs it once (group commit), then
//!   answers; a task loads the spooled events into the table in large batches, and a search
//!   of the log first waits for it ([`Recorder::settled`]).
//! - Without ([`Recorder::start`]): one task appends everything waiting to the table in one
//!   transaction, then answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::event::Event;
use super::spool::{Leftover, Spool};
use crate::fhir::outcome::{FhirError, IssueCode};
use crate::store::Store;
use crate::store::audit::chain::AuditRow;

/// Events waiting for the writer, at most: beyond this, requests wait (backpressure).
const QUEUE: usize = 4096;
/// Events per transaction (or per spool sync), at most.
const BATCH: usize = 512;
/// How long the spool waits for more events before a sync when it is busy (as PostgreSQL's
/// `commit_delay`): fewer syncs, each for more requests.
const GROUP_WAIT: Duration = Duration::from_millis(1);
/// Synced batches (of up to [`BATCH`] events) waiting for the loader, at most: beyond this
/// the spool waits for it.
const LOAD_QUEUE: usize = 64;
/// Events per load into the table, at most.
const LOAD_BATCH: usize = 4096;
/// The shortest time between two loads: fewer, larger commits, so the readers' page caches
/// (which a SQLite commit clears) stay warm.
const LOAD_PAUSE: Duration = Duration::from_millis(50);
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
    queue: mpsc::Sender<Pending>,
    /// The FHIR base URL: the events' observer.
    base: String,
    /// With a spool: how far the table has caught up with it.
    progress: Option<Arc<Progress>>,
}

/// Events spooled and loaded so far, for [`Recorder::settled`] and the backlog metric.
struct Progress {
    spooled: AtomicU64,
    loaded: watch::Sender<u64>,
    /// Wakes the loader out of its pause between loads.
    hurry: Notify,
}

impl Progress {
    fn backlog(&self) -> u64 {
        self.spooled
            .load(Ordering::Acquire)
            .saturating_sub(*self.loaded.borrow())
    }

    fn publish(&self) {
        metrics::gauge!(crate::telemetry::AUDIT_BACKLOG).set(self.backlog() as f64);
    }
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
                queue,
                base,
                progress: None,
            })),
        }
    }

    /// A recorder writing through the spool in `dir` (opened and locked here; fails when
    /// another server holds it): each batch is synced to the spool before its requests are
    /// answered, and loaded into `store`'s table in large batches by a task spawned on the
    /// current runtime, which first loads what earlier runs left in the spool.
    pub fn spooled(store: Store, base: String, dir: &Path) -> std::io::Result<Recorder> {
        let (spool, leftovers) = Spool::open(dir)?;
        let (queue, receiver) = mpsc::channel(QUEUE);
        let (loads, loader) = mpsc::channel(LOAD_QUEUE);
        let left: usize = leftovers.iter().map(|leftover| leftover.rows.len()).sum();
        let progress = Arc::new(Progress {
            spooled: AtomicU64::new(left as u64),
            loaded: watch::Sender::new(0),
            hurry: Notify::new(),
        });
        let writer = progress.clone();
        std::thread::Builder::new()
            .name("kiln-audit-spool".to_owned())
            .spawn(move || spool_batches(spool, receiver, loads, &writer))?;
        tokio::spawn(load_batches(store, leftovers, loader, progress.clone()));
        Ok(Recorder {
            inner: Some(Arc::new(Inner {
                queue,
                base,
                progress: Some(progress),
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

    /// Appends `event` and returns once it is durable (committed, or synced to the spool).
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

    /// Returns once every event recorded before the call is in the searchable table (at once
    /// without a spool), or fails after [`SETTLE_WAIT`]: a search of the log sees every
    /// request this server has answered.
    pub async fn settled(&self) -> Result<(), AuditUnavailable> {
        let Some(progress) = self
            .inner
            .as_ref()
            .and_then(|inner| inner.progress.as_ref())
        else {
            return Ok(());
        };
        let target = progress.spooled.load(Ordering::Acquire);
        let mut loaded = progress.loaded.subscribe();
        if *loaded.borrow() >= target {
            return Ok(());
        }
        progress.hurry.notify_one();
        match tokio::time::timeout(SETTLE_WAIT, loaded.wait_for(|loaded| *loaded >= target)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(AuditUnavailable),
        }
    }
}

/// The writer task: takes everything waiting (up to [`BATCH`]), appends it in one
/// transaction and answers every request of the batch.
async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Pending>) {
    let writer = own_connection(&store).await;
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
/// stays warm between batches while the pool's connections only read.
async fn own_connection(store: &Store) -> Option<crate::store::BulkWriter> {
    match store.bulk_writer().await {
        Ok(writer) => Some(writer),
        Err(error) => {
            tracing::warn!(%error, "the audit log appends through the shared pool");
            None
        }
    }
}

/// What the spool's thread hands the loader: a batch of events it synced, and the segment
/// it sealed after them, if it did (deleted once they are loaded).
struct Synced {
    rows: Vec<AuditRow>,
    sealed: Option<PathBuf>,
}

/// The spool's thread: takes everything waiting (up to [`BATCH`]), writes and syncs it in
/// one go, answers every request of the batch, then hands the events to the loader (waiting
/// for room when it is behind: backpressure).
fn spool_batches(
    mut spool: Spool,
    mut receiver: mpsc::Receiver<Pending>,
    loads: mpsc::Sender<Synced>,
    progress: &Progress,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        take_waiting(&mut receiver, &mut batch);
        // Busy (more than one event came at once): wait a moment for more, so one sync
        // covers more requests. A lone event is synced at once.
        if batch.len() > 1 && batch.len() < BATCH {
            std::thread::sleep(GROUP_WAIT);
            take_waiting(&mut receiver, &mut batch);
        }
        let (rows, waiting) = split(&mut batch);
        let sealed = match spool.append(&rows) {
            Ok(sealed) => sealed,
            Err(error) => {
                tracing::error!(%error, events = rows.len(), "the audit spool could not be written");
                answer(waiting, Err(AuditUnavailable));
                continue;
            }
        };
        progress
            .spooled
            .fetch_add(rows.len() as u64, Ordering::AcqRel);
        progress.publish();
        answer(waiting, Ok(()));
        if loads.blocking_send(Synced { rows, sealed }).is_err() {
            return;
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

/// Moves the events waiting in `receiver` into `batch`, up to [`BATCH`].
fn take_waiting(receiver: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    while batch.len() < BATCH {
        match receiver.try_recv() {
            Ok(pending) => batch.push(pending),
            Err(_) => break,
        }
    }
}

/// The loader task: loads the `leftovers` of earlier runs, then appends what the spool
/// synced to the table, in one transaction per load, at most one load per [`LOAD_PAUSE`]
/// unless someone waits for it ([`Recorder::settled`]) or a full load is waiting; retries a
/// failed load until it succeeds (the events are safe in the spool meanwhile, and the
/// spool's thread waits once [`LOAD_QUEUE`] are waiting).
async fn load_batches(
    store: Store,
    leftovers: Vec<Leftover>,
    mut loader: mpsc::Receiver<Synced>,
    progress: Arc<Progress>,
) {
    let writer = own_connection(&store).await;
    let store = writer
        .as_ref()
        .map_or(store, |writer| writer.store().clone());
    for leftover in leftovers {
        load_leftover(&store, leftover, &progress).await;
    }
    let mut last_load = Instant::now();
    while let Some(first) = loader.recv().await {
        let mut rows = first.rows;
        let mut sealed: Vec<PathBuf> = first.sealed.into_iter().collect();
        // Keep taking what the spool hands over (so it never waits on the pause) until the
        // pause since the last load is over, the load is full, or someone waits for it.
        let due = tokio::time::Instant::from_std(last_load + LOAD_PAUSE);
        while rows.len() < LOAD_BATCH {
            tokio::select! {
                next = loader.recv() => match next {
                    Some(next) => {
                        rows.extend(next.rows);
                        sealed.extend(next.sealed);
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(due) => break,
                () = progress.hurry.notified() => break,
            }
        }
        append_until_stored(&store, &rows).await;
        last_load = Instant::now();
        progress
            .loaded
            .send_modify(|loaded| *loaded += rows.len() as u64);
        progress.publish();
        for path in sealed {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(%error, path = %path.display(), "cannot delete a loaded audit spool segment");
            }
        }
    }
}

/// Appends `rows` to the table, retrying until it succeeds.
async fn append_until_stored(store: &Store, rows: &[AuditRow]) {
    until_ok(
        "the audit spool could not be loaded into the audit log",
        || store.append_audit(rows),
    )
    .await;
}

/// Runs `attempt` until it succeeds, 1 s, 2 s, … up to 30 s apart, logging each failure as
/// `what`: the events wait safely in the spool meanwhile.
async fn until_ok<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::store::StoreResult<T>>,
{
    let mut wait = Duration::from_secs(1);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(error) => {
                tracing::error!(%error, retry_in = ?wait, "{what}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Loads the events of a segment an earlier run left (those not in the table yet: that run
/// may have stopped between a load's commit and deleting its segment), then deletes it.
async fn load_leftover(store: &Store, leftover: Leftover, progress: &Progress) {
    for chunk in leftover.rows.chunks(LOAD_BATCH) {
        let ids: Vec<&str> = chunk.iter().map(|row| row.event_id.as_str()).collect();
        let known = until_ok("cannot read the audit log to load the spool", || {
            store.audit_known_ids(&ids)
        })
        .await;
        let missing: Vec<AuditRow> = chunk
            .iter()
            .filter(|row| !known.contains(&row.event_id))
            .cloned()
            .collect();
        append_until_stored(store, &missing).await;
        tracing::info!(
            events = missing.len(),
            segment = %leftover.path.display(),
            "loaded audit events an earlier run left in the spool"
        );
        progress
            .loaded
            .send_modify(|loaded| *loaded += chunk.len() as u64);
        progress.publish();
    }
    if let Err(error) = std::fs::remove_file(&leftover.path) {
        tracing::warn!(%error, path = %leftover.path.display(), "cannot delete a loaded audit spool segment");
    }
}
