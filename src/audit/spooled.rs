//! The recorder's spooled path (`kiln serve` on a SQLite file, or with `--audit-spool-dir`):
//! a request writes its event to the spool itself, under a lock, and is answered once the
//! event is in the spool file (one `write`): it survives a crash of the process from then on.
//! A thread syncs the spool every [`SYNC_EVERY`], so a crash of the machine loses at most the
//! events of that last interval. A task loads the spooled events into the searchable table
//! in large batches: a quiet log once per [`LOAD_PAUSE`], a busy one once per
//! [`BUSY_LOAD_PAUSE`], sooner when someone waits for the table
//! ([`super::Recorder::settled`]) or a full load is waiting. No request waits on another
//! thread: handing each event over and waking its request again cost more than the event.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::recorder::{AuditUnavailable, own_connection};
use super::spool::{Leftover, Spool};
use crate::store::Store;
use crate::store::audit::chain::AuditRow;

/// How often the spool is synced (`fdatasync`) while events are written to it.
pub const SYNC_EVERY: Duration = Duration::from_millis(50);
/// How often a quiet log is loaded: at most this long after an event is spooled, a search
/// of the table that does not wait for the loader (another replica's) finds it.
const LOAD_PAUSE: Duration = Duration::from_secs(1);
/// Events waiting, at least, that make a log busy: it is loaded every [`BUSY_LOAD_PAUSE`]
/// instead (or at [`LOAD_BATCH`] events). A load writes each index page it changes once, and
/// the index on the events' resources takes them at random places: fewer, larger loads
/// write far fewer of its pages per event, and clear the readers' page caches (which a
/// SQLite commit does) less often.
const BUSY_LOAD: usize = 4096;
/// The time between two loads of a busy log.
const BUSY_LOAD_PAUSE: Duration = Duration::from_secs(3);
/// Events per load that make the loader start without waiting out its pause.
const LOAD_BATCH: usize = 32 * 1024;
/// Events spooled and not yet taken by the loader, at most: beyond this, requests wait until
/// it takes them (backpressure, bounded memory).
const MAX_WAITING: usize = 64 * 1024;

/// Events spooled and loaded so far, for [`Spooled::settled`] and the backlog metric.
struct Progress {
    spooled: AtomicU64,
    loaded: watch::Sender<u64>,
    /// Wakes the loader out of its pause between loads.
    hurry: Notify,
    /// The backlog metric's handle (looked up once, not per event).
    gauge: metrics::Gauge,
}

impl Progress {
    fn backlog(&self) -> u64 {
        self.spooled
            .load(Ordering::Acquire)
            .saturating_sub(*self.loaded.borrow())
    }

    fn publish(&self) {
        self.gauge.set(self.backlog() as f64);
    }
}

/// The open spool and the events written to it that the loader has not taken yet.
pub struct Spooled {
    state: Mutex<State>,
    progress: Arc<Progress>,
    /// Wakes requests waiting for room (the loader took what was waiting).
    room: Notify,
}

struct State {
    spool: Spool,
    /// Written to the spool, not yet taken by the loader, oldest first.
    rows: Vec<AuditRow>,
    /// Segments sealed since the loader last took the rows: deleted once those are loaded.
    sealed: Vec<PathBuf>,
}

impl Spooled {
    /// Opens and locks the spool in `dir` (fails when another server holds it), starts the
    /// thread that syncs it and the task (on the current runtime) that loads it into
    /// `store`'s table, beginning with what earlier runs left in it.
    pub fn open(store: Store, dir: &Path) -> std::io::Result<Arc<Spooled>> {
        let (spool, leftovers) = Spool::open(dir)?;
        let left: usize = leftovers.iter().map(|leftover| leftover.rows.len()).sum();
        let progress = Arc::new(Progress {
            spooled: AtomicU64::new(left as u64),
            loaded: watch::Sender::new(0),
            hurry: Notify::new(),
            gauge: metrics::gauge!(crate::telemetry::AUDIT_BACKLOG),
        });
        let spooled = Arc::new(Spooled {
            state: Mutex::new(State {
                spool,
                rows: Vec::new(),
                sealed: Vec::new(),
            }),
            progress: progress.clone(),
            room: Notify::new(),
        });
        let syncing = Arc::downgrade(&spooled);
        std::thread::Builder::new()
            .name("kiln-audit-sync".to_owned())
            .spawn(move || sync_periodically(&syncing))?;
        tokio::spawn(load(store, leftovers, Arc::downgrade(&spooled), progress));
        Ok(spooled)
    }

