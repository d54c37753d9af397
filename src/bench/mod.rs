//! `kiln bench`: import and read throughput on SQLite and PostgreSQL, next to two ceilings
//! measured in the same run: a trivial handler on the same HTTP stack (`/healthz`) and the
//! raw primary-key lookup without HTTP (`Store::read`).
//!
//! With `--search`, it measures US Core searches on PostgreSQL instead (see `search`); with
//! `--export`, a Bulk Data export of everything imported (see `export`); with `--hostile`,
//! reads while hostile clients keep costly searches in flight (see `hostile`); with `--soak`,
//! a mixed load for minutes while one Patient's record grows (see `soak`).
//!
//! Everything runs in this process, on 127.0.0.1, for a bounded time per measurement.

mod bulk_client;
mod cpu;
mod dataset;
mod export;
mod hostile;
mod load;
mod report;
mod rss;
mod search;
mod search_skew;
mod soak;

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use clap::builder::RangedU64ValueParser;
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::net::TcpListener;

use crate::app::router;
use crate::config::ServeConfig;
use crate::store::Store;
use dataset::Dataset;
use report::Row;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Database connections per backend: the `kiln serve` default.
const POOL_CONNECTIONS: u32 = 16;

/// Load before each measurement, not counted: opens connections and warms caches.
const WARM_UP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Resources to import: copies of the bundled Synthea sample with fresh ids.
    #[arg(long, default_value_t = 20_000, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub resources: usize,
    /// Concurrent clients during the read measurements.
    #[arg(long, default_value_t = 32, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub concurrency: usize,
    /// Seconds each read measurement lasts.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Resources per import transaction.
    #[arg(long, default_value_t = crate::import::DEFAULT_BATCH_SIZE, value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub batch_size: usize,
    /// A PostgreSQL server to measure too: a fresh database `kiln_bench_<random>` is created
    /// there for the run and dropped after it. Without it only SQLite is measured.
    // hide_env_values: a password in the URL stays out of `--help`.
    #[arg(long, env = "KILN_BENCH_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// Measure US Core searches on PostgreSQL instead, one client at a time, `--seconds`
    /// per kind of search, on copies of the sample with shifted dates.
    #[arg(long, requires = "postgres_url", conflicts_with = "concurrency")]
    pub search: bool,
    /// Measure a system-level Bulk Data export of all `--resources` instead: resources/s,
    /// time to the first file, the download, and the process's resident memory meanwhile.
    #[arg(long, conflicts_with_all = ["search", "concurrency", "seconds"])]
    pub export: bool,
    /// With `--export`, measure PostgreSQL only (a million-resource SQLite import takes a
    /// while and the disk room of a second copy).
    #[arg(long, requires_all = ["export", "postgres_url"])]
    pub postgres_only: bool,
    /// Measure `GET Patient/[id]` alone, then while `--concurrency` hostile clients keep
    /// costly searches in flight (at and over the search cost bounds).
    #[arg(long, conflicts_with_all = ["search", "export"])]
    pub hostile: bool,
    /// Run a mixed load on PostgreSQL for `--minutes` (reads, searches, and writes that
    /// grow one Patient's record with Observations) and print p50 / p99 and throughput per
    /// interval, to see whether the tail holds as the record grows.
    #[arg(long, requires = "postgres_url", conflicts_with_all = ["search", "export", "hostile", "seconds"])]
    pub soak: bool,
    /// With `--soak`: minutes the load lasts.
    #[arg(long, default_value_t = 5, requires = "soak", value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub minutes: u64,
    /// With `--search`, keep the PostgreSQL database after the run (its name is printed), to
    /// be measured again with `--reuse-database` or examined with `psql`.
    #[arg(long, requires = "search")]
    pub keep_database: bool,
    /// With `--search`, measure again on a database kept by an earlier `--keep-database`
    /// run with the same `--resources`: nothing is written or imported, and it is kept.
    #[arg(long, requires = "search", value_name = "NAME")]
    pub reuse_database: Option<String>,
    /// Measure the import alone (no read measurement): one figure per backend.
    #[arg(long, conflicts_with_all = ["search", "export", "hostile", "concurrency", "seconds"])]
    pub import_only: bool,
}

