//! One run of a job: the parts of the export in order (the resources, by type or in Patient
//! blocks; their Provenance; deletions; errors), each streamed page by page from the database
//! into its files, renewing the lease (and noticing cancellation) between pages.

use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};

use super::job::JobSpec;
use super::output::{Kind, LeaseLost, Part, RunResult, Sink};
use super::params::{Associated, query_pairs};
use crate::access::reach::Access;
use crate::engine::export::{self, ExportAccess};
use crate::fhir::outcome::informational;
use crate::fhir::subset::Subset;
use crate::search::patient_compartments;
use crate::search::query::{Criterion, parse_search};
use crate::state::AppState;
use crate::store::{ExportJob, ExportScan, Population, Store, StoredResource};

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every file written and recorded.
    Complete,
    /// The job was cancelled or taken over: its files are not ours to finish.
    Lost,
}

/// Whether a run may go on: false once its lease is lost.
pub type Going = bool;

/// What a part reads from the database.
enum Source<'s> {
    Resources,
    /// The Provenance of the exported resources of `targets` (types).
    Provenance {
        targets: &'s [String],
        latest: bool,
    },
    Deletions,
}

/// A run of `job` by `worker`.
pub struct Run<'a> {
    pub state: &'a AppState,
    pub job: &'a ExportJob,
    pub worker: &'a str,
    pub spec: JobSpec,
    access: Access,
    subset: Subset,
    pub base: String,
    /// Where the pages of resources are read: the standby when one is configured and holds
    /// every write before the run, else the primary.
    pub reads: Store,
    /// Lines written so far, for the progress report.
    exported: AtomicI64,
}

impl<'a> Run<'a> {
    pub fn new(
        state: &'a AppState,
        job: &'a ExportJob,
        worker: &'a str,
        reads: Store,
    ) -> RunResult<Self> {
        let spec: JobSpec = serde_json::from_str(&job.params)?;
        let subset = match &spec.params.elements {
            Some(elements) => Subset::from_params(None, Some(elements))?,
            None => Subset::Full,
        };
        Ok(Run {
            state,
            job,
            worker,
            access: spec.access(&job.client_id),
            spec,
            subset,
            base: state.config.fhir_base(),
            reads,
            exported: AtomicI64::new(0),
        })
    }

    pub async fn execute(&self) -> RunResult<Ended> {
        match self.parts().await {
            Err(error) if error.is::<LeaseLost>() => Ok(Ended::Lost),
            ended => ended,
        }
    }

    async fn parts(&self) -> RunResult<Ended> {
        let mut sink = Sink::open(self.state, &self.job.id, self.worker).await?;
        let mut going = if self.spec.params.organize_by_patient {
            super::organize::blocks(self, &mut sink).await?
        } else {
            self.resources(&mut sink).await?
        };
        if going && let Some(associated) = self.spec.params.associated {
            going = self.provenance(&mut sink, associated).await?;
        }
        if going && self.spec.params.since.is_some() {
            going = self.deletions(&mut sink).await?;
        }
        if !going {
            return Ok(Ended::Lost);
        }
        self.errors(&mut sink).await?;
        Ok(Ended::Complete)
    }

