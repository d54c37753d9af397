//! The audit log (IHE Basic Audit Log Patterns): what happened, as a typed [`event::Event`]
//! stored in a compact form (`store::audit::stored`) and built into a BALP AuditEvent when it
//! is read ([`balp`]), and the [`recorder::Recorder`] that appends the events of reads,
//! searches, refusals and security events durably in batches. Writes append their events in
//! their own transaction (`engine::transaction`). Sits beside the engine: imports `fhir`,
//! `store` and `access` only.

pub mod balp;
pub mod event;
pub mod recorder;
pub mod spool;
pub mod spooled;
pub mod switch;

pub use event::{
    Action, Agent, Detail, Entity, Event, Kind, Origin, Outcome, RecordedWithWrite, SearchQuery,
    Security, Subject,
};
pub use recorder::{AuditUnavailable, Recorder};
