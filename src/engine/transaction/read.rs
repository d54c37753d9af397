//! The GET entries of a transaction or batch, run after its writes.

use axum::http::StatusCode;

use super::entry::{Entry, Method, Target};
use super::response::EntryResult;
use crate::access::reach::Access;
use crate::engine::read::{ReadTarget, read};
use crate::engine::search::{PageLimits, SearchRequest, searchset};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::store::Store;

/// Page sizes of searches inside a Bundle.
const BUNDLE_SEARCH_LIMITS: PageLimits = PageLimits {
    default: 50,
    max: 1000,
};

/// GET entries run after the writes, as the transaction rules order them.
pub(super) async fn read_entries(
    store: &Store,
    entries: &[Entry],
    results: &mut [EntryResult],
    base: &str,
    access: &Access,
) -> FhirResult<()> {
    for (slot, entry) in entries.iter().enumerate() {
        if entry.method != Method::Get {
            continue;
        }
        let found = match &entry.target {
            Target::Search(resource_type, query) => {
                let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
                let request = SearchRequest {
                    resource_type: resource_type.as_deref(),
                    params: &params,
                    patient_compartment: None,
                    strict: false,
                    limits: BUNDLE_SEARCH_LIMITS,
                    base,
                    link: None,
                    access,
                };
                results[slot] = match searchset(store, &request).await {
                    Ok(bundle) => EntryResult::Found(bundle),
                    Err(error) => EntryResult::Failed(error),
                };
                continue;
            }
            Target::Instance(resource_type, id) | Target::Version(resource_type, id, _) => {
                let target = ReadTarget {
                    resource_type,
                    id,
                    version: match &entry.target {
                        Target::Version(_, _, version) => Some(*version),
                        _ => None,
                    },
                };
                read(store, base, access, &target).await?
            }
            _ => {
                results[slot] = EntryResult::Failed(FhirError::not_supported(
                    StatusCode::BAD_REQUEST,
                    "search in a Bundle entry is not supported yet",
                ));
                continue;
            }
        };
        results[slot] = match found.live() {
            Ok(stored) => EntryResult::Read(stored.body, stored.version_id, stored.last_updated),
            Err(error) => EntryResult::Failed(error),
        };
    }
    Ok(())
}