/// What a run measured.
enum Measured {
    Throughput(Vec<Row>),
    Search(search::Report),
    Export(Vec<export::Row>),
    Hostile(Vec<hostile::Row>),
    Soak(soak::Report),
    Import(Vec<report::Imported>),
}

pub async fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if std::env::var_os("KILN_LOG").is_none() {
        eprintln!("bench: hint: KILN_LOG=warn keeps per-request logs out of the measurement");
    }
    // Created first, so that an unreachable server fails the run before the long part.
    let postgres = match &args.postgres_url {
        Some(url) => Some(BenchDatabase::open(url, &args).await?),
        None => None,
    };
    // On Ctrl-C the measurement is dropped (its temporary files with it) and the
    // database still removed.
    let measuring = async {
        match (args.search, postgres.as_ref()) {
            (true, Some(database)) => search::run(&args, database).await.map(Measured::Search),
            (true, None) => Err("--search needs --postgres-url".into()),
            (false, postgres) if args.export => {
                export::run(&args, postgres).await.map(Measured::Export)
            }
            (false, postgres) if args.hostile => {
                hostile::run(&args, postgres).await.map(Measured::Hostile)
            }
            (false, Some(database)) if args.soak => {
                soak::run(&args, database).await.map(Measured::Soak)
            }
            (false, postgres) if args.import_only => {
                on_each_backend(&args, postgres, measure_import)
                    .await
                    .map(Measured::Import)
            }
            (false, _) => measure_all(&args, postgres.as_ref())
                .await
                .map(Measured::Throughput),
        }
    };
    let measured = tokio::select! {
        measured = measuring => measured,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    let dropped = match postgres {
        Some(database) => database.remove().await,
        None => Ok(()),
    };
    if let (Err(_), Err(error)) = (&measured, &dropped) {
        eprintln!("bench: {error}");
    }
    match measured? {
        Measured::Throughput(rows) => report::print(&args, &rows),
        Measured::Search(report) => search::print(&args, &report),
        Measured::Export(rows) => export::print(&args, &rows),
        Measured::Hostile(rows) => hostile::print(&args, &rows),
        Measured::Soak(report) => soak::print(&args, &report),
        Measured::Import(rows) => report::print_import(&args, &rows),
    }
    dropped
}

async fn measure_all(args: &BenchArgs, postgres: Option<&BenchDatabase>) -> BenchResult<Vec<Row>> {
    on_each_backend(args, postgres, measure).await
}

