//! One run of a job: each type streamed page by page from the database into its ndjson
//! file, renewing the lease (and noticing cancellation) between pages.

use serde_json::{Value, json};

use super::job::JobSpec;
use super::params::query_pairs;
use super::storage::ExportWriter;
use crate::app::AppState;
use crate::auth::scope::Permission;
use crate::engine::access::search_filter;
use crate::fhir::outcome::informational;
use crate::fhir::subset::Subset;
use crate::search::query::{Criterion, parse_search};
use crate::store::{ExportFile, ExportJob, ExportScan, Population, StoredResource};

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every file written and recorded.
    Complete,
    /// The job was cancelled or taken over: its files are not ours to finish.
    Lost,
}

type RunResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A run of `job` by `worker`, writing objects under `{job}/{worker}/`.
pub struct Run<'a> {
    pub state: &'a AppState,
    pub job: &'a ExportJob,
    pub worker: &'a str,
    files: i64,
    exported: i64,
}

impl<'a> Run<'a> {
    pub fn new(state: &'a AppState, job: &'a ExportJob, worker: &'a str) -> Self {
        Run {
            state,
            job,
            worker,
            files: 0,
            exported: 0,
        }
    }

    pub async fn execute(&mut self) -> RunResult<Ended> {
        let spec: JobSpec = serde_json::from_str(&self.job.params)?;
        let access = spec.access(&self.job.client_id);
        let subset = match &spec.params.elements {
            Some(elements) => Subset::from_params(None, Some(elements))?,
            None => Subset::Full,
        };
        let base = self.state.config.fhir_base();
        let population = match (&spec.patients, self.job.level.as_str()) {
            (Some(patients), _) => Population::Patients(patients),
            (None, "system") => Population::All,
            (None, _) => Population::AnyPatient,
        };
        for (index, resource_type) in spec.types.iter().enumerate() {
            // Scopes are checked at kick-off; a type they no longer reach is left out.
            let Ok(filter) = search_filter(&access, &[resource_type], Permission::Read) else {
                continue;
            };
            let filters = type_filters(&spec, resource_type)?;
            let scan = ExportScan {
                resource_type,
                base: &base,
                after_id: None,
                limit: self.state.config.export.export_batch.max(1),
                since: spec.params.since,
                until: spec.params.until,
                population: population.clone(),
                filters: &filters,
                access: filter.as_ref(),
            };
            let progress = format!(
                "exporting {resource_type} ({}/{})",
                index + 1,
                spec.types.len()
            );
            let name = format!("{resource_type}.ndjson");
            let count = self
                .write_pages(&scan, &name, &progress, |stored| {
                    Ok(one_line(subset.apply(stored.body)))
                })
                .await?;
            let Some(count) = count else {
                return Ok(Ended::Lost);
            };
            self.record("output", resource_type, &name, count).await?;
        }
        if spec.params.since.is_some() && self.job.level == "system" {
            for resource_type in &spec.types {
                let scan = ExportScan {
                    resource_type,
                    base: &base,
                    after_id: None,
                    limit: self.state.config.export.export_batch.max(1),
                    since: spec.params.since,
                    until: spec.params.until,
                    population: Population::All,
                    filters: &[],
                    access: None,
                };
                let name = format!("{resource_type}.deleted.ndjson");
                let count = self
                    .write_pages(&scan, &name, "listing deletions", |stored| {
                        deletion_bundle(&stored)
                    })
                    .await?;
                let Some(count) = count else {
                    return Ok(Ended::Lost);
                };
                self.record("deleted", resource_type, &name, count).await?;
            }
        }
        if !spec.params.ignored.is_empty() {
            let name = "OperationOutcome.ndjson";
            let mut file = self.create(name);
            for parameter in &spec.params.ignored {
                let outcome = informational(format!(
                    "the parameter {parameter} is not supported and was ignored"
                ));
                let mut line = serde_json::to_vec(&outcome)?;
                line.push(b'\n');
                file.write_all(&line).await?;
            }
            file.finish().await?;
            let count = spec.params.ignored.len() as i64;
            self.record("error", "OperationOutcome", name, count)
                .await?;
        }
        Ok(Ended::Complete)
    }

