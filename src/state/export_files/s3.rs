//! The S3-compatible bucket of the export files, built from the `KILN_EXPORT_S3_*` settings.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, path::Path};

use super::StorageError;
use crate::config::S3Config;

/// Longest wait for the next bytes of a response; a download may take as long as the client
/// needs to read it, so there is no limit on a whole request.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub fn store(config: &S3Config, bucket: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
    if bucket.trim().is_empty() {
        return Err(invalid("KILN_EXPORT_S3_BUCKET is empty"));
    }
    let mut builder = match (&config.access_key_id, &config.secret_access_key) {
        (Some(key_id), Some(secret)) => AmazonS3Builder::new()
            .with_access_key_id(key_id)
            .with_secret_access_key(secret.expose()),
        // The usual chain: AWS_* variables, web identity, container or instance credentials.
        _ => AmazonS3Builder::from_env(),
    };
    builder = builder
        .with_bucket_name(bucket)
        .with_region(&config.region)
        .with_allow_http(false)
        .with_client_options(
            ClientOptions::new()
                .with_timeout_disabled()
                .with_read_timeout(READ_TIMEOUT),
        );
    if let Some(endpoint) = &config.endpoint {
        let url = reqwest::Url::parse(endpoint)
            .map_err(|error| invalid(format!("KILN_EXPORT_S3_ENDPOINT is not a URL: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(invalid(
                "KILN_EXPORT_S3_ENDPOINT must be an http:// or https:// URL",
            ));
        }
        // MinIO, Ceph and the like address buckets by path, often over plain HTTP inside a
        // private network; AWS itself is only reached over HTTPS.
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(url.scheme() == "http");
    }
    let s3 = builder
        .build()
        .map_err(|error| invalid(format!("the S3 settings are not usable: {error}")))?;
    let prefix = Path::from(config.prefix.as_deref().unwrap_or_default());
    Ok(if prefix.as_ref().is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, prefix))
    })
}

fn invalid(message: impl Into<String>) -> StorageError {
    StorageError::Config(message.into())
}