    /// Returns once every event written before the call is in the table, or fails after
    /// `wait`: a search of the log sees every request this server has answered.
    pub async fn settled(&self, wait: Duration) -> Result<(), AuditUnavailable> {
        let target = self.progress.spooled.load(Ordering::Acquire);
        let mut loaded = self.progress.loaded.subscribe();
        if *loaded.borrow() >= target {
            return Ok(());
        }
        self.progress.hurry.notify_one();
        match tokio::time::timeout(wait, loaded.wait_for(|loaded| *loaded >= target)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(AuditUnavailable),
        }
    }

    /// Writes `row` to the spool; returns once it is in the spool file, after waiting for
    /// room when [`MAX_WAITING`] events wait for the loader. Fails when the file cannot be
    /// written.
    pub async fn record(&self, row: AuditRow) -> Result<(), AuditUnavailable> {
        loop {
            // Made before the check, so a wake-up between the check and the wait is kept.
            let room = self.room.notified();
            {
                let mut state = self.lock();
                if state.rows.len() < MAX_WAITING {
                    return state.write(row, &self.progress);
                }
            }
            self.progress.hurry.notify_one();
            room.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left the state as consistent as any write does.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn write(&mut self, row: AuditRow, progress: &Progress) -> Result<(), AuditUnavailable> {
        match self.spool.write(std::slice::from_ref(&row)) {
            Ok(sealed) => self.sealed.extend(sealed),
            Err(error) => {
                tracing::error!(%error, "the audit spool could not be written");
                return Err(AuditUnavailable);
            }
        }
        self.rows.push(row);
        progress.spooled.fetch_add(1, Ordering::AcqRel);
        // Before the answer: whoever watches the backlog sees this event in it.
        progress.publish();
        if self.rows.len() >= LOAD_BATCH {
            progress.hurry.notify_one();
        }
        Ok(())
    }
}

/// The sync thread: every [`SYNC_EVERY`], syncs what was written to the spool since the
/// last sync (outside the lock: requests keep writing meanwhile). Ends with the spool (which
/// syncs itself when closed).
fn sync_periodically(spooled: &Weak<Spooled>) {
    loop {
        std::thread::sleep(SYNC_EVERY);
        let Some(spooled) = spooled.upgrade() else {
            return;
        };
        let unsynced = spooled.lock().spool.take_unsynced();
        if let Some(file) = unsynced
            && let Err(error) = file.sync_data()
        {
            // The events are on their way to the table all the same; only a crash of the
            // machine before they are loaded would lose them.
            tracing::error!(%error, "the audit spool could not be synced");
        }
    }
}

/// The loader task: loads the `leftovers` of earlier runs, then, once per [`LOAD_PAUSE`]
/// ([`BUSY_LOAD_PAUSE`] while [`BUSY_LOAD`] or more wait; sooner when hurried), takes every
/// event waiting and appends it to the table in one
/// transaction, retrying a failed load until it succeeds (the events are safe in the spool
/// meanwhile; requests wait once [`MAX_WAITING`] more are waiting). Ends with the spool.
async fn load(
    store: Store,
    leftovers: Vec<Leftover>,
    spooled: Weak<Spooled>,
    progress: Arc<Progress>,
) {
    // Synced commits: a load's segments are deleted once it is committed, and its events
    // must survive a crash of the machine from then on, as they did in the synced spool.
    let writer = own_connection(&store, true).await;
    let store = writer
        .as_ref()
        .map_or(store, |writer| writer.store().clone());
    for leftover in leftovers {
        load_leftover(&store, leftover, &progress).await;
    }
    let mut last_load = Instant::now();
    loop {
        let hurried = tokio::select! {
            () = tokio::time::sleep(LOAD_PAUSE) => false,
            () = progress.hurry.notified() => true,
        };
        let Some(open) = spooled.upgrade() else {
            return;
        };
        let (rows, sealed) = {
            let mut state = open.lock();
            let busy = state.rows.len() >= BUSY_LOAD;
            if busy && !hurried && last_load.elapsed() < BUSY_LOAD_PAUSE {
                continue;
            }
            (
                std::mem::take(&mut state.rows),
                std::mem::take(&mut state.sealed),
            )
        };
        last_load = Instant::now();
        open.room.notify_waiters();
        drop(open);
        if rows.is_empty() {
            continue;
        }
        append_until_stored(&store, &rows).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::stored::{FORMAT, StoredEvent};

    fn row(number: usize) -> AuditRow {
        let event = StoredEvent {
            v: FORMAT,
            id: format!("event-{number}"),
            recorded: 1_700_000_000_000_000,
            type_code: "rest".to_owned(),
            subtype: "read".to_owned(),
            action: "R".to_owned(),
            outcome: "0".to_owned(),
            entity: Some(format!("Patient/{number}")),
            base: "http://kiln.test/fhir".to_owned(),
            ..StoredEvent::default()
        };
        AuditRow::of_body(event.to_bytes()).unwrap()
    }

    async fn rename(store: &Store, from: &str, to: &str) {
        let Store::Sqlite(pool) = store else {
            unreachable!("a SQLite store")
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {from} RENAME TO {to}"
        )))
        .execute(pool)
        .await
        .unwrap();
    }

    async fn loaded(store: &Store) -> i64 {
        let Store::Sqlite(pool) = store else {
            unreachable!("a SQLite store")
        };
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// Polls the table until it holds `count` events; returns when, after `started`.
    async fn loaded_after(store: &Store, count: i64, started: Instant) -> Duration {
        while loaded(store).await < count {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the events were never loaded"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.elapsed()
    }

    /// A quiet log is loaded at the first pause; a busy one waits out its longer pause, and
    /// a search of the log does not wait for it.
    #[tokio::test]
    async fn a_busy_log_is_loaded_less_often_unless_someone_waits() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("kiln.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();

        let started = Instant::now();
        let spooled = Spooled::open(store.clone(), &dir.path().join("quiet")).unwrap();
        for number in 0..10 {
            spooled.record(row(number)).await.unwrap();
        }
        let quiet = loaded_after(&store, 10, started).await;
        assert!(quiet < BUSY_LOAD_PAUSE, "a quiet log waited {quiet:?}");
        drop(spooled);

        let started = Instant::now();
        let spooled = Spooled::open(store.clone(), &dir.path().join("busy")).unwrap();
        let busy = BUSY_LOAD + 10;
        for number in 0..busy {
            spooled.record(row(100 + number)).await.unwrap();
        }
        let waited = loaded_after(&store, 10 + busy as i64, started).await;
        assert!(
            waited >= BUSY_LOAD_PAUSE,
            "a busy log was loaded after {waited:?}"
        );

        let started = Instant::now();
        for number in 0..busy {
            spooled.record(row(100_000 + number)).await.unwrap();
        }
        spooled.settled(Duration::from_secs(60)).await.unwrap();
        assert_eq!(loaded(&store).await, 10 + 2 * busy as i64);
        assert!(
            started.elapsed() < BUSY_LOAD_PAUSE,
            "a search waited {:?} for the log",
            started.elapsed()
        );
    }

    /// While the table refuses every load, requests are answered until [`MAX_WAITING`] events
    /// wait in memory; then the next one waits, and it is answered once the loads succeed.
    #[tokio::test]
    async fn requests_wait_for_room_while_the_table_refuses_loads() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("kiln.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        rename(&store, "audit_events", "audit_events_away").await;
        let spooled = Spooled::open(store.clone(), &dir.path().join("spool")).unwrap();
        let wait = Duration::from_millis(500);
        let mut answered = 0;
        let blocked = loop {
            let record = spooled.record(row(answered));
            let mut record = Box::pin(record);
            match tokio::time::timeout(wait, record.as_mut()).await {
                Ok(result) => result.unwrap(),
                Err(_) => break record,
            }
            answered += 1;
            assert!(answered <= 2 * MAX_WAITING, "no request ever waited");
        };
        assert!(
            answered >= MAX_WAITING,
            "{answered} answered before one waited"
        );
        rename(&store, "audit_events_away", "audit_events").await;
        tokio::time::timeout(Duration::from_secs(60), blocked)
            .await
            .expect("the waiting request is answered once the loads succeed")
            .unwrap();
        spooled
            .settled(Duration::from_secs(60))
            .await
            .expect("every event is loaded");
        let Store::Sqlite(pool) = &store else {
            unreachable!()
        };
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(count, answered as i64 + 1);
    }
}