/// Builds the dataset of `args`, then runs `measure` on a fresh SQLite database and, when
/// given, on PostgreSQL: one result per backend.
async fn on_each_backend<R>(
    args: &BenchArgs,
    postgres: Option<&BenchDatabase>,
    measure: impl AsyncFn(&'static str, Store, &BenchArgs, &dataset::Dataset) -> BenchResult<R>,
) -> BenchResult<Vec<R>> {
    eprintln!(
        "bench: writing {} resources cloned from the bundled Synthea sample",
        args.resources
    );
    let count = args.resources;
    let dataset = tokio::task::spawn_blocking(move || dataset::build(count, false)).await??;

    let (_dir, sqlite) = temporary_sqlite().await?;
    let mut rows = vec![measure("SQLite", sqlite, args, &dataset).await?];

    if let Some(database) = postgres {
        let store = database.store(POOL_CONNECTIONS).await?;
        rows.push(measure("PostgreSQL", store, args, &dataset).await?);
    }
    Ok(rows)
}

/// SQLite in a fresh file of a temporary directory (removed on drop), with the same settings
/// as `kiln serve`.
async fn temporary_sqlite() -> BenchResult<(dataset::TempPath, Store)> {
    let dir = dataset::TempPath::new("");
    std::fs::create_dir(&dir.0)?;
    let url = format!("sqlite://{}", dir.0.join("kiln.db").display());
    let store = Store::connect(&url, POOL_CONNECTIONS).await?;
    Ok((dir, store))
}

/// A database created for the run on the given PostgreSQL server (or, with
/// `--reuse-database`, one kept by an earlier run).
struct BenchDatabase {
    admin: PgConnection,
    name: String,
    options: PgConnectOptions,
    /// Left in place after the run (`--keep-database`, `--reuse-database`).
    keep: bool,
    /// Made by an earlier run: already holds the data set.
    reused: bool,
}

impl BenchDatabase {
    async fn open(url: &str, args: &BenchArgs) -> BenchResult<Self> {
        let Some(name) = &args.reuse_database else {
            let mut database = Self::create(url).await?;
            database.keep = args.keep_database;
            return Ok(database);
        };
        if !name.starts_with("kiln_bench_")
            || !name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
        {
            return Err(
                format!("--reuse-database {name}: not a kiln_bench_… database name").into(),
            );
        }
        let options = PgConnectOptions::from_str(url)?;
        let admin = PgConnection::connect_with(&options).await?;
        let options = options.database(name);
        // Fails early on a database that is not there.
        PgConnection::connect_with(&options)
            .await
            .map_err(|error| format!("--reuse-database {name}: {error}"))?
            .close()
            .await?;
        eprintln!("bench: reusing the PostgreSQL database {name}");
        Ok(BenchDatabase {
            admin,
            name: name.clone(),
            options,
            keep: true,
            reused: true,
        })
    }

    async fn create(url: &str) -> BenchResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        // One plain connection: a pool would hide the cause of a failure behind a timeout.
        let mut admin = PgConnection::connect_with(&options)
            .await
            .map_err(|error| {
                format!("connecting to the PostgreSQL server of --postgres-url: {error}")
            })?;
        let name = format!("kiln_bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        eprintln!("bench: created the PostgreSQL database {name}");
        let options = options.database(&name);
        Ok(BenchDatabase {
            admin,
            name,
            options,
            keep: false,
            reused: false,
        })
    }

    /// A store on the database, with `connections` pooled connections.
    async fn store(&self, connections: u32) -> BenchResult<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(self.options.clone())
            .await?;
        Ok(Store::Postgres(pool))
    }

    /// Called whether the run succeeded or not. FORCE ends connections a failed run left open.
    async fn remove(mut self) -> BenchResult<()> {
        let name = self.name;
        if self.keep {
            self.admin.close().await?;
            eprintln!("bench: kept the PostgreSQL database {name}");
            return Ok(());
        }
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .execute(&mut self.admin)
            .await
            .map_err(|error| format!("dropping the PostgreSQL database {name}: {error}"))?;
        self.admin.close().await?;
        eprintln!("bench: dropped the PostgreSQL database {name}");
        Ok(())
    }
}

/// Imports the data set into `store` (empty), then measures reads through HTTP and directly.
async fn measure(
    backend: &'static str,
    store: Store,
    args: &BenchArgs,
    dataset: &Dataset,
) -> BenchResult<Row> {
    let import_per_second = import(backend, &store, args, dataset).await?;
    let server = Server::start(store.clone()).await?;
    let client = client(args.concurrency)?;
    let base = server.base.clone();
    let urls: Arc<[String]> = dataset
        .keys
        .iter()
        .map(|(resource_type, id)| format!("{base}/fhir/{resource_type}/{id}"))
        .collect();
    let read = phase(backend, "read by id over HTTP", args, {
        let client = client.clone();
        let urls = urls.clone();
        move |random| {
            get(
                client.clone(),
                urls[random as usize % urls.len()].clone(),
                None,
            )
        }
    })
    .await?;
    let token: Arc<str> = backend_token(&store).await?.into();
    let (hits, misses) = crate::auth::oauth::token_cache::counts();
    let read_with_token = phase(backend, "read by id with a SMART token", args, {
        let client = client.clone();
        move |random| {
            get(
                client.clone(),
                urls[random as usize % urls.len()].clone(),
                Some(token.clone()),
            )
        }
    })
    .await?;
    let (hits_after, misses_after) = crate::auth::oauth::token_cache::counts();
    let token_cache = (hits_after - hits, misses_after - misses);
    let healthz_url = format!("{base}/healthz");
    let healthz = phase(backend, "GET /healthz", args, {
        let client = client.clone();
        move |_| get(client.clone(), healthz_url.clone(), None)
    })
    .await?;
    let (audited, unaudited) = audit_cost(backend, &store, args, &client, &server, dataset).await?;
    // Idle keep-alive connections would hold the graceful shutdown open.
    drop(client);
    server.stop().await?;

    let keys: Arc<[(String, String)]> = dataset.keys.iter().cloned().collect();
    let lookup = phase(backend, "primary-key lookup (Store::read)", args, {
        let store = store.clone();
        move |random| {
            let store = store.clone();
            let keys = keys.clone();
            async move {
                let (resource_type, id) = &keys[random as usize % keys.len()];
                match store.read(resource_type, id).await? {
                    Some(_) => Ok(()),
                    None => Err(format!("{resource_type}/{id} is missing").into()),
                }
            }
        }
    })
    .await?;
    store.close().await;
    Ok(Row {
        backend,
        import_per_second,
        read,
        read_with_token,
        healthz,
        lookup,
        token_cache,
        audited: audited.reads,
        unaudited: unaudited.reads,
        cpu_per_read: (audited.cpu_per_read, unaudited.cpu_per_read),
    })
}

