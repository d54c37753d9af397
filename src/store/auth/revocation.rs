//! Revocation signals, for the caches of verified tokens that sit above the store. Every
//! write that can end a token's life (a token or grant revoked; a client removed, disabled or
//! changed; an app suspended or retired; a user disabled, removed, re-linked or given a new
//! password; a developer disabled) calls [`Announce::announce`] inside its transaction and
//! [`Signal::delivered`] after the commit.
//!
//! - The process's own caches see it at once: [`epoch`] moves on after the commit (on both
//!   backends). A cache stamps each entry with the epoch read *before* its database lookup,
//!   and trusts an entry only while the epoch is unchanged, so a lookup racing a revocation
//!   can never be cached as live.
//! - Other processes on PostgreSQL: the transaction sends `NOTIFY kiln_revocations`, which
//!   PostgreSQL delivers to every listening replica when (and only if) the write commits.
//!   [`Store::listen_revocations`] runs the listener of a replica: each notification moves
//!   the epoch on. While the listener is not connected (starting, lost, reconnecting) its
//!   [`Listening::is_live`] is false and caches must go to the database; on every (re)connect
//!   the epoch moves on, so nothing cached before is trusted again.
//! - Immediacy across replicas: every listener, once it has moved its epoch on for a
//!   notification, acknowledges it (`NOTIFY kiln_revocation_acks, '<nonce>'`, on its own
//!   connection). Listener connections carry the application name [`LISTENER_NAME`], so the
//!   revoking process counts those on its database in `pg_stat_activity` after its commit and waits (at most
//!   [`DELIVERY_WAIT`]) until that many acknowledgements of its nonce came back: by the time
//!   the client hears "revoked", every connected replica has stopped trusting its cache. A
//!   listener that connects after the commit needs no notification (connecting moves its
//!   epoch on); one that does not answer within the bound is logged, and its replica keeps
//!   its cache at most for the cache's TTL.
//! - SQLite: one process serves the database, but the command line may revoke from another
//!   while it runs. After each revoking commit a byte is appended to the file
//!   `<database>-revocations` next to the database: its length is a counter every process on
//!   the file can read with one `stat`, and caches stamp their entries with it as with the
//!   epoch ([`read_stamp`]). A stamp that cannot be read is not trusted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::watch;

use crate::store::Store;

/// The PostgreSQL channel of revocation notifications; the payload is a signal's nonce.
pub const CHANNEL: &str = "kiln_revocations";

/// The channel on which every listener acknowledges a notification it has applied; the
/// payload is the nonce.
const ACK_CHANNEL: &str = "kiln_revocation_acks";

/// The `application_name` of listener connections, by which a revoking process counts them.
const LISTENER_NAME: &str = "kiln revocation listener";

/// How long a revoking process waits for every listener to acknowledge its notification.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(1);

/// Pause between attempts to (re)connect the listener.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Moves on after every revocation this process made or heard of, and on every
/// (re)connection of a listener.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Listeners of this process that are connected and listening.
static LIVE_LISTENERS: AtomicUsize = AtomicUsize::new(0);

/// Signals of this process waiting for acknowledgements, by nonce: the count heard so far.
static WAITING: Mutex<Option<HashMap<u128, watch::Sender<usize>>>> = Mutex::new(None);

/// The current revocation epoch of this process.
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

fn advance() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

fn waiting<T>(f: impl FnOnce(&mut HashMap<u128, watch::Sender<usize>>) -> T) -> T {
    let mut guard = WAITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// One revocation on its way: created before the transaction, announced inside it,
/// [`Signal::delivered`] after its commit.
pub struct Signal {
    nonce: u128,
    /// Set by [`Announce::announce`]: a signal never announced (the write turned out not to
    /// revoke anything) is not waited for.
    announced: AtomicBool,
    acknowledged: watch::Receiver<usize>,
}

impl Signal {
    pub fn new() -> Signal {
        let nonce = uuid::Uuid::new_v4().as_u128();
        let (sender, acknowledged) = watch::channel(0);
        waiting(|map| map.insert(nonce, sender));
        Signal {
            nonce,
            announced: AtomicBool::new(false),
            acknowledged,
        }
    }

    /// After the commit on `store`: this process's caches stop trusting what they hold (and,
    /// on SQLite, those of every process on the file); on PostgreSQL, when a listener of this
    /// process is live, waits (bounded) until every connected listener has acknowledged it.
    pub async fn delivered(mut self, store: &Store) {
        if !self.announced.load(Ordering::Acquire) {
            return;
        }
        advance();
        if let Some(path) = store.revocation_stamp_path() {
            let appended = tokio::task::spawn_blocking(move || append_stamp(&path)).await;
            if !matches!(appended, Ok(Ok(()))) {
                tracing::error!("cannot record a revocation next to the SQLite database");
            }
        }
        let Store::Postgres(pool) = store else {
            return;
        };
        if LIVE_LISTENERS.load(Ordering::Acquire) == 0 {
            return;
        }
        let listeners = match sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND datname = current_database()",
        )
        .bind(LISTENER_NAME)
        .fetch_one(pool)
        .await
        {
            Ok(count) => usize::try_from(count).unwrap_or(0).max(1),
            Err(error) => {
                tracing::warn!(%error, "cannot count the revocation listeners");
                1
            }
        };
        let all_heard = self.acknowledged.wait_for(|heard| *heard >= listeners);
        if tokio::time::timeout(DELIVERY_WAIT, all_heard)
            .await
            .is_err()
        {
            tracing::warn!(
                listeners,
                "not every replica acknowledged a revocation within a second"
            );
        }
    }
}

