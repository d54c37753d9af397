//! The pages of resources a bulk export reads, under the caller's access: the access to
//! an exported type is worked out once ([`ExportAccess::of`]), then narrows each of its
//! pages.

use crate::access::check::search_filter;
use crate::access::reach::Access;
use crate::access::scope::Permission;
use crate::store::{AccessFilter, ExportScan, Store, StoreResult, StoredResource};

/// The caller's read access to one exported type.
pub struct ExportAccess {
    filter: Option<AccessFilter>,
}

impl ExportAccess {
    /// The access of `access` to `resource_type`, or `None` when it may not read that type
    /// (scopes are checked at kick-off; a type they no longer reach is left out).
    pub fn of(access: &Access, resource_type: &str) -> Option<Self> {
        search_filter(access, &[resource_type], Permission::Read)
            .ok()
            .map(|filter| Self { filter })
    }
}

/// The page of resources an export reads: `scan` (whatever its `access`) narrowed to what
/// `access` may read.
pub async fn resource_page(
    store: &Store,
    access: &ExportAccess,
    scan: ExportScan<'_>,
) -> StoreResult<Vec<StoredResource>> {
    store.export_page(&narrowed(access, scan)).await
}

/// The page of the Provenance of the exported resources of `targets` (types), with
/// `latest` only the most recent one per target: `scan` (whatever its `access`) narrowed to
/// what `access` may read of Provenance.
pub async fn provenance_page(
    store: &Store,
    access: &ExportAccess,
    scan: ExportScan<'_>,
    targets: &[String],
    latest: bool,
) -> StoreResult<Vec<StoredResource>> {
    store
        .export_provenance_page(&narrowed(access, scan), targets, latest)
        .await
}

fn narrowed<'a>(access: &'a ExportAccess, scan: ExportScan<'a>) -> ExportScan<'a> {
    ExportScan {
        access: access.filter.as_ref(),
        ..scan
    }
}
