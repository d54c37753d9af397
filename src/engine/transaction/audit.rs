//! The audit events of a transaction's or batch's entries: its writes (appended in the
//! write's own database transaction, so a version never exists without its event), its
//! GET entries, and the entries that failed.

use super::entry::{Entry, Method, Target};
use super::response::EntryResult;
use crate::access::reach::Access;
use crate::audit::{Agent, Entity, Event, Origin, Outcome};
use crate::fhir::outcome::FhirError;

/// The FHIR interaction an entry is (`restful-interaction` code).
pub(super) fn interaction(entry: &Entry) -> &'static str {
    match (entry.method, &entry.target) {
        (Method::Get, Target::Version(..)) => "vread",
        (Method::Get, Target::Instance(..)) => "read",
        (Method::Get, Target::Search(Some(_), _)) => "search-type",
        (Method::Get, _) => "search-system",
        (Method::Post, _) => "create",
        (Method::Put, _) => "update",
        (Method::Patch, _) => "patch",
        (Method::Delete, _) => "delete",
    }
}

/// The event of one entry and its result.
pub(super) fn entry_event(
    entry: &Entry,
    result: &EntryResult,
    access: &Access,
    origin: &Origin,
) -> Event {
    let mut event = Event::rest(interaction(entry), Agent::of_access(access), origin.clone());
    match result {
        EntryResult::Written(outcome) => {
            if !outcome.id.is_empty() {
                event.entity = Some(Entity {
                    resource_type: outcome.resource_type.clone(),
                    id: outcome.id.clone(),
                    version: (!outcome.unchanged).then_some(outcome.version_id),
                });
            }
            if outcome.unchanged {
                event.description = Some("nothing to delete".into());
            }
            event.patient = outcome.patient.clone();
        }
        EntryResult::Existing { resource_type, id } => {
            event.entity = Some(Entity {
                resource_type: resource_type.clone(),
                id: id.clone(),
                version: None,
            });
            event.description = Some(
                "the conditional create matched an existing resource; nothing was written".into(),
            );
        }
        EntryResult::Read(_, version, _) => {
            if let Target::Instance(resource_type, id) | Target::Version(resource_type, id, _) =
                &entry.target
            {
                event.entity = Some(Entity {
                    resource_type: resource_type.clone(),
                    id: id.clone(),
                    version: Some(*version),
                });
                if resource_type == "Patient" {
                    event.patient = Some(id.clone());
                }
            }
        }
        EntryResult::Found(_) => {
            if let Target::Search(_, query) = &entry.target {
                event.query = Some(query.clone());
            }
        }
        EntryResult::Failed(error) => return failed(event, error),
    }
    event
}

/// `event` as a failure with `error`'s status and message.
pub(super) fn failed(mut event: Event, error: &FhirError) -> Event {
    event.outcome = Outcome::of_status(error.status.as_u16());
    event.description = Some(error.to_string());
    event
}
