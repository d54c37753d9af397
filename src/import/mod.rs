//! `kiln import`: loads ndjson, ndjson.gz and JSON (Bundle or resource) files, and builds the
//! audit event of a load ([`audit_event`]). Imports the engine, the store and the audit
//! log's events; never an HTTP-facing module, `app` or the CLI.
//!
//! Ids are kept (update-as-create), resources are validated like any write, rows go in
//! batches of one transaction each, and conditional references such as
//! `Practitioner?identifier=…` are resolved as a transaction would resolve them.

pub mod files;
mod loader;
mod progress;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::audit::switch::cli_event;
use crate::audit::{Event, Outcome, Security, Subject};
use crate::store::Store;

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Resources stored, by type.
    pub imported: BTreeMap<String, u64>,
    /// Records that were reported and skipped.
    pub failed: u64,
}

impl ImportReport {
    pub fn total(&self) -> u64 {
        self.imported.values().sum()
    }
}

/// The result of an import as the command line and `kiln serve` get it.
pub type ImportOutcome = Result<ImportReport, Box<dyn std::error::Error + Send + Sync>>;

/// The audit event of a bulk load of `source` (the files of `kiln import`, the bundled
/// sample data) by the operator: a Kiln `admin-action` alert about the load, with what was
/// stored by type; outcome `4` when records failed, `8` when the load stopped on an error.
pub fn audit_event(source: &str, result: &ImportOutcome) -> Event {
    let (outcome, description) = match result {
        Ok(report) => {
            let by_type: Vec<String> = report
                .imported
                .iter()
                .map(|(resource_type, count)| format!("{resource_type} {count}"))
                .collect();
            let outcome = if report.failed > 0 {
                Outcome::Minor
            } else {
                Outcome::Success
            };
            let description = format!(
                "data imported: {} resources ({}), {} records failed",
                report.total(),
                by_type.join(", "),
                report.failed
            );
            (outcome, description)
        }
        Err(error) => (Outcome::Serious, format!("data import stopped: {error}")),
    };
    let mut event = cli_event(Security::AdminAction, Subject::import(source), description);
    event.outcome = outcome;
    event
}

/// Resources per import transaction unless the operator says otherwise. Larger batches
/// were measured no faster on either backend (SQLite's one writer spent the same CPU time
/// per resource at 2,000) and hold more memory.
pub const DEFAULT_BATCH_SIZE: usize = 500;

pub async fn run(store: &Store, paths: &[PathBuf], batch_size: usize) -> ImportOutcome {
    let files = files::collect(paths)?;
    let total_bytes = files.iter().map(|file| file.size).sum();
    let progress = progress::Progress::new(total_bytes);
    let started = std::time::Instant::now();
    let writer = store.bulk_writer().await?;
    let mut loader = loader::Loader::new(store, writer.store().clone(), batch_size, &progress);
    for file in &files {
        loader.load_file(file).await?;
    }
    let report = loader.finish().await?;
    // The batches may have committed without waiting for the disk: the import is done
    // when they are all on it.
    writer.finish().await?;
    progress.finish();
    print_summary(&report, started);
    Ok(report)
}

/// Imports in-memory sources (the bundled sample data): `(name, kind, reader)`.
pub async fn run_sources(
    store: &Store,
    sources: Vec<(&str, files::Kind, Box<dyn std::io::BufRead>)>,
) -> ImportOutcome {
    let progress = progress::Progress::new(0);
    let started = std::time::Instant::now();
    let writer = store.bulk_writer().await?;
    let mut loader =
        loader::Loader::new(store, writer.store().clone(), DEFAULT_BATCH_SIZE, &progress);
    for (name, kind, reader) in sources {
        loader.load_reader(name, kind, 0, reader).await?;
    }
    let report = loader.finish().await?;
    writer.finish().await?;
    progress.finish();
    print_summary(&report, started);
    Ok(report)
}

fn print_summary(report: &ImportReport, started: std::time::Instant) {
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("imported {} resources in {elapsed:.1} s", report.total());
    for (resource_type, count) in &report.imported {
        eprintln!("  {resource_type:<32} {count:>9}");
    }
    if report.failed > 0 {
        eprintln!("{} records failed (see the lines above)", report.failed);
    }
}
