//! Turning records into batched writes.

use std::collections::{HashMap, VecDeque};
use std::io::BufRead;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use super::ImportReport;
use super::files::{ImportFile, Kind, open_lines};
use super::progress::Progress;
use crate::access::reach::Access;
use crate::engine::conditional::{Condition, for_each_reference};
use crate::engine::prepare::{Expect, parse_json_object, prepare_resource};
use crate::engine::prepared::{prepare_new, write_prepared};
use crate::engine::transaction::{ReturnPreference, process_bundle};
use crate::fhir::id::new_id;
use crate::fhir::instant::now_micros;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::store::{Store, VersionWrite};

type ImportResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Batches being written at once: one more than needed to keep the database busy.
const MAX_BATCHES_IN_FLIGHT: usize = 2;

/// A base URL no real reference starts with: import has no public address.
const IMPORT_BASE: &str = "urn:kiln:import";

/// Where a record came from, for `file:line: reason` reports.
#[derive(Debug, Clone)]
struct Origin {
    file: String,
    line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A batch being written in the background, with where its records came from.
type InFlight = (Vec<Origin>, JoinHandle<FhirResult<Vec<VersionWrite>>>);

/// A record ready to be stamped and stored: type, id, history method and the resource.
struct Pending {
    resource_type: String,
    id: String,
    method: &'static str,
    resource: Map<String, Value>,
}

/// Why a conditional reference could not be resolved yet.
enum Unresolved {
    /// No match now; its target may still come later in the import.
    Later(String),
    Failed(FhirError),
}

pub struct Loader<'a> {
    /// For reads (conditional references) and transaction Bundles.
    store: &'a Store,
    /// For the batches: see [`Store::bulk_writer`].
    bulk: Store,
    batch_size: usize,
    progress: &'a Progress,
    batch: Vec<(Origin, Pending)>,
    in_flight: VecDeque<InFlight>,
    /// Held by the batch being written: SQLite has one writer, and a second transaction
    /// waiting in SQLite's busy handler would sleep past the moment the first commits.
    writer: Arc<tokio::sync::Mutex<()>>,
    resolved: HashMap<String, String>,
    deferred: Vec<(Origin, Map<String, Value>)>,
    report: ImportReport,
    bytes_before_file: u64,
}

impl<'a> Loader<'a> {
    pub fn new(store: &'a Store, bulk: Store, batch_size: usize, progress: &'a Progress) -> Self {
        Loader {
            store,
            bulk,
            batch_size,
            progress,
            batch: Vec::with_capacity(batch_size),
            in_flight: VecDeque::new(),
            writer: Arc::default(),
            resolved: HashMap::new(),
            deferred: Vec::new(),
            report: ImportReport::default(),
            bytes_before_file: 0,
        }
    }

    pub async fn load_file(&mut self, file: &ImportFile) -> ImportResult<()> {
        let reader = open_lines(file)?;
        let name = file.path.display().to_string();
        self.load_reader(&name, file.kind, file.size, reader).await
    }

