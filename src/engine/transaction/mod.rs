//! `transaction` and `batch` Bundles posted to the base URL.
//!
//! A transaction is planned and written in one database transaction: ids are assigned first,
//! `urn:uuid:` and conditional references are rewritten, then every write is applied
//! together, so it commits whole or not at all. A batch runs each entry as a transaction of
//! its own and reports each entry's outcome.
//!
//! Split by what it does: `entry` parses Bundle entries and REST writes into entries, `plan`
//! decides the identity every entry writes to and rewrites references, `apply` checks and
//! writes, `read` runs the GET entries, `response` builds the response entries, `audit`
//! makes the entries' audit events.
//!
//! With an audit [`Origin`], every write's event is appended in the write's own database
//! transaction, just before it commits; the events of GET entries and of failed batch
//! entries are appended after them.

mod apply;
mod audit;
mod entry;
mod plan;
mod read;
mod response;

use serde_json::{Map, Value};

use self::entry::{Entry, Method, bundle_entries, check_no_duplicate_targets, parse_entry};
pub use self::entry::{Interaction, WriteTarget, parse_etag};
use self::plan::plan_and_apply;
use self::read::read_entries;
use self::response::{EntryResult, response_bundle};
use super::write::{WriteOutcome, retry_races};
use crate::access::check as access;
use crate::access::reach::Access;
use crate::audit::{Agent, Event, Origin};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::store::Store;

/// What the client asked to get back (`Prefer: return=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnPreference {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// Processes a Bundle of type `transaction` or `batch` and returns the response Bundle.
/// With `audit` (the request's origin), every entry's event is recorded.
pub async fn process_bundle(
    store: &Store,
    bundle: Map<String, Value>,
    base: &str,
    preference: ReturnPreference,
    access: &Access,
    audit: Option<&Origin>,
) -> FhirResult<Value> {
    let (is_transaction, raw_entries) = bundle_entries(&bundle)?;
    let (response_type, results) = if is_transaction {
        let entries = raw_entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| parse_entry(index, entry, base))
            .collect::<FhirResult<Vec<_>>>()?;
        check_no_duplicate_targets(&entries)?;
        (
            "transaction-response",
            run_transaction(store, &entries, base, access, audit).await?,
        )
    } else {
        (
            "batch-response",
            run_batch(store, raw_entries, base, access, audit).await?,
        )
    };
    Ok(response_bundle(response_type, results, base, preference))
}

/// Runs each entry of a batch as a transaction of its own; a failure is that entry's outcome
/// (and, with `audit`, its failed event).
async fn run_batch(
    store: &Store,
    raw_entries: Vec<Value>,
    base: &str,
    access: &Access,
    audit: Option<&Origin>,
) -> FhirResult<Vec<EntryResult>> {
    let mut results = Vec::with_capacity(raw_entries.len());
    let mut failures = Vec::new();
    for (index, entry) in raw_entries.into_iter().enumerate() {
        let result = match parse_entry(index, entry, base) {
            Ok(entry) => {
                match run_transaction(store, std::slice::from_ref(&entry), base, access, audit)
                    .await
                {
                    Ok(mut results) => results.remove(0),
                    Err(error) => {
                        if let Some(origin) = audit {
                            let result = EntryResult::Failed(error.clone());
                            failures.push(audit::entry_event(&entry, &result, access, origin));
                        }
                        EntryResult::Failed(error)
                    }
                }
            }
            Err(error) => {
                if let Some(origin) = audit {
                    let event = Event::rest("batch", Agent::of_access(access), origin.clone());
                    failures.push(audit::failed(event, &error));
                }
                EntryResult::Failed(error)
            }
        };
        results.push(result);
    }
    append_events(store, failures, base).await?;
    Ok(results)
}

/// Appends `events` in a transaction of their own.
async fn append_events(store: &Store, events: Vec<Event>, base: &str) -> FhirResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = events.into_iter().map(|event| event.row(base)).collect();
    store.append_audit(&rows).await.map_err(|error| {
        tracing::error!(%error, "the audit log could not be written");
        FhirError::from(crate::audit::AuditUnavailable)
    })
}

/// Runs entries as one all-or-nothing unit, retrying when a concurrent writer got in first.
async fn run_transaction(
    store: &Store,
    entries: &[Entry],
    base: &str,
    access: &Access,
    audit: Option<&Origin>,
) -> FhirResult<Vec<EntryResult>> {
    // Scopes first: a write the token may not do on the type is refused before any target
    // is looked up, so the answer tells nothing about what exists.
    for entry in entries {
        if let Some((resource_type, permission, conditional)) = entry.write_kind() {
            crate::engine::append_only::refuse_write(resource_type)
                .map_err(|error| entry.locate(error, ""))?;
            access::may(access, resource_type, permission, conditional)
                .map_err(|error| entry.locate(error, ""))?;
        }
    }
    let mut results = retry_races(
        store,
        "the transaction collided with concurrent writers too often; try again",
        |mut tx| async move {
            let Some(results) =
                plan_and_apply(store, &mut tx, entries.to_vec(), base, access).await?
            else {
                return Ok(None);
            };
            if let Some(origin) = audit {
                // Last, so the chain head stays locked only for the commit.
                let rows: Vec<_> = entries
                    .iter()
                    .zip(&results)
                    .filter(|(entry, _)| entry.method != Method::Get)
                    .map(|(entry, result)| {
                        audit::entry_event(entry, result, access, origin).row(base)
                    })
                    .collect();
                tx.append_audit(&rows).await?;
            }
            Ok(Some((tx, results)))
        },
    )
    .await?;
    read_entries(store, entries, &mut results, base, access).await?;
    if let Some(origin) = audit {
        let reads: Vec<Event> = entries
            .iter()
            .zip(&results)
            .filter(|(entry, _)| entry.method == Method::Get)
            .map(|(entry, result)| audit::entry_event(entry, result, access, origin))
            .collect();
        append_events(store, reads, base).await?;
    }
    Ok(results)
}

/// What a single REST write did.
pub enum InteractionResult {
    Written(WriteOutcome),
    /// A conditional create found its match; nothing was written.
    Existing {
        resource_type: String,
        id: String,
    },
}

/// Runs one REST write; with `audit`, its event is recorded in its transaction.
pub async fn execute(
    store: &Store,
    base: &str,
    interaction: Interaction,
    access: &Access,
    audit: Option<&Origin>,
) -> FhirResult<InteractionResult> {
    let entry = interaction.into_entry();
    let mut results =
        run_transaction(store, std::slice::from_ref(&entry), base, access, audit).await?;
    match results.pop() {
        Some(EntryResult::Written(outcome)) => Ok(InteractionResult::Written(outcome)),
        Some(EntryResult::Existing { resource_type, id }) => {
            Ok(InteractionResult::Existing { resource_type, id })
        }
        Some(EntryResult::Failed(error)) => Err(error),
        _ => Err(FhirError::internal(
            "writing",
            "the write produced no outcome",
        )),
    }
}