/// Rounds of the audit comparison: reads without auditing, then with it, alternating.
const AUDIT_ROUNDS: u32 = 3;

/// Reads by id (no token) on the audited `server` and on a second server of the same store
/// with auditing off, alternating [`AUDIT_ROUNDS`] times; each figure is the mean of its
/// rounds. An audited round starts with the log loaded (its warm-up's reads too) and lasts
/// until its reads are in the log: the time the log takes to load the last of them after
/// the load stops counts in its throughput, so all of that work is counted against
/// auditing, and the round without auditing after it starts with none left.
async fn audit_cost(
    backend: &'static str,
    store: &Store,
    args: &BenchArgs,
    client: &reqwest::Client,
    server: &Server,
    dataset: &Dataset,
) -> BenchResult<(AuditCost, AuditCost)> {
    let unaudited_server = Server::start_audited(store.clone(), false).await?;
    let targets = |base: &str| -> Arc<[String]> {
        dataset
            .keys
            .iter()
            .map(|(resource_type, id)| format!("{base}/fhir/{resource_type}/{id}"))
            .collect()
    };
    let (on_urls, off_urls) = (targets(&server.base), targets(&unaudited_server.base));
    let reads = |urls: Arc<[String]>| {
        let client = client.clone();
        move |random: u64| {
            get(
                client.clone(),
                urls[random as usize % urls.len()].clone(),
                None,
            )
        }
    };
    let settled = || async {
        let started = Instant::now();
        server
            .audit
            .settled()
            .await
            .map_err(|_| "the audited reads did not reach the log")?;
        BenchResult::Ok(started.elapsed())
    };
    // What the measurements before this one left for the log.
    settled().await?;
    let mut on = Vec::new();
    let mut off = Vec::new();
    for _ in 0..AUDIT_ROUNDS {
        let unaudited = reads(off_urls.clone());
        warm_up(backend, "read by id, auditing off", args, unaudited.clone()).await?;
        let before = cpu::used();
        let unaudited = measured(args, unaudited).await?;
        off.push((unaudited, cpu_per_read(before, unaudited.count)));
        let audited = reads(on_urls.clone());
        warm_up(backend, "read by id, audited", args, audited.clone()).await?;
        settled().await?;
        let before = cpu::used();
        let audited = measured(args, audited).await?;
        let tail = settled().await?;
        eprintln!(
            "bench: {backend}: {} audited reads, loaded into the log {:.2} s after the load stopped",
            audited.count,
            tail.as_secs_f64()
        );
        on.push((
            audited.with_tail(Duration::from_secs(args.seconds), tail),
            cpu_per_read(before, audited.count),
        ));
    }
    unaudited_server.stop().await?;
    Ok((AuditCost::mean(&on), AuditCost::mean(&off)))
}

/// The reads of one side of the audit comparison: throughput and latency, and the CPU time
/// the whole process spent per read (server, clients, and the log's loader).
#[derive(Debug, Clone, Copy)]
struct AuditCost {
    reads: load::Summary,
    cpu_per_read: Option<Duration>,
}

impl AuditCost {
    fn mean(rounds: &[(load::Summary, Option<Duration>)]) -> AuditCost {
        let summaries: Vec<load::Summary> = rounds.iter().map(|(summary, _)| *summary).collect();
        let cpu: Option<Vec<Duration>> = rounds.iter().map(|(_, cpu)| *cpu).collect();
        AuditCost {
            reads: load::Summary::mean(&summaries),
            cpu_per_read: cpu.map(|cpu| cpu.iter().sum::<Duration>() / cpu.len().max(1) as u32),
        }
    }
}

