//! Where export files live: one object per file under `{job_id}/`, in the export directory.

use std::path::PathBuf;

use tokio::io::{AsyncWriteExt, BufWriter};

use crate::config::ExportConfig;

pub type StorageError = std::io::Error;

#[derive(Clone)]
pub struct ExportStorage {
    root: PathBuf,
}

impl ExportStorage {
    pub fn from_config(config: &ExportConfig) -> Result<ExportStorage, StorageError> {
        Ok(ExportStorage {
            root: config.export_dir.clone(),
        })
    }

    /// A new object `{job_id}/{name}`, written as bytes arrive.
    pub fn create(&self, job_id: &str, name: &str) -> ExportWriter {
        ExportWriter {
            path: self.root.join(job_id).join(name),
            file: None,
        }
    }

    /// Every object of the job.
    pub async fn remove_job(&self, job_id: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_dir_all(self.root.join(job_id)).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// Every object of the job except those named (relative to the job).
    pub async fn remove_all_but(&self, job_id: &str, keep: &[String]) -> Result<(), StorageError> {
        let dir = self.root.join(job_id);
        let Ok(mut runs) = tokio::fs::read_dir(&dir).await else {
            return Ok(());
        };
        while let Some(run) = runs.next_entry().await? {
            let mut files = tokio::fs::read_dir(run.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let name = format!(
                    "{}/{}",
                    run.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                );
                if !keep.contains(&name) {
                    tokio::fs::remove_file(file.path()).await?;
                }
            }
        }
        Ok(())
    }
}

pub struct ExportWriter {
    path: PathBuf,
    file: Option<BufWriter<tokio::fs::File>>,
}

impl ExportWriter {
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let file = match self.file.as_mut() {
            Some(file) => file,
            None => {
                if let Some(parent) = self.path.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                let file = tokio::fs::File::create(&self.path).await?;
                self.file.insert(BufWriter::with_capacity(256 * 1024, file))
            }
        };
        file.write_all(bytes).await
    }

    /// Completes the file.
    pub async fn finish(self) -> std::io::Result<()> {
        match self.file {
            Some(mut file) => file.flush().await,
            None => Ok(()),
        }
    }
}
