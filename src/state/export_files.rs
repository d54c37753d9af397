//! Where export files live: the export directory by default, or an S3-compatible bucket that
//! every replica reads, so any replica can serve the files of a job another one ran. Objects
//! are named `{job_id}/{name}`; Kiln itself serves them behind the bearer token.

#[cfg(feature = "s3")]
mod s3;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use crate::config::ExportConfig;
use crate::fhir::outcome::FhirError;

/// The bytes of an export file, as they arrive from the store.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The store of export files; cheap to clone.
#[derive(Clone)]
pub struct ExportStorage {
    store: Arc<dyn ObjectStore>,
    /// The export directory when files are kept there: removing a job deletes its directory
    /// whole, including half-written files a crash left (listings do not show those).
    directory: Option<Arc<LocalFileSystem>>,
}

impl ExportStorage {
    /// The bucket when one is configured, otherwise the export directory (created if needed).
    pub fn from_config(config: &ExportConfig) -> Result<ExportStorage, StorageError> {
        if let Some(bucket) = &config.s3.bucket {
            return Self::bucket(config, bucket);
        }
        std::fs::create_dir_all(&config.export_dir).map_err(|error| {
            StorageError::Config(format!(
                "cannot create the export directory {}: {error}",
                config.export_dir.display()
            ))
        })?;
        let directory = LocalFileSystem::new_with_prefix(&config.export_dir)
            .map_err(|error| StorageError::Config(error.to_string()))?
            .with_automatic_cleanup(true);
        let directory = Arc::new(directory);
        Ok(ExportStorage {
            store: directory.clone(),
            directory: Some(directory),
        })
    }

    #[cfg(feature = "s3")]
    fn bucket(config: &ExportConfig, bucket: &str) -> Result<ExportStorage, StorageError> {
        Ok(ExportStorage {
            store: s3::store(&config.s3, bucket)?,
            directory: None,
        })
    }

    #[cfg(not(feature = "s3"))]
    fn bucket(_: &ExportConfig, _: &str) -> Result<ExportStorage, StorageError> {
        Err(StorageError::Config(
            "KILN_EXPORT_S3_BUCKET is set but this kiln was built without the `s3` feature".into(),
        ))
    }

    /// Fails when the store cannot be reached: a wrong bucket, endpoint or credentials show
    /// at start rather than at the first export.
    pub async fn check(&self) -> Result<(), StorageError> {
        self.store
            .list_with_delimiter(Some(&Path::from("kiln-startup-check")))
            .await
            .map(|_| ())
            .map_err(|error| StorageError::Config(format!("the export store is unusable: {error}")))
    }

    /// A new object `{job_id}/{name}` (name may contain '/'); bytes are uploaded as they fill a part.
    pub fn create(&self, job_id: &str, name: &str) -> ExportWriter {
        ExportWriter {
            upload: BufWriter::with_capacity(self.store.clone(), object(job_id, name), PART_SIZE),
        }
    }