/// The CPU time this process used since `before`, per read of `reads`.
fn cpu_per_read(before: Option<Duration>, reads: usize) -> Option<Duration> {
    let spent = cpu::used()?.checked_sub(before?)?;
    Some(spent / u32::try_from(reads.max(1)).ok()?)
}

/// `--import-only`: imports the data set into `store` (empty), nothing more.
async fn measure_import(
    backend: &'static str,
    store: Store,
    args: &BenchArgs,
    dataset: &Dataset,
) -> BenchResult<report::Imported> {
    let per_second = import(backend, &store, args, dataset).await?;
    store.close().await;
    Ok(report::Imported {
        backend,
        per_second,
    })
}

/// Imports the data set into `store` (migrated here, empty) and returns resources per second.
async fn import(
    backend: &str,
    store: &Store,
    args: &BenchArgs,
    dataset: &Dataset,
) -> BenchResult<f64> {
    store.migrate().await?;
    eprintln!("bench: {backend}: importing");
    let started = Instant::now();
    let report = crate::import::run(
        store,
        std::slice::from_ref(&dataset.file.0),
        args.batch_size,
    )
    .await?;
    let import_seconds = started.elapsed().as_secs_f64();
    if report.failed > 0 || report.total() != dataset.keys.len() as u64 {
        return Err(format!(
            "{backend}: {} of {} resources imported ({} failed)",
            report.total(),
            dataset.keys.len(),
            report.failed
        )
        .into());
    }
    Ok(dataset.keys.len() as f64 / import_seconds)
}

/// The application served in-process on `127.0.0.1:<free port>`, with the export worker
/// of `kiln serve`.
struct Server {
    /// `http://127.0.0.1:<port>`.
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: tokio::task::JoinHandle<()>,
    /// The export files, removed with the server.
    _exports: dataset::TempPath,
    /// The audit spool, removed with the server.
    _spool: dataset::TempPath,
    /// The server's audit log recorder.
    audit: crate::audit::Recorder,
}

impl Server {
    /// The server as `kiln serve` runs it: auditing on.
    async fn start(store: Store) -> BenchResult<Self> {
        Self::start_audited(store, true).await
    }

    /// The server with auditing on or off (`--disable-audit`).
    async fn start_audited(store: Store, audit: bool) -> BenchResult<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let exports = dataset::TempPath::new("-exports");
        let mut config = serve_config(address, &exports.0)?;
        config.disable_audit = !audit;
        // Where `kiln serve` puts it on a SQLite file (beside it), and what
        // `--audit-spool-dir` gives a PostgreSQL server: local, durable storage.
        let spool = dataset::TempPath::new("-audit-spool");
        config.audit_spool_dir = Some(spool.0.clone());
        let state = crate::app::state(store, config, None)?;
        let audit = state.audit.clone();
        let worker = crate::bulk::worker::spawn(state.clone());
        let app = router(state);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Server {
            base: format!("http://{address}"),
            stop,
            task,
            worker,
            _exports: exports,
            _spool: spool,
            audit,
        })
    }

    /// Waits for requests in flight; clients must be dropped first. The worker is idle by
    /// then: the measurements wait for their exports to end.
    async fn stop(self) -> BenchResult<()> {
        let _ = self.stop.send(());
        self.task.await??;
        self.worker.abort();
        Ok(())
    }
}

/// The HTTP client of the load.
fn client(concurrency: usize) -> BenchResult<reqwest::Client> {
    Ok(reqwest::Client::builder()
        // The load goes straight to 127.0.0.1, whatever proxy the environment names.
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()?)
}

/// One measurement, after an uncounted warm-up with the same load.
async fn phase<F, Fut>(
    backend: &str,
    what: &str,
    args: &BenchArgs,
    operation: F,
) -> BenchResult<load::Summary>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = BenchResult<()>> + Send + 'static,
{
    warm_up(backend, what, args, operation.clone()).await?;
    measured(args, operation).await
}

