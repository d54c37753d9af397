//! Rebuilding search index rows when the extraction that built them has changed.
//!
//! The index version is a fingerprint of the generated search-parameter registry plus
//! [`EXTRACTION_REVISION`]; a database whose rows were built by another version is
//! re-indexed at start (instant on an empty database) so search never reads stale rows.

use crate::fhir::outcome::FhirResult;
use crate::store::{Indexed, Store};

use super::index::index_rows;

/// Bump when the extraction code changes what it stores for the same registry.
const EXTRACTION_REVISION: u32 = 2;

const SETTING: &str = "search_index_version";

/// Resources re-indexed per transaction.
const BATCH: i64 = 500;

/// The version of the index rows this binary writes.
pub fn index_version() -> String {
    format!(
        "{EXTRACTION_REVISION}-{:016x}",
        fnv1a(crate::search::registry_source().as_bytes())
    )
}

/// FNV-1a: a stable fingerprint (std's hashers may change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Re-indexes every live resource if the stored index version is not this binary's.
pub async fn ensure_current(store: &Store) -> FhirResult<()> {
    let version = index_version();
    if store.setting(SETTING).await?.as_deref() == Some(version.as_str()) {
        return Ok(());
    }
    let count = reindex_all(store).await?;
    mark_current(store).await?;
    if count > 0 {
        tracing::info!(count, %version, "search index rebuilt");
    }
    Ok(())
}

/// Records that the index rows are this binary's version.
pub async fn mark_current(store: &Store) -> FhirResult<()> {
    store.set_setting(SETTING, &index_version()).await?;
    Ok(())
}

/// Rebuilds the index rows of every live resource; returns how many were re-indexed.
pub async fn reindex_all(store: &Store) -> FhirResult<u64> {
    let mut after: Option<(String, String)> = None;
    let mut count = 0u64;
    loop {
        let page = store
            .scan_live(after.as_ref().map(|(t, i)| (t.as_str(), i.as_str())), BATCH)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.resource_type.clone(), last.id.clone()));
        let rows: Vec<_> = page
            .iter()
            .map(|stored| {
                let resource: serde_json::Value =
                    serde_json::from_slice(&stored.body).unwrap_or_default();
                index_rows(&resource)
            })
            .collect();
        let indexed: Vec<Indexed> = page
            .iter()
            .zip(&rows)
            .map(|(stored, index)| Indexed {
                resource_type: &stored.resource_type,
                id: &stored.id,
                index,
                may_have_rows: true,
            })
            .collect();
        let mut tx = store.begin().await?;
        tx.replace_index_rows(&indexed).await?;
        tx.set_patients(&indexed).await?;
        tx.commit().await?;
        count += page.len() as u64;
    }
    Ok(count)
}
