//! The audit log is append-only: `AuditEvent` is the one resource type no client, Bundle
//! entry or import may create, update, patch or delete. Kiln's own recorder appends the
//! events (`crate::store::audit`); this is the refusal every write path gives.

use axum::http::StatusCode;

use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};

/// The type served from the audit log rather than the resource tables.
pub const AUDIT_EVENT: &str = "AuditEvent";

/// 405 with an OperationOutcome for any write to `AuditEvent`; `Ok` for other types.
pub fn refuse_write(resource_type: &str) -> FhirResult<()> {
    if resource_type == AUDIT_EVENT {
        return Err(append_only());
    }
    Ok(())
}

/// The refusal itself.
pub fn append_only() -> FhirError {
    FhirError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        IssueCode::NotSupported,
        "the audit log is append-only: AuditEvent resources are recorded by the server and \
         cannot be created, updated, patched or deleted",
    )
}
