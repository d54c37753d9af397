//! The files of a run: each part of the export (a type's resources, its deletions, the
//! errors...) is split into files of at most the configured number of lines, and every file
//! is recorded in the job's manifest as soon as it is complete. A run taking over from an
//! interrupted one keeps the recorded files and goes on after the last one.

use crate::state::AppState;
use crate::state::export_files::{ExportStorage, ExportWriter};
use crate::store::ExportFile;

pub type RunResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The run's job was cancelled or taken over while it was writing.
#[derive(Debug)]
pub struct LeaseLost;

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the export job is no longer this run's")
    }
}

impl std::error::Error for LeaseLost {}

/// What a part's files hold: manifest `output`, `deleted` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Output,
    Deleted,
    Error,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Output => "output",
            Kind::Deleted => "deleted",
            Kind::Error => "error",
        }
    }
}

/// The files of one job, written by one run.
pub struct Sink<'a> {
    state: &'a AppState,
    storage: ExportStorage,
    job_id: &'a str,
    worker: &'a str,
    /// Every file of the job recorded so far, in manifest order.
    recorded: Vec<ExportFile>,
    max_lines: i64,
}

/// One part being written.
pub struct Part {
    kind: Kind,
    resource_type: String,
    stem: String,
    /// Files of the part so far, recorded ones included.
    number: usize,
    open: Option<OpenFile>,
    /// Where an interrupted run stopped: the key after which to go on.
    pub resume_after: Option<String>,
}

struct OpenFile {
    writer: ExportWriter,
    name: String,
    lines: i64,
    last_key: String,
}

impl<'a> Sink<'a> {
    /// The sink of `worker`'s run: files an earlier run recorded stay, anything else it
    /// left (a file it was writing when it stopped) goes.
    pub async fn open(state: &'a AppState, job_id: &'a str, worker: &'a str) -> RunResult<Self> {
        let storage = state.exports.clone();
        let recorded = state.store.export_files(job_id).await?;
        let keep: Vec<String> = recorded.iter().map(|file| file.name.clone()).collect();
        storage.remove_all_but(job_id, &keep).await?;
        Ok(Sink {
            state,
            storage,
            job_id,
            worker,
            recorded,
            max_lines: state.config.export.export_file_lines.max(1),
        })
    }

    /// The part of `kind` and `resource_type`, files named after `stem`; `None` when an
    /// earlier run finished it.
    pub fn part(&self, kind: Kind, resource_type: &str, stem: &str) -> Option<Part> {
        let earlier: Vec<&ExportFile> = self
            .recorded
            .iter()
            .filter(|file| file.kind == kind.as_str() && file.resource_type == resource_type)
            .collect();
        if earlier.iter().any(|file| file.resume_after.is_none()) {
            return None;
        }
        Some(Part {
            kind,
            resource_type: resource_type.to_owned(),
            stem: stem.to_owned(),
            number: earlier.len(),
            open: None,
            resume_after: earlier.last().and_then(|file| file.resume_after.clone()),
        })
    }

    /// Appends `line` under `key` (a resource id, or the Patient of a block): a full file is
    /// closed first, but only between keys, so lines of one key stay in one file.
    pub async fn write(&mut self, part: &mut Part, key: &str, line: &[u8]) -> RunResult<()> {
        if part
            .open
            .as_ref()
            .is_some_and(|open| open.lines >= self.max_lines && open.last_key != key)
        {
            self.close(part, true).await?;
        }
        let open = match part.open.as_mut() {
            Some(open) => open,
            None => {
                part.number += 1;
                let name = format!("{}/{}.{}.ndjson", self.worker, part.stem, part.number);
                part.open.insert(OpenFile {
                    writer: self.storage.create(self.job_id, &name),
                    name,
                    lines: 0,
                    last_key: String::new(),
                })
            }
        };
        open.writer.write_all(line).await?;
        open.lines += 1;
        if open.last_key != key {
            open.last_key = key.to_owned();
        }
        Ok(())
    }

    /// Ends the part; its last file is recorded as its end.
    pub async fn finish(&mut self, mut part: Part) -> RunResult<()> {
        self.close(&mut part, false).await
    }

    async fn close(&mut self, part: &mut Part, more: bool) -> RunResult<()> {
        let Some(open) = part.open.take() else {
            return Ok(());
        };
        open.writer.finish().await?;
        let file = ExportFile {
            kind: part.kind.as_str().to_owned(),
            resource_type: part.resource_type.clone(),
            name: open.name,
            count: open.lines,
            resume_after: more.then_some(open.last_key),
            page: None,
        };
        let seq = self.recorded.len() as i64;
        let store = &self.state.store;
        if !store
            .add_export_file(self.job_id, self.worker, seq, &file)
            .await?
        {
            return Err(LeaseLost.into());
        }
        self.recorded.push(file);
        Ok(())
    }
}
