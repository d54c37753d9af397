//! Metrics in the Prometheus text format: the one recorder of the process (metrics +
//! metrics-exporter-prometheus, no listener of its own), the name of every metric Kiln
//! records with its meaning, the small functions the rest of Kiln calls to record them, the
//! request middleware (http.rs), and the rendering of `/metrics`. A bottom layer (it imports
//! nothing of Kiln) so any module may record; the `/metrics` endpoint itself, which reads
//! the store, is `rest::metrics`.
//!
//! Until `install` runs (`kiln import`, the other commands, `--disable-metrics`) every
//! recording function is a no-op.

pub mod http;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `method`, `route` (the route template) and `status` (the code).
pub const HTTP_REQUESTS: &str = "kiln_http_requests_total";
/// Seconds from a request's arrival to its response head, by the same labels.
pub const HTTP_DURATION: &str = "kiln_http_request_duration_seconds";
/// Connections a database pool holds open, by `pool`.
pub const DB_POOL_SIZE: &str = "kiln_db_pool_size";
/// The most connections a database pool opens, by `pool`.
pub const DB_POOL_MAX: &str = "kiln_db_pool_max_connections";
/// A pool's open connections by `pool` and `state` (`idle`, `in_use`).
pub const DB_POOL_CONNECTIONS: &str = "kiln_db_pool_connections";
/// Bearer-token checks answered from the per-replica token cache.
pub const TOKEN_CACHE_HITS: &str = "kiln_token_cache_hits_total";
/// Bearer-token checks that had to ask the database.
pub const TOKEN_CACHE_MISSES: &str = "kiln_token_cache_misses_total";
/// Bulk Data export jobs in the database, by `state` (`queued`, `running`, `done`, `failed`).
pub const EXPORT_JOBS: &str = "kiln_export_jobs";
/// Resources stored by the import loader of this process (`--load-sample-data`, sandbox).
pub const IMPORTED_RESOURCES: &str = "kiln_import_resources_total";
/// Audit events written to the spool and not yet loaded into the searchable table.
pub const AUDIT_BACKLOG: &str = "kiln_audit_backlog";
/// Always 1, with the running `version` as a label.
pub const BUILD_INFO: &str = "kiln_build_info";

/// Histogram buckets (seconds) for request latency: 0.5 ms to 10 s, denser where a read or
/// search of a healthy server lands.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples not yet scraped are folded into their buckets, so memory
/// stays bounded when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls do nothing) and starts its upkeep.
/// Needs a Tokio runtime. Only a recorder installed before it could make it fail: then the
/// failure is logged and that recorder keeps recording.
pub fn install() {
    if RECORDER.get().is_some() {
        return;
    }
    let handle = match PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_string()), LATENCY_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
    {
        Ok(handle) => handle,
        Err(error) => {
            tracing::error!(%error, "cannot install the metrics recorder");
            return;
        }
    };
    let upkeep = handle.clone();
    if RECORDER.set(handle).is_err() {
        return;
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The HELP line of every metric.
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by method, route template and status code."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Seconds from a request's arrival to its response head, by method, route template and status code."
    );
    describe_gauge!(DB_POOL_SIZE, "Connections the database pool holds open.");
    describe_gauge!(DB_POOL_MAX, "The most connections the database pool opens.");
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Open connections of the database pool, idle or in use."
    );
    describe_counter!(
        TOKEN_CACHE_HITS,
        "Bearer-token checks answered from the token cache."
    );
    describe_counter!(
        TOKEN_CACHE_MISSES,
        "Bearer-token checks that asked the database."
    );
    describe_gauge!(
        EXPORT_JOBS,
        "Bulk Data export jobs in the database, by state."
    );
    describe_counter!(
        IMPORTED_RESOURCES,
        "Resources stored by this process's import loader."
    );
    describe_gauge!(
        AUDIT_BACKLOG,
        "Audit events written to the spool and not yet loaded into the searchable audit log."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version of the running server is its label."
    );
}

/// The text exposition of every metric, or `None` when no recorder is installed.
pub fn render() -> Option<String> {
    RECORDER.get().map(PrometheusHandle::render)
}

/// A bearer-token check answered from the token cache (`true`) or from the database.
pub fn token_cache(hit: bool) {
    metrics::counter!(if hit {
        TOKEN_CACHE_HITS
    } else {
        TOKEN_CACHE_MISSES
    })
    .increment(1);
}

/// `count` resources stored by one import batch.
pub fn resources_imported(count: usize) {
    metrics::counter!(IMPORTED_RESOURCES).increment(count as u64);
}

/// The use of database pool `pool` (`primary`) at scrape time.
pub fn pool_use(pool: &'static str, size: u32, idle: u32, max: u32) {
    gauge!(DB_POOL_SIZE, "pool" => pool).set(size);
    gauge!(DB_POOL_MAX, "pool" => pool).set(max);
    gauge!(DB_POOL_CONNECTIONS, "pool" => pool, "state" => "idle").set(idle);
    gauge!(DB_POOL_CONNECTIONS, "pool" => pool, "state" => "in_use").set(size.saturating_sub(idle));
}

/// The export jobs in `state` at scrape time.
pub fn export_jobs(state: &str, count: i64) {
    gauge!(EXPORT_JOBS, "state" => state.to_string()).set(count as f64);
}