    /// Pages of `scan` (deletions when `line` gets tombstones) written to `name`; the
    /// number of lines, or `None` when the lease was lost.
    async fn write_pages(
        &mut self,
        scan: &ExportScan<'_>,
        name: &str,
        progress: &str,
        line: impl Fn(StoredResource) -> RunResult<Vec<u8>>,
    ) -> RunResult<Option<i64>> {
        let deletions = name.ends_with(".deleted.ndjson");
        let mut writer: Option<ExportWriter> = None;
        let mut after: Option<String> = None;
        let mut count = 0i64;
        loop {
            let page_scan = ExportScan {
                after_id: after.as_deref(),
                population: scan.population.clone(),
                ..*scan
            };
            let page = if deletions {
                self.state.store.export_deleted_page(&page_scan).await?
            } else {
                self.state.store.export_page(&page_scan).await?
            };
            let full = page.len() as i64 >= scan.limit;
            after = page.last().map(|stored| stored.id.clone());
            for stored in page {
                if writer.is_none() {
                    writer = Some(self.create(name));
                }
                if let Some(writer) = writer.as_mut() {
                    writer.write_all(&line(stored)?).await?;
                }
                count += 1;
                self.exported += 1;
            }
            if !self.renew(progress).await? {
                return Ok(None);
            }
            if !full {
                break;
            }
        }
        if let Some(writer) = writer {
            writer.finish().await?;
        }
        Ok(Some(count))
    }

    /// The run's object `name`, under the same name its manifest entry gets.
    fn create(&self, name: &str) -> ExportWriter {
        self.state
            .exports
            .create(&self.job.id, &format!("{}/{name}", self.worker))
    }

    async fn renew(&self, progress: &str) -> RunResult<bool> {
        let lease = crate::auth::now() + self.state.config.export.export_lease.max(1);
        let progress = format!("{progress}; {} resources so far", self.exported);
        Ok(self
            .state
            .store
            .renew_export_lease(&self.job.id, self.worker, lease, &progress)
            .await?)
    }

    /// Adds a non-empty file to the manifest.
    async fn record(
        &mut self,
        kind: &str,
        resource_type: &str,
        name: &str,
        count: i64,
    ) -> RunResult<()> {
        if count == 0 {
            return Ok(());
        }
        let file = ExportFile {
            kind: kind.to_owned(),
            resource_type: resource_type.to_owned(),
            // Relative to the job's directory: each run writes into its own.
            name: format!("{}/{name}", self.worker),
            count,
        };
        self.state
            .store
            .add_export_file(&self.job.id, self.files, &file)
            .await?;
        self.files += 1;
        Ok(())
    }
}

/// The criteria of each `_typeFilter` on `resource_type`.
fn type_filters(spec: &JobSpec, resource_type: &str) -> RunResult<Vec<Vec<Criterion>>> {
    let mut filters = Vec::new();
    for (filter_type, query) in &spec.params.type_filters {
        if filter_type == resource_type {
            filters.push(parse_search(Some(resource_type), &query_pairs(query))?.criteria);
        }
    }
    Ok(filters)
}

/// The resource on one line (stored bodies are compact already; a newline would split it).
fn one_line(body: Vec<u8>) -> Vec<u8> {
    let mut line = if body.contains(&b'\n') {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|value| serde_json::to_vec(&value).ok())
            .unwrap_or(body)
    } else {
        body
    };
    line.push(b'\n');
    line
}

/// A deletion as Bulk Data reports it: a transaction Bundle with a DELETE entry.
fn deletion_bundle(stored: &StoredResource) -> RunResult<Vec<u8>> {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "request": {
                "method": "DELETE",
                "url": format!("{}/{}", stored.resource_type, stored.id),
            }
        }],
    });
    let mut line = serde_json::to_vec(&bundle)?;
    line.push(b'\n');
    Ok(line)
}