impl Default for Signal {
    fn default() -> Self {
        Signal::new()
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        let nonce = self.nonce;
        waiting(|map| map.remove(&nonce));
    }
}

/// Sends a signal inside the revoking transaction (PostgreSQL: delivered on commit).
pub(crate) trait Announce {
    fn announce(&mut self, signal: &Signal)
    -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl Announce for sqlx::PgConnection {
    async fn announce(&mut self, signal: &Signal) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(signal.nonce.to_string())
            .execute(self)
            .await?;
        signal.announced.store(true, Ordering::Release);
        Ok(())
    }
}

impl Announce for sqlx::SqliteConnection {
    async fn announce(&mut self, signal: &Signal) -> Result<(), sqlx::Error> {
        signal.announced.store(true, Ordering::Release);
        Ok(())
    }
}

/// A running listener of this process (PostgreSQL); stopped when dropped.
pub struct Listening {
    live: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Listening {
    /// Whether the listener is connected and listening now: only then may a cache trust
    /// what it holds.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Marks a listener live while it exists (also when its task is aborted).
struct Live(Arc<AtomicBool>);

impl Live {
    fn new(flag: Arc<AtomicBool>) -> Live {
        // Whatever was cached while no listener was connected is not trusted again.
        advance();
        LIVE_LISTENERS.fetch_add(1, Ordering::AcqRel);
        flag.store(true, Ordering::Release);
        Live(flag)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
        LIVE_LISTENERS.fetch_sub(1, Ordering::AcqRel);
        advance();
    }
}

/// The revocations recorded by any process in the stamp file `path` (see the module
/// comment; `None` for no file: 0); `None` when it cannot be read.
pub fn read_stamp(path: Option<&Path>) -> Option<u64> {
    let Some(path) = path else {
        return Some(0);
    };
    match std::fs::metadata(path) {
        Ok(metadata) => Some(metadata.len()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Some(0),
        Err(_) => None,
    }
}

fn append_stamp(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(b".")
}

impl Store {
    /// The file whose length counts revocations on a SQLite database file; `None` on
    /// PostgreSQL and for an in-memory SQLite database (one process only).
    pub fn revocation_stamp_path(&self) -> Option<PathBuf> {
        let Store::Sqlite(pool) = self else {
            return None;
        };
        let options = pool.connect_options();
        let mut stamp = crate::store::connect::sqlite_file(&options)?
            .as_os_str()
            .to_owned();
        stamp.push("-revocations");
        Some(PathBuf::from(stamp))
    }

    /// [`Store::listen_revocations`], once the listener is live (or after a bound): for a
    /// command that revokes, so that it returns only once its notification came back.
    pub async fn listen_revocations_live(&self) -> Option<Listening> {
        let listening = self.listen_revocations()?;
        let started = tokio::time::Instant::now();
        while !listening.is_live() && started.elapsed() < DELIVERY_WAIT {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Some(listening)
    }

    /// Starts this replica's listener of revocations on PostgreSQL, on a connection of its
    /// own; `None` on SQLite (one process: the epoch is enough).
    pub fn listen_revocations(&self) -> Option<Listening> {
        let Store::Postgres(pool) = self else {
            return None;
        };
        let options = (*pool.connect_options())
            .clone()
            .application_name(LISTENER_NAME);
        let own = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let live = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(listen(own, live.clone()));
        Some(Listening { live, task })
    }
}

async fn listen(pool: sqlx::PgPool, flag: Arc<AtomicBool>) {
    let mut failing = false;
    loop {
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot listen for revocations; checking every token in the database meanwhile");
                    failing = true;
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        if failing {
            tracing::info!("listening for revocations again");
            failing = false;
        }
        let _live = Live::new(flag.clone());
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) if notification.channel() == ACK_CHANNEL => {
                    if let Ok(nonce) = notification.payload().parse::<u128>() {
                        waiting(|map| {
                            if let Some(heard) = map.get(&nonce) {
                                heard.send_modify(|count| *count += 1);
                            }
                        });
                    }
                }
                Ok(Some(notification)) => {
                    advance();
                    let acknowledged = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(ACK_CHANNEL)
                        .bind(notification.payload())
                        .execute(&mut listener)
                        .await;
                    if let Err(error) = acknowledged {
                        tracing::warn!(%error, "the revocation listener lost its connection");
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "the revocation listener lost its connection");
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &sqlx::PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.ignore_pool_close_event(true);
    // A lost connection ends the inner loop, which builds a fresh listener.
    listener.eager_reconnect(false);
    listener.listen_all([CHANNEL, ACK_CHANNEL]).await?;
    Ok(listener)
}