    /// The object's bytes as a stream, or None when it does not exist.
    pub async fn open(&self, job_id: &str, name: &str) -> Result<Option<ByteStream>, StorageError> {
        match self.store.get(&object(job_id, name)).await {
            Ok(found) => Ok(Some(
                found.into_stream().map_err(std::io::Error::from).boxed(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Every object of the job.
    pub async fn remove_job(&self, job_id: &str) -> Result<(), StorageError> {
        let prefix = job_prefix(job_id)?;
        let Some(directory) = &self.directory else {
            return self.remove_where(&prefix, |_| true).await;
        };
        let path = directory.path_to_filesystem(&prefix)?;
        match tokio::fs::remove_dir_all(&path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(StorageError::Io(error))
            }
            _ => Ok(()),
        }
    }

    /// Every object of the job except those named (names relative to the job, as given to create).
    pub async fn remove_all_but(&self, job_id: &str, keep: &[String]) -> Result<(), StorageError> {
        let prefix = job_prefix(job_id)?;
        let keep: HashSet<Path> = keep.iter().map(|name| object(job_id, name)).collect();
        self.remove_where(&prefix, move |location| !keep.contains(location))
            .await
    }

    /// Deletes the objects under `prefix` that `doomed` picks; one already gone is no error
    /// (another replica may be cleaning up too).
    async fn remove_where(
        &self,
        prefix: &Path,
        doomed: impl Fn(&Path) -> bool + Send + 'static,
    ) -> Result<(), StorageError> {
        let locations = self
            .store
            .list(Some(prefix))
            .map_ok(|meta| meta.location)
            .try_filter(move |location| std::future::ready(doomed(location)))
            .boxed();
        let mut deleted = self.store.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }
}

/// Bytes buffered before an upload becomes multipart; also the part size (S3 wants ≥ 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// An object being written; it exists only once [`ExportWriter::finish`] returns.
pub struct ExportWriter {
    upload: BufWriter,
}

impl ExportWriter {
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.upload.write_all(bytes).await
    }

    /// Completes the upload; the object exists only after this.
    pub async fn finish(mut self) -> std::io::Result<()> {
        self.upload.shutdown().await
    }
}

/// `{job_id}/{name}`; each part is encoded by object_store, so `..` can never climb out.
fn object(job_id: &str, name: &str) -> Path {
    Path::from_iter(std::iter::once(job_id).chain(name.split('/')))
}

/// The prefix of a job's objects; an empty id would mean every job's.
fn job_prefix(job_id: &str) -> Result<Path, StorageError> {
    if job_id.is_empty() {
        return Err(StorageError::Config("an export job id is required".into()));
    }
    Ok(Path::from_iter([job_id]))
}

/// A failure of the export store. Messages name buckets and objects, never credentials.
#[derive(Debug)]
pub enum StorageError {
    /// The settings do not describe a usable store.
    Config(String),
    Store(object_store::Error),
    Io(std::io::Error),
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::Config(message) => formatter.write_str(message),
            StorageError::Store(error) => write!(formatter, "export store: {error}"),
            StorageError::Io(error) => write!(formatter, "export directory: {error}"),
        }
    }
}

impl std::error::Error for StorageError {}

impl From<object_store::Error> for StorageError {
    fn from(error: object_store::Error) -> Self {
        StorageError::Store(error)
    }
}

impl From<StorageError> for FhirError {
    fn from(error: StorageError) -> Self {
        FhirError::internal("accessing the export files", error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(dir: &std::path::Path) -> ExportStorage {
        let mut config = crate::config::ExportConfig::in_dir(dir).unwrap();
        config.s3 = crate::config::S3Config::default();
        ExportStorage::from_config(&config).unwrap()
    }

    async fn put(storage: &ExportStorage, job: &str, name: &str, text: &str) {
        let mut writer = storage.create(job, name);
        writer.write_all(text.as_bytes()).await.unwrap();
        writer.finish().await.unwrap();
    }

    async fn read(storage: &ExportStorage, job: &str, name: &str) -> Option<String> {
        let stream = storage.open(job, name).await.unwrap()?;
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        Some(String::from_utf8(chunks.concat()).unwrap())
    }

    #[tokio::test]
    async fn writes_reads_and_removes_files_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path());
        put(&storage, "job1", "w1/Patient.ndjson", "{}\n{}\n").await;
        put(&storage, "job1", "w2/Patient.ndjson", "{}\n").await;
        put(&storage, "job2", "w1/Patient.ndjson", "x").await;
        assert!(dir.path().join("job1/w1/Patient.ndjson").is_file());
        assert_eq!(
            read(&storage, "job1", "w1/Patient.ndjson").await.as_deref(),
            Some("{}\n{}\n")
        );
        assert_eq!(read(&storage, "job1", "w1/None.ndjson").await, None);

        // An unfinished object never shows.
        let mut unfinished = storage.create("job1", "w3/Patient.ndjson");
        unfinished.write_all(b"{}\n").await.unwrap();
        drop(unfinished);
        assert_eq!(read(&storage, "job1", "w3/Patient.ndjson").await, None);

        storage
            .remove_all_but("job1", &["w2/Patient.ndjson".to_string()])
            .await
            .unwrap();
        assert_eq!(read(&storage, "job1", "w1/Patient.ndjson").await, None);
        assert!(!dir.path().join("job1/w1").exists(), "empty directories go");
        assert!(read(&storage, "job1", "w2/Patient.ndjson").await.is_some());

        storage.remove_job("job1").await.unwrap();
        assert!(!dir.path().join("job1").exists());
        assert_eq!(
            read(&storage, "job2", "w1/Patient.ndjson").await.as_deref(),
            Some("x")
        );
        storage.remove_job("job1").await.unwrap();
        assert!(storage.remove_job("").await.is_err());
    }

    #[tokio::test]
    async fn names_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("exports");
        let storage = storage(&root);
        put(&storage, "..", "../escape.ndjson", "x").await;
        assert!(!dir.path().join("escape.ndjson").exists());
        assert_eq!(
            read(&storage, "..", "../escape.ndjson").await.as_deref(),
            Some("x")
        );
        storage.remove_job("..").await.unwrap();
        assert!(root.is_dir());
    }
}