/// The uncounted warm-up of a measurement.
async fn warm_up<F, Fut>(
    backend: &str,
    what: &str,
    args: &BenchArgs,
    operation: F,
) -> BenchResult<()>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = BenchResult<()>> + Send + 'static,
{
    eprintln!(
        "bench: {backend}: {what}, {} clients for {} s",
        args.concurrency, args.seconds
    );
    load::run(args.concurrency, WARM_UP, operation).await?;
    Ok(())
}

/// The counted load of a measurement, for `--seconds`.
async fn measured<F, Fut>(args: &BenchArgs, operation: F) -> BenchResult<load::Summary>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = BenchResult<()>> + Send + 'static,
{
    load::run(
        args.concurrency,
        Duration::from_secs(args.seconds),
        operation,
    )
    .await
}

/// A GET that must answer 200; the body is read in full, as a real client would.
async fn get(client: reqwest::Client, url: String, token: Option<Arc<str>>) -> BenchResult<()> {
    let mut request = client.get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    response.bytes().await?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("GET {url} answered {status}").into());
    }
    Ok(())
}

/// A live `system/*.rs` access token, registered the way the token endpoint stores one:
/// the server checks it (token ⋈ grant ⋈ client) on every request of the phase.
async fn backend_token(store: &Store) -> BenchResult<String> {
    scoped_token(store, "system/*.rs").await
}

/// A live backend access token of `scope` (`system/…`), registered as [`backend_token`].
async fn scoped_token(store: &Store, scope: &str) -> BenchResult<String> {
    use crate::crypto::{digest_hex, random_token};
    use crate::store::auth::{Client, Grant, TokenKind};
    let now = crate::auth::now();
    let client_id = uuid::Uuid::new_v4().simple().to_string();
    store
        .insert_client(
            &Client {
                client_id: client_id.clone(),
                name: "kiln bench".into(),
                client_type: "confidential-asymmetric".into(),
                secret_hash: None,
                redirect_uris: Vec::new(),
                launch_uri: None,
                scope: scope.into(),
                grant_types: vec!["client_credentials".into()],
                jwks: None,
                jwks_uri: None,
                created_at: now,
                app_id: None,
                disabled: false,
                previous_secret_hash: None,
                previous_secret_expires_at: None,
            },
            &[],
        )
        .await?;
    let grant = Grant {
        grant_id: uuid::Uuid::new_v4().to_string(),
        client_id,
        username: None,
        scope: scope.into(),
        patient: None,
        encounter: None,
        fhir_user: None,
        need_patient_banner: false,
        created_at: now,
        revoked: false,
    };
    store.insert_grant(&grant).await?;
    let token = random_token();
    store
        .insert_token(
            &digest_hex(&token),
            TokenKind::Access,
            &grant.grant_id,
            &grant.scope,
            now,
            now + 3600,
        )
        .await?;
    Ok(token)
}

/// The `kiln serve` defaults, on the address actually bound, with export files in `exports`.
fn serve_config(address: SocketAddr, exports: &std::path::Path) -> BenchResult<ServeConfig> {
    let mut export = crate::config::ExportConfig::in_dir(exports)?;
    // The measurement writes to the local directory whatever the environment says.
    export.s3 = crate::config::S3Config::default();
    Ok(ServeConfig {
        bind: address,
        base_url: format!("http://{address}"),
        max_body_bytes: 16 * 1024 * 1024,
        max_body_bytes_in_flight: 64 * 1024 * 1024,
        default_page_size: 50,
        max_page_size: 1000,
        request_timeout_secs: 120,
        search_timeout_ms: None,
        load_sample_data: false,
        tls_cert: None,
        tls_key: None,
        sqlite_max_bytes: None,
        disable_audit: false,
        audit_spool_dir: None,
        // The benchmark measures the data path; token checks are measured separately.
        auth: crate::config::AuthConfig {
            access_token_lifetime: 3600,
            backend_token_lifetime: 300,
            refresh_token_lifetime: 90 * 24 * 3600,
            anonymous_access: true,
            audit_patient_access: false,
            token_cache_ttl: 30,
        },
        export,
        mail: crate::config::MailConfig::default(),
        onboarding: crate::config::OnboardingConfig::default(),
        portal: crate::config::PortalConfig::default(),
        replicas: crate::config::ReplicaConfig::default(),
        metrics: crate::config::MetricsConfig::from_env()?,
    })
}
