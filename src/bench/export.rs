//! `kiln bench --export`: a system-level Bulk Data export of everything imported, through
//! the in-process server and its export worker, as a client sees it: resources per second,
//! time to the first file, the download, and the resident memory of the process meanwhile.
//!
//! Every backend is loaded (and analysed, as `kiln import` does) before the first export, and
//! the data set is dropped then, so that its memory does not count as the server's.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::bulk_client::{self, Manifest, OutputFile, Status};
use super::dataset::{self, Dataset};
use super::rss::{self, Sampler};
use super::{BenchArgs, BenchDatabase, BenchResult, POOL_CONNECTIONS, Server};
use crate::store::Store;

/// Both the status polls and the memory samples.
const EVERY: Duration = Duration::from_millis(250);

/// The shares of the export time at which the memory samples are reported.
const SAMPLE_PERCENTS: [u32; 4] = [25, 50, 75, 100];

/// The figures of one backend.
pub struct Row {
    backend: &'static str,
    import_per_second: f64,
    /// Kick-off to the complete manifest.
    export: Duration,
    /// Kick-off to the first poll answered with a manifest that lists a file.
    first_file: Duration,
    files: usize,
    bytes: u64,
    download: Duration,
    /// Resident sizes in KiB, where `/proc/self` tells them.
    rss_before: Option<u64>,
    peak_export: Option<u64>,
    peak_download: Option<u64>,
    /// At each of [`SAMPLE_PERCENTS`] of the export time.
    samples: [Option<u64>; SAMPLE_PERCENTS.len()],
}

pub async fn run(args: &BenchArgs, postgres: Option<&BenchDatabase>) -> BenchResult<Vec<Row>> {
    eprintln!(
        "bench: writing {} resources cloned from the bundled Synthea sample",
        args.resources
    );
    let count = args.resources;
    let dataset = tokio::task::spawn_blocking(move || dataset::build(count, false)).await??;
    let (_sqlite_dir, sqlite) = super::temporary_sqlite().await?;
    let mut loaded = Vec::new();
    if !args.postgres_only {
        loaded.push(load("SQLite", sqlite, args, &dataset).await?);
    }
    if let Some(database) = postgres {
        let store = database.store(POOL_CONNECTIONS).await?;
        loaded.push(load("PostgreSQL", store, args, &dataset).await?);
    }
    let resources = dataset.keys.len() as u64;
    drop(dataset);
    let mut rows = Vec::new();
    for (backend, store, import_per_second) in loaded {
        let row = measure(backend, store.clone(), import_per_second, resources).await;
        store.close().await;
        rows.push(row?);
    }
    Ok(rows)
}

/// Imports the data set into `store` and refreshes the planner's statistics; returns the
/// import rate in resources per second.
async fn load(
    backend: &'static str,
    store: Store,
    args: &BenchArgs,
    dataset: &Dataset,
) -> BenchResult<(&'static str, Store, f64)> {
    let import_per_second = super::import(backend, &store, args, dataset).await?;
    eprintln!("bench: {backend}: ANALYZE");
    store.analyze().await?;
    Ok((backend, store, import_per_second))
}

