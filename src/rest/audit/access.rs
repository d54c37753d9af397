//! Who may read the audit log, decided before anything about the events is looked up:
//!
//! - a backend service whose token has a `system/AuditEvent` scope (`.rs`, `.r`, `.s`,
//!   `.read`) for the interaction: every event;
//! - a signed-in user with a `user/AuditEvent` scope who is an admin (`kiln user add --role
//!   admin`, not disabled, checked on every request so a revoked role takes effect at once):
//!   every event;
//! - a patient (a `patient/AuditEvent` scope with a launch patient, or a patient user with a
//!   `user/AuditEvent` scope): only with `--audit-patient-access`, and then only the events
//!   whose patient is theirs;
//! - anyone else: 403 (401 without a token). Wildcard scopes (`system/*.rs`) do not reach the
//!   audit log, and neither does `--anonymous-access`: the scope must name `AuditEvent`.

use axum::http::StatusCode;

use crate::access::reach::{Access, Granted, unauthorized};
use crate::access::scope::{Context, Permission};
use crate::engine::append_only::AUDIT_EVENT;
use crate::fhir::outcome::{FhirError, FhirResult, IssueCode};
use crate::state::AppState;

/// The events a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sees {
    All,
    /// Only those about this Patient (id).
    Patient(String),
}

/// What the caller of `permission` on the audit log sees, or why not.
pub async fn sees(state: &AppState, access: &Access, permission: Permission) -> FhirResult<Sees> {
    let granted = match access {
        Access::Nobody => return Err(unauthorized()),
        Access::Full => {
            return Err(forbidden(
                "the audit log is not open to anonymous access; use an admin user's or a \
                 backend service's token with an AuditEvent scope",
            ));
        }
        Access::Token(granted) => granted,
    };
    if names_audit(granted, Context::System, permission) {
        return Ok(Sees::All);
    }
    let mut patient: Option<String> = None;
    if names_audit(granted, Context::User, permission) {
        if let Some(username) = &granted.username
            && let Some(user) = state.store.user(username).await?
            && user.admin
            && !user.disabled
        {
            return Ok(Sees::All);
        }
        patient = granted
            .fhir_user
            .as_deref()
            .and_then(|reference| reference.strip_prefix("Patient/"))
            .map(str::to_owned);
    }
    if patient.is_none() && names_audit(granted, Context::Patient, permission) {
        patient = granted.patient.clone();
    }
    match patient {
        Some(patient) if state.config.auth.audit_patient_access => Ok(Sees::Patient(patient)),
        Some(_) => Err(forbidden(
            "this server does not open the audit log to patients",
        )),
        None => Err(forbidden(
            "the audit log is open only to admin users and backend services with an \
             AuditEvent scope",
        )),
    }
}

/// Whether a scope of `context` names `AuditEvent` (not `*`) with `permission`.
fn names_audit(granted: &Granted, context: Context, permission: Permission) -> bool {
    granted.scopes.resource_scopes().any(|scope| {
        scope.query.is_none()
            && scope.resource_type.as_deref() == Some(AUDIT_EVENT)
            && scope.allows(context, AUDIT_EVENT, permission)
    })
}

fn forbidden(message: &str) -> FhirError {
    FhirError::new(StatusCode::FORBIDDEN, IssueCode::Forbidden, message)
}