    /// Loads one source: ndjson lines, or one JSON document (Bundle or resource).
    pub async fn load_reader(
        &mut self,
        name: &str,
        kind: Kind,
        size: u64,
        mut reader: Box<dyn BufRead>,
    ) -> ImportResult<()> {
        let name = name.to_string();
        if kind == Kind::Json {
            let mut text = Vec::new();
            reader.read_to_end(&mut text)?;
            self.load_json(&name, &text).await?;
        } else {
            let mut line = String::new();
            let mut number = 0;
            let mut bytes = 0u64;
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(read) => bytes += read as u64,
                    Err(error) => {
                        self.fail(
                            &Origin {
                                file: name.clone(),
                                line: number + 1,
                            },
                            &error.to_string(),
                        );
                        break;
                    }
                }
                number += 1;
                if line.trim().is_empty() {
                    continue;
                }
                let origin = Origin {
                    file: name.clone(),
                    line: number,
                };
                match parse_json_object(line.as_bytes()) {
                    Ok(resource) => self.record(origin, resource).await?,
                    Err(error) => self.fail(&origin, &error.summary()),
                }
                // Compressed files report decompressed bytes, capped at their size.
                let position = self.bytes_before_file + bytes.min(size);
                self.progress.update(position, self.stored());
            }
        }
        self.bytes_before_file += size;
        self.progress.update(self.bytes_before_file, self.stored());
        Ok(())
    }

    async fn load_json(&mut self, name: &str, text: &[u8]) -> ImportResult<()> {
        let origin = Origin {
            file: name.to_string(),
            line: 1,
        };
        let resource = match parse_json_object(text) {
            Ok(resource) => resource,
            Err(error) => {
                self.fail(&origin, &error.summary());
                return Ok(());
            }
        };
        let is_bundle = resource.get("resourceType").and_then(Value::as_str) == Some("Bundle");
        let bundle_type = resource.get("type").and_then(Value::as_str).unwrap_or("");
        match (is_bundle, bundle_type) {
            (true, "transaction" | "batch") => self.load_transaction(&origin, resource).await,
            (true, "collection" | "searchset" | "history") => {
                let entries = match resource.get("entry") {
                    Some(Value::Array(entries)) => entries.clone(),
                    _ => Vec::new(),
                };
                for (index, entry) in entries.into_iter().enumerate() {
                    let origin = Origin {
                        file: name.to_string(),
                        line: index + 1,
                    };
                    match entry.get("resource") {
                        Some(Value::Object(resource)) => {
                            self.record(origin, resource.clone()).await?
                        }
                        _ => self.fail(&origin, "Bundle entry without a resource"),
                    }
                }
                Ok(())
            }
            _ => self.record(origin, resource).await,
        }
    }

    /// Transaction and batch Bundles run through the transaction engine as they are.
    async fn load_transaction(
        &mut self,
        origin: &Origin,
        bundle: Map<String, Value>,
    ) -> ImportResult<()> {
        self.flush().await?;
        let types: Vec<Option<String>> = match bundle.get("entry") {
            Some(Value::Array(entries)) => entries
                .iter()
                .map(|entry| {
                    entry
                        .pointer("/resource/resourceType")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect(),
            _ => Vec::new(),
        };
        let response = match process_bundle(
            self.store,
            bundle,
            IMPORT_BASE,
            ReturnPreference::Minimal,
            // The operator's own import: no token limits it, and it is a bulk load, not a
            // FHIR interaction of a client (docs/audit.md).
            &Access::Full,
            None,
        )
        .await
        {
            Ok(response) => response,
            Err(error) => {
                self.fail(origin, &error.summary());
                return Ok(());
            }
        };
        let entries = response
            .get("entry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (index, entry) in entries.iter().enumerate() {
            let status = entry
                .pointer("/response/status")
                .and_then(Value::as_str)
                .unwrap_or("");
            if status.starts_with('2') {
                if let Some(Some(resource_type)) = types.get(index) {
                    *self
                        .report
                        .imported
                        .entry(resource_type.clone())
                        .or_default() += 1;
                }
            } else {
                let reason = entry
                    .pointer("/response/outcome/issue/0/diagnostics")
                    .and_then(Value::as_str)
                    .unwrap_or(status);
                self.fail(
                    &Origin {
                        file: origin.file.clone(),
                        line: index + 1,
                    },
                    &format!("entry {index}: {reason}"),
                );
            }
        }
        Ok(())
    }

    async fn record(&mut self, origin: Origin, resource: Map<String, Value>) -> ImportResult<()> {
        let resource = match prepare_resource(resource, Expect::Any) {
            Ok(resource) => resource,
            Err(error) => {
                self.fail(&origin, &error.summary());
                return Ok(());
            }
        };
        match self.resolve_references(resource).await? {
            Ok(resource) => self.enqueue(origin, resource).await,
            Err((resource, Unresolved::Later(_))) => {
                self.deferred.push((origin, resource));
                Ok(())
            }
            Err((_, Unresolved::Failed(error))) => {
                self.fail(&origin, &error.summary());
                Ok(())
            }
        }
    }

    async fn enqueue(&mut self, origin: Origin, resource: Map<String, Value>) -> ImportResult<()> {
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (id, method) = match resource.get("id").and_then(Value::as_str) {
            Some(id) => (id.to_string(), "PUT"),
            None => (new_id(), "POST"),
        };
        self.batch.push((
            origin,
            Pending {
                resource_type,
                id,
                method,
                resource,
            },
        ));
        if self.batch.len() >= self.batch_size {
            self.start_write().await?;
        }
        Ok(())
    }

    /// Rewrites conditional references to `Type/id`, or says why it cannot yet.
    async fn resolve_references(
        &mut self,
        resource: Map<String, Value>,
    ) -> ImportResult<Result<Map<String, Value>, (Map<String, Value>, Unresolved)>> {
        let mut value = Value::Object(resource);
        let mut pending: Vec<String> = Vec::new();
        for_each_reference(&mut value, &mut |reference| {
            if reference.contains('?') && !pending.contains(reference) {
                pending.push(reference.clone());
            }
        });
        for text in pending {
            if self.resolved.contains_key(&text) {
                continue;
            }
            let Some(condition) = Condition::parse_reference(&text) else {
                continue;
            };
            let outcome = match condition {
                Ok(condition) => {
                    // The target may sit in the batch not yet written.
                    self.flush().await?;
                    self.lookup(&condition, &text).await?
                }
                Err(error) => Err(Unresolved::Failed(error)),
            };
            match outcome {
                Ok(target) => {
                    self.resolved.insert(text, target);
                }
                Err(unresolved) => {
                    let Value::Object(resource) = value else {
                        unreachable!()
                    };
                    return Ok(Err((resource, unresolved)));
                }
            }
        }
        for_each_reference(&mut value, &mut |reference| {
            if let Some(target) = self.resolved.get(reference.as_str()) {
                *reference = target.clone();
            }
        });
        let Value::Object(resource) = value else {
            unreachable!()
        };
        Ok(Ok(resource))
    }

    async fn lookup(
        &self,
        condition: &Condition,
        text: &str,
    ) -> FhirResult<Result<String, Unresolved>> {
        // The operator's import searches everything (no token limits it).
        let ids = condition
            .matches(self.store, IMPORT_BASE, &Access::Full)
            .await?;
        Ok(match ids.as_slice() {
            [id] => Ok(format!("{}/{id}", condition.resource_type)),
            [] => Err(Unresolved::Later(text.to_string())),
            _ => Err(Unresolved::Failed(FhirError::conflict(format!(
                "the conditional reference {text:?} matches more than one resource"
            )))),
        })
    }

    /// Writes every queued record and waits until all of it is committed.
    async fn flush(&mut self) -> ImportResult<()> {
        self.start_write().await?;
        while !self.in_flight.is_empty() {
            self.wait_for_oldest_write().await?;
        }
        Ok(())
    }

    /// Sends the queued batch to the database in the background, so parsing and validating
    /// the next batch overlaps with stamping, serializing and indexing this one (before its
    /// transaction begins, so no lock is held meanwhile) and with earlier commits.
    /// PostgreSQL works on two batches at once (one backend process each); SQLite, with one
    /// writer, on one at a time.
    async fn start_write(&mut self) -> ImportResult<()> {
        while self.in_flight.len() >= MAX_BATCHES_IN_FLIGHT {
            self.wait_for_oldest_write().await?;
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        let (origins, pending): (Vec<Origin>, Vec<Pending>) = self.batch.drain(..).unzip();
        let store = self.bulk.clone();
        let writer = self.writer.clone();
        let write = tokio::spawn(async move {
            let now = now_micros();
            let writes = pending
                .into_iter()
                .map(|pending| {
                    prepare_new(
                        pending.resource_type,
                        pending.id,
                        pending.method,
                        pending.resource,
                        now,
                    )
                })
                .collect();
            let _one_writer = match store {
                Store::Sqlite(_) => Some(writer.lock().await),
                Store::Postgres(_) => None,
            };
            write_prepared(&store, writes).await
        });
        self.in_flight.push_back((origins, write));
        Ok(())
    }

    async fn wait_for_oldest_write(&mut self) -> ImportResult<()> {
        let Some((origins, write)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match write.await? {
            Ok(writes) => {
                crate::telemetry::resources_imported(writes.len());
                for write in writes {
                    *self.report.imported.entry(write.resource_type).or_default() += 1;
                }
            }
            Err(error) => {
                for origin in &origins {
                    self.fail(origin, &error.summary());
                }
            }
        }
        Ok(())
    }

    /// Writes what is left, then retries records whose references had no target earlier.
    pub async fn finish(mut self) -> ImportResult<ImportReport> {
        self.flush().await?;
        for (origin, resource) in std::mem::take(&mut self.deferred) {
            match self.resolve_references(resource).await? {
                Ok(resource) => self.enqueue(origin, resource).await?,
                Err((_, Unresolved::Later(text))) => self.fail(
                    &origin,
                    &format!("the conditional reference {text:?} matches no resource"),
                ),
                Err((_, Unresolved::Failed(error))) => self.fail(&origin, &error.summary()),
            }
        }
        self.flush().await?;
        Ok(self.report)
    }

    fn stored(&self) -> u64 {
        self.report.total()
    }

    fn fail(&mut self, origin: &Origin, reason: &str) {
        self.report.failed += 1;
        self.progress.println(&format!("{origin}: {reason}"));
    }
}