/// One export of everything in `store`, its files downloaded and their lines counted.
async fn measure(
    backend: &'static str,
    store: Store,
    import_per_second: f64,
    resources: u64,
) -> BenchResult<Row> {
    let server = Server::start(store).await?;
    let client = super::client(1)?;
    let rss_before = rss::read().map(|memory| memory.rss_kib);
    let export_mark = reset_peak();
    let sampler = Sampler::start(EVERY);
    eprintln!("bench: {backend}: exporting");
    let started = Instant::now();
    let status_url = bulk_client::kick_off(&client, &server.base).await?;
    let mut files = Files::default();
    let mut first_file = None;
    let mut polls = tokio::time::interval(EVERY);
    polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: the job was only just queued.
    polls.tick().await;
    let manifest = loop {
        polls.tick().await;
        match bulk_client::status(&client, &status_url).await? {
            Status::Running(None) => {}
            Status::Running(Some(partial)) => {
                files.note(&partial, &mut first_file, started);
            }
            Status::Complete(manifest) => break manifest,
        }
    };
    files.note(&manifest, &mut first_file, started);
    let export = started.elapsed();
    let samples = sampler.stop().await?;
    let peak_export = peak(export_mark);
    let first_file = first_file.ok_or("the export listed no output file")?;
    eprintln!(
        "bench: {backend}: exported in {:.1} s; downloading",
        export.as_secs_f64()
    );

    let mut next = manifest.next;
    let mut pages = HashSet::new();
    while let Some(url) = next {
        if !pages.insert(url.clone()) {
            return Err(format!("the manifest pages loop back to {url}").into());
        }
        let page = bulk_client::manifest_page(&client, &url).await?;
        files.add(&page);
        next = page.next;
    }

    let download_mark = reset_peak();
    let started = Instant::now();
    let (mut lines, mut bytes) = (0, 0);
    for file in &files.list {
        let count = bulk_client::download(&client, &file.url).await?;
        if let Some(stated) = file.count
            && stated != count.lines()
        {
            return Err(format!(
                "{} has {} lines, its manifest entry says {stated}",
                file.url,
                count.lines()
            )
            .into());
        }
        lines += count.lines();
        bytes += count.bytes;
    }
    let download = started.elapsed();
    let peak_download = peak(download_mark);
    if lines != resources {
        return Err(format!("{backend}: the export has {lines} resources of {resources}").into());
    }
    // Idle keep-alive connections would hold the graceful shutdown open.
    drop(client);
    server.stop().await?;
    Ok(Row {
        backend,
        import_per_second,
        export,
        first_file,
        files: files.list.len(),
        bytes,
        download,
        rss_before,
        peak_export,
        peak_download,
        samples: SAMPLE_PERCENTS.map(|percent| rss::at_percent(&samples, export, percent)),
    })
}

/// The output files of every manifest seen, each once: a partial manifest and the complete
/// one may list the same file.
#[derive(Default)]
struct Files {
    list: Vec<OutputFile>,
    urls: HashSet<String>,
}

impl Files {
    fn add(&mut self, manifest: &Manifest) {
        for file in &manifest.output {
            if self.urls.insert(file.url.clone()) {
                self.list.push(file.clone());
            }
        }
    }

    /// Adds the files of a poll's manifest; the first that lists any sets `first_file`.
    fn note(&mut self, manifest: &Manifest, first_file: &mut Option<Duration>, started: Instant) {
        if first_file.is_none() && !manifest.output.is_empty() {
            *first_file = Some(started.elapsed());
        }
        self.add(manifest);
    }
}

/// Lowers the peak mark; false (with a note) where it cannot, and the peak is not reported.
fn reset_peak() -> bool {
    match rss::reset_peak() {
        Ok(()) => true,
        Err(error) => {
            eprintln!("bench: {error}");
            false
        }
    }
}

/// The peak since the mark was reset, if it was.
fn peak(reset: bool) -> Option<u64> {
    reset
        .then(rss::read)
        .flatten()
        .map(|memory| memory.peak_kib)
}

pub fn print(args: &BenchArgs, rows: &[Row]) {
    println!(
        "kiln {} bench --export: {} resources, system-level $export, polled every {} ms",
        env!("CARGO_PKG_VERSION"),
        args.resources,
        EVERY.as_millis()
    );
    println!("{}", super::report::machine_line());
    println!();
    println!(
        "| Backend | Import (resources/s) | Export (s) | Export (resources/s) | First file (s) \
         | RSS before (MiB) | Peak RSS, export (MiB) | Files | Output (MiB) | Download (MiB/s) \
         | Peak RSS, download (MiB) |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        println!(
            "| {} | {:.0} | {:.1} | {:.0} | {:.1} | {} | {} | {} | {:.1} | {:.1} | {} |",
            row.backend,
            row.import_per_second,
            row.export.as_secs_f64(),
            args.resources as f64 / row.export.as_secs_f64(),
            row.first_file.as_secs_f64(),
            mib(row.rss_before),
            mib(row.peak_export),
            row.files,
            row.bytes as f64 / MIB,
            row.bytes as f64 / MIB / row.download.as_secs_f64(),
            mib(row.peak_download),
        );
    }
    println!();
    println!(
        "RSS (the whole process: server, export worker, client) at {} % of the export time, MiB:",
        SAMPLE_PERCENTS
            .map(|percent| percent.to_string())
            .join(" / ")
    );
    for row in rows {
        println!("- {}: {}", row.backend, row.samples.map(mib).join(" / "));
    }
    if args.postgres_url.is_none() {
        println!();
        println!(
            "PostgreSQL: skipped (give --postgres-url or KILN_BENCH_POSTGRES_URL to measure it)"
        );
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".into(), |kib| format!("{:.1}", kib as f64 / 1024.0))
}
