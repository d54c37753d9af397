//! The results as a markdown table on stdout.

use std::time::Duration;

use super::BenchArgs;
use super::load::Summary;

/// The figures of one backend.
pub struct Row {
    pub backend: &'static str,
    pub import_per_second: f64,
    pub read: Summary,
    /// The same reads with a SMART access token checked on each.
    pub read_with_token: Summary,
    pub healthz: Summary,
    pub lookup: Summary,
    /// Token checks answered by the token cache and by the database during the token phase
    /// (warm-up included).
    pub token_cache: (u64, u64),
    /// Reads by id with auditing on, and off, measured alternately.
    pub audited: Summary,
    pub unaudited: Summary,
    /// The CPU time the process spent per read, audited and not (where `/proc` tells it).
    pub cpu_per_read: (Option<Duration>, Option<Duration>),
}

/// The import figure of one backend (`--import-only`).
pub struct Imported {
    pub backend: &'static str,
    pub per_second: f64,
}

/// The machine a run measured, printed under each report's title.
pub fn machine_line() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |cpus| cpus.get());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!(
        "machine: {cpus} CPUs, {}/{}, {profile} build",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

pub fn print(args: &BenchArgs, rows: &[Row]) {
    println!(
        "kiln {} bench: {} resources, {} concurrent clients, {} s per read measurement",
        env!("CARGO_PKG_VERSION"),
        args.resources,
        args.concurrency,
        args.seconds
    );
    println!("{}", machine_line());
    println!();
    println!(
        "| Backend | Import (resources/s) | Read by id (req/s) | Read p50 / p95 / p99 (ms) \
         | Read with token (req/s) | with token p50 / p95 / p99 (ms) \
         | /healthz (req/s) | /healthz p50 / p99 (ms) | PK lookup (reads/s) | PK lookup p50 / p99 (ms) |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        println!(
            "| {} | {:.0} | {:.0} | {} / {} / {} | {:.0} | {} / {} / {} | {:.0} | {} / {} | {:.0} | {} / {} |",
            row.backend,
            row.import_per_second,
            row.read.per_second,
            ms(row.read.p50),
            ms(row.read.p95),
            ms(row.read.p99),
            row.read_with_token.per_second,
            ms(row.read_with_token.p50),
            ms(row.read_with_token.p95),
            ms(row.read_with_token.p99),
            row.healthz.per_second,
            ms(row.healthz.p50),
            ms(row.healthz.p99),
            row.lookup.per_second,
            ms(row.lookup.p50),
            ms(row.lookup.p99),
        );
    }
    println!();
    println!(
        "| Backend | with token / without | with token / PK lookup | with token / /healthz \
         | without token / PK lookup | token cache hits / misses |"
    );
    println!("|---|--:|--:|--:|--:|--:|");
    for row in rows {
        let with_token = row.read_with_token.per_second;
        println!(
            "| {} | {} | {} | {} | {} | {} / {} |",
            row.backend,
            percent(with_token, row.read.per_second),
            percent(with_token, row.lookup.per_second),
            percent(with_token, row.healthz.per_second),
            percent(row.read.per_second, row.lookup.per_second),
            row.token_cache.0,
            row.token_cache.1,
        );
    }
    println!();
    println!(
        "Goals (issue 13): with token >= 90 % of without; PostgreSQL with token >= 70 % of the \
         PK lookup; SQLite with token >= 50 % of /healthz."
    );
    for row in rows {
        println!("{}", import_goal_line(row.backend, row.import_per_second));
    }
    println!();
    println!(
        "| Backend | Read, audited (req/s) | audited p50 / p99 (ms) | Read, auditing off (req/s) \
         | off p50 / p99 (ms) | audited / off | CPU per read, audited / off (µs) |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        println!(
            "| {} | {:.0} | {} / {} | {:.0} | {} / {} | {} | {} / {} |",
            row.backend,
            row.audited.per_second,
            ms(row.audited.p50),
            ms(row.audited.p99),
            row.unaudited.per_second,
            ms(row.unaudited.p50),
            ms(row.unaudited.p99),
            percent(row.audited.per_second, row.unaudited.per_second),
            micros(row.cpu_per_read.0),
            micros(row.cpu_per_read.1),
        );
    }
    println!();
    println!(
        "Goal (issue 14): reads with auditing on >= 85 % of reads with it off (the same reads \
         on two servers of one database, alternating; an audited round lasts until its events \
         are in the log). CPU per read: all of this process's threads (server, clients, the \
         log's loader; not PostgreSQL's own) over the rounds."
    );
    if args.postgres_url.is_none() {
        println!();
        println!(
            "PostgreSQL: skipped (give --postgres-url or KILN_BENCH_POSTGRES_URL to measure it)"
        );
    }
}

/// Microseconds, or `-` when unknown.
fn micros(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |duration| format!("{:.0}", duration.as_secs_f64() * 1e6),
    )
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.0} %", part / whole * 100.0)
    } else {
        "-".to_owned()
    }
}

/// Resources per second an import must reach, with full indexing: (backend, goal).
const IMPORT_GOALS: [(&str, f64); 2] = [("PostgreSQL", 10_000.0), ("SQLite", 8_000.0)];

/// `--import-only`: each backend's import figure next to its goal.
pub fn print_import(args: &BenchArgs, rows: &[Imported]) {
    println!(
        "kiln {} bench: import of {} resources",
        env!("CARGO_PKG_VERSION"),
        args.resources
    );
    println!("{}", machine_line());
    println!();
    for row in rows {
        println!("{}", import_goal_line(row.backend, row.per_second));
    }
    if args.postgres_url.is_none() {
        println!(
            "PostgreSQL: skipped (give --postgres-url or KILN_BENCH_POSTGRES_URL to measure it)"
        );
    }
}

/// A backend's import figure next to its goal.
fn import_goal_line(backend: &str, per_second: f64) -> String {
    match IMPORT_GOALS.iter().find(|(name, _)| *name == backend) {
        Some((_, goal)) => format!(
            "{backend} import: {per_second:.0} resources/s, goal >= {goal:.0} ({:.0} % of it)",
            100.0 * per_second / goal
        ),
        None => format!("{backend} import: {per_second:.0} resources/s"),
    }
}

pub(super) fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}