    /// The resources, one part per type.
    async fn resources(&self, sink: &mut Sink<'_>) -> RunResult<Going> {
        let types = self.spec.types.clone();
        for (index, resource_type) in types.iter().enumerate() {
            let Some(part) = sink.part(Kind::Output, resource_type, resource_type) else {
                continue;
            };
            let progress = format!("exporting {resource_type} ({}/{})", index + 1, types.len());
            let population = self.population();
            let going = self
                .stream(
                    sink,
                    part,
                    resource_type,
                    &Source::Resources,
                    &population,
                    &progress,
                )
                .await?;
            if !going {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The Provenance of the exported resources (`includeAssociatedData`).
    async fn provenance(&self, sink: &mut Sink<'_>, associated: Associated) -> RunResult<Going> {
        let Some(part) = sink.part(Kind::Output, "Provenance", "Provenance") else {
            return Ok(true);
        };
        let targets: Vec<String> = self
            .spec
            .types
            .iter()
            .filter(|t| *t != "Provenance")
            .cloned()
            .collect();
        let source = Source::Provenance {
            targets: &targets,
            latest: associated == Associated::LatestProvenance,
        };
        let population = self.population();
        self.stream(
            sink,
            part,
            "Provenance",
            &source,
            &population,
            "exporting Provenance",
        )
        .await
    }

    /// Deletions in the `_since` window, one part per type.
    async fn deletions(&self, sink: &mut Sink<'_>) -> RunResult<Going> {
        let types = self.spec.types.clone();
        for resource_type in &types {
            let stem = format!("{resource_type}.deleted");
            let Some(part) = sink.part(Kind::Deleted, resource_type, &stem) else {
                continue;
            };
            // Tombstones keep no compartment rows: their last version decides (below).
            let going = self
                .stream(
                    sink,
                    part,
                    resource_type,
                    &Source::Deletions,
                    &Population::All,
                    "listing deletions",
                )
                .await?;
            if !going {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Notes on parameters ignored under `Prefer: handling=lenient`.
    async fn errors(&self, sink: &mut Sink<'_>) -> RunResult<()> {
        if self.spec.params.ignored.is_empty() {
            return Ok(());
        }
        let Some(mut part) = sink.part(Kind::Error, "OperationOutcome", "OperationOutcome") else {
            return Ok(());
        };
        for parameter in &self.spec.params.ignored {
            let outcome = informational(format!(
                "the parameter {parameter} is not supported and was ignored"
            ));
            let mut line = serde_json::to_vec(&outcome)?;
            line.push(b'\n');
            sink.write(&mut part, parameter, &line).await?;
        }
        sink.finish(part).await
    }

    /// Streams one part: pages of `source` for `resource_type`, each line written under its
    /// resource id, after where an interrupted run stopped.
    async fn stream(
        &self,
        sink: &mut Sink<'_>,
        mut part: Part,
        resource_type: &str,
        source: &Source<'_>,
        population: &Population<'_>,
        progress: &str,
    ) -> RunResult<Going> {
        // Scopes were checked at kick-off; a type they no longer reach is left out.
        let Some(access) = ExportAccess::of(&self.access, resource_type) else {
            return Ok(true);
        };
        let filters = match source {
            Source::Resources => type_filters(&self.spec, resource_type)?,
            _ => Vec::new(),
        };
        let mut after = part.resume_after.clone();
        loop {
            let page = self
                .page(
                    source,
                    resource_type,
                    after.as_deref(),
                    population,
                    &filters,
                    &access,
                )
                .await?;
            let full = page.len() as i64 >= self.batch();
            if let Some(last) = page.last() {
                after = Some(last.id.clone());
            }
            for stored in page {
                let id = stored.id.clone();
                if let Some(line) = self.line(source, stored).await? {
                    sink.write(&mut part, &id, &line).await?;
                    self.count_exported(1);
                }
            }
            if !self.renew(progress).await? {
                return Ok(false);
            }
            if !full {
                break;
            }
        }
        sink.finish(part).await?;
        Ok(true)
    }

    async fn page(
        &self,
        source: &Source<'_>,
        resource_type: &str,
        after_id: Option<&str>,
        population: &Population<'_>,
        filters: &[Vec<Criterion>],
        access: &ExportAccess,
    ) -> RunResult<Vec<StoredResource>> {
        let params = &self.spec.params;
        let scan = ExportScan {
            resource_type,
            base: &self.base,
            after_id,
            limit: self.batch(),
            since: params.since,
            until: params.until,
            population: population.clone(),
            filters,
            access: None,
            deleted_after: match source {
                Source::Resources => Some(self.job.transaction_time),
                _ => None,
            },
        };
        let store = &self.reads;
        Ok(match source {
            Source::Resources => export::resource_page(store, access, scan).await?,
            Source::Provenance { targets, latest } => {
                export::provenance_page(store, access, scan, targets, *latest).await?
            }
            // Deletions are not narrowed by access.
            Source::Deletions => {
                // A deletion after the transaction time did not happen yet as of it.
                let until = params.until.map_or(self.job.transaction_time, |until| {
                    until.min(self.job.transaction_time)
                });
                let scan = ExportScan {
                    until: Some(until),
                    deleted_after: None,
                    ..scan
                };
                store.export_deleted_page(&scan).await?
            }
        })
    }

    /// The line of a page's row, or `None` when it is not part of the export after all.
    async fn line(
        &self,
        source: &Source<'_>,
        stored: StoredResource,
    ) -> RunResult<Option<Vec<u8>>> {
        if let Source::Deletions = source {
            return Ok(if self.deleted_in_population(&stored).await? {
                Some(deletion_bundle(&stored)?)
            } else {
                None
            });
        }
        Ok(self
            .as_of_transaction(stored)
            .await?
            .map(|stored| one_line(self.subset.apply(stored.body))))
    }

    /// The resource as it was at the job's transaction time: one changed (or deleted) since
    /// is exported as it was then, or not at all if it did not exist then or is outside the
    /// window.
    pub async fn as_of_transaction(
        &self,
        stored: StoredResource,
    ) -> RunResult<Option<StoredResource>> {
        let at = self.job.transaction_time;
        if stored.last_updated <= at {
            return Ok(Some(stored));
        }
        let then = self
            .state
            .store
            .version_at(&stored.resource_type, &stored.id, at)
            .await?;
        let since = self.spec.params.since;
        Ok(then.filter(|version| {
            !version.deleted && since.is_none_or(|since| version.last_updated >= since)
        }))
    }

    /// Whether a deleted resource was in the export's population: at system level always;
    /// otherwise its last version must have been in one of the Patients' compartments.
    async fn deleted_in_population(&self, tombstone: &StoredResource) -> RunResult<bool> {
        let population = self.population();
        if let Population::All = population {
            return Ok(true);
        }
        let Some(last) = self
            .state
            .store
            .vread(
                &tombstone.resource_type,
                &tombstone.id,
                tombstone.version_id - 1,
            )
            .await?
        else {
            return Ok(false);
        };
        let body: Value = serde_json::from_slice(&last.body)?;
        let owners = patient_compartments(&body);
        Ok(match population {
            Population::Patients(patients) => owners.iter().any(|owner| patients.contains(owner)),
            _ => !owners.is_empty(),
        })
    }

    /// Whose resources the job exports.
    pub fn population(&self) -> Population<'_> {
        match (&self.spec.patients, self.job.level.as_str()) {
            (Some(patients), _) => Population::Patients(patients),
            (None, "system") => Population::All,
            (None, _) => Population::AnyPatient,
        }
    }

    pub fn batch(&self) -> i64 {
        self.state.config.export.export_batch.max(1)
    }

    /// The resource's line with `_elements` applied.
    pub fn resource_line(&self, stored: StoredResource) -> Vec<u8> {
        one_line(self.subset.apply(stored.body))
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    pub fn count_exported(&self, lines: i64) {
        self.exported.fetch_add(lines, Ordering::Relaxed);
    }

    pub async fn renew(&self, progress: &str) -> RunResult<bool> {
        let lease = crate::auth::now() + self.state.config.export.export_lease.max(1);
        let exported = self.exported.load(Ordering::Relaxed);
        let progress = format!("{progress}; {exported} resources so far");
        Ok(self
            .state
            .store
            .renew_export_lease(&self.job.id, self.worker, lease, &progress)
            .await?)
    }
}

/// The criteria of each `_typeFilter` on `resource_type`.
pub fn type_filters(spec: &JobSpec, resource_type: &str) -> RunResult<Vec<Vec<Criterion>>> {
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
