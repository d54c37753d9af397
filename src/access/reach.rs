//! What the caller of a FHIR request may reach: from its token's scopes and launch context
//! (or everything, under `--anonymous-access`). Handlers ask for the [`Reach`] of one
//! interaction on one type; a reach is either everything, or a list of limits (a Patient's
//! compartment, a granular scope's search filter) of which one must hold.

use std::sync::Arc;

use super::scope::{Context, Permission, ScopeSet};
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::search::belongs_to_patients;
use crate::search::query::{Criterion, parse_search};

/// The caller of one request.
#[derive(Debug, Clone)]
pub enum Access {
    /// Anonymous access is switched on: every interaction on every resource.
    Full,
    /// A SMART access token.
    Token(Arc<Granted>),
    /// No credentials; only public endpoints (metadata, discovery) answer.
    Nobody,
}

/// What a live access token carries.
#[derive(Debug)]
pub struct Granted {
    pub client_id: String,
    pub scopes: ScopeSet,
    /// The launch patient (context of `patient/` scopes).
    pub patient: Option<String>,
    /// The signed-in user's FHIR resource (`Patient/ID`, `Practitioner/ID`), for `user/` scopes.
    pub fhir_user: Option<String>,
    /// The signed-in user's username; `None` for backend services.
    pub username: Option<String>,
    /// The token's id for the audit log: the SHA-256 hex of the access token.
    pub token_id: Option<String>,
}

/// One way a resource can be within reach: this Patient's data (when set: in their
/// compartment, or for a type outside it, referencing them; see
/// [`belongs_to_patients`]) and matching these search criteria (when set).
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub patient: Option<String>,
    pub criteria: Vec<Criterion>,
}

/// The resources of one type an interaction may touch.
#[derive(Debug, Clone, PartialEq)]
pub enum Reach {
    All,
    /// At least one limit holds (never empty).
    Some(Vec<Limit>),
}

impl Reach {
    /// Whether a resource that is these Patients' data (`search::patient_owners`) passes
    /// without asking the database (only limits without search criteria can say yes here).
    pub fn admits_owners(&self, owners: &[String]) -> bool {
        match self {
            Reach::All => true,
            Reach::Some(limits) => limits.iter().any(|limit| {
                limit.criteria.is_empty()
                    && limit.patient.as_ref().is_none_or(|p| owners.contains(p))
            }),
        }
    }

    /// Whether any limit needs a search to decide.
    pub fn has_criteria(&self) -> bool {
        matches!(self, Reach::Some(limits) if limits.iter().any(|l| !l.criteria.is_empty()))
    }
}

impl Access {
    pub fn is_full(&self) -> bool {
        matches!(self, Access::Full)
    }

    /// What `permission` on `resource_type` reaches; 403 when nothing (401 without a token).
    pub fn reach(&self, resource_type: &str, permission: Permission) -> FhirResult<Reach> {
        let granted = match self {
            Access::Full => return Ok(Reach::All),
            Access::Nobody => return Err(unauthorized()),
            Access::Token(granted) => granted,
        };
        let patient_data = belongs_to_patients(resource_type);
        let mut limits: Vec<Limit> = Vec::new();
        for scope in granted.scopes.resource_scopes() {
            if !scope.allows(scope.context, resource_type, permission) {
                continue;
            }
            let Some(patient) = granted.context_patient(scope.context) else {
                continue;
            };
            let criteria = match &scope.query {
                None => Vec::new(),
                Some(query) => match scope_criteria(resource_type, query) {
                    Some(criteria) => criteria,
                    // A filter Kiln cannot apply grants nothing rather than everything.
                    None => continue,
                },
            };
            let limit = Limit {
                patient: patient.filter(|_| patient_data),
                criteria,
            };
            if limit.patient.is_none() && limit.criteria.is_empty() {
                return Ok(Reach::All);
            }
            if !limits.contains(&limit) {
                limits.push(limit);
            }
        }
        if limits.is_empty() {
            return Err(forbidden(resource_type, permission));
        }
        Ok(Reach::Some(limits))
    }
}

impl Granted {
    /// The Patient a scope of `context` is confined to: `Some(None)` for no confinement,
    /// `None` when the scope cannot apply (a `patient/` scope without a launch patient, a
    /// `user/` scope without a user).
    fn context_patient(&self, context: Context) -> Option<Option<String>> {
        match context {
            Context::System => Some(None),
            Context::Patient => self.patient.clone().map(Some),
            Context::User => {
                let (kind, id) = self.fhir_user.as_deref()?.split_once('/')?;
                match kind {
                    // A patient user sees their own record only.
                    "Patient" => Some(Some(id.to_owned())),
                    _ => Some(None),
                }
            }
        }
    }
}

/// The criteria of a granular scope's query, or `None` if any part is not understood.
fn scope_criteria(resource_type: &str, query: &str) -> Option<Vec<Criterion>> {
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let parsed = parse_search(Some(resource_type), &params).ok()?;
    parsed.unknown.is_empty().then_some(parsed.criteria)
}

/// 401: no usable token (the body says why; `WWW-Authenticate` is added by the middleware).
pub fn unauthorized() -> FhirError {
    FhirError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        crate::fhir::outcome::IssueCode::Login,
        "this request needs a SMART access token (Authorization: Bearer …)",
    )
}

fn forbidden(resource_type: &str, permission: Permission) -> FhirError {
    let action = match permission {
        Permission::Create => "create",
        Permission::Read => "read",
        Permission::Update => "update",
        Permission::Delete => "delete",
        Permission::Search => "search",
    };
    FhirError::new(
        axum::http::StatusCode::FORBIDDEN,
        crate::fhir::outcome::IssueCode::Forbidden,
        format!("the access token's scopes do not allow {action} on {resource_type}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(scopes: &str, patient: Option<&str>, fhir_user: Option<&str>) -> Access {
        Access::Token(Arc::new(Granted {
            client_id: "app".into(),
            scopes: ScopeSet::parse(scopes),
            patient: patient.map(str::to_owned),
            fhir_user: fhir_user.map(str::to_owned),
            username: None,
            token_id: None,
        }))
    }

    fn patients(reach: &Reach) -> Vec<Option<&str>> {
        match reach {
            Reach::All => vec![],
            Reach::Some(limits) => limits.iter().map(|l| l.patient.as_deref()).collect(),
        }
    }

    #[test]
    fn patient_scopes_confine_compartment_types_only() {
        let access = token("patient/*.rs", Some("p1"), Some("Patient/p1"));
        let observation = access.reach("Observation", Permission::Read).unwrap();
        assert_eq!(patients(&observation), vec![Some("p1")]);
        assert!(observation.admits_owners(&["p1".into()]));
        assert!(!observation.admits_owners(&["p2".into()]));
        assert_eq!(
            access.reach("Practitioner", Permission::Search).unwrap(),
            Reach::All
        );
        // Outside the compartment definition, but a Patient's data when it references them.
        let device = access.reach("Device", Permission::Search).unwrap();
        assert_eq!(patients(&device), vec![Some("p1")]);
        let write = access.reach("Observation", Permission::Create).unwrap_err();
        assert_eq!(write.status.as_u16(), 403);
        // Without a launch patient, patient scopes reach nothing.
        let no_patient = token("patient/*.rs", None, None);
        assert_eq!(
            no_patient
                .reach("Observation", Permission::Read)
                .unwrap_err()
                .status
                .as_u16(),
            403
        );
    }

    #[test]
    fn read_and_search_are_separate_in_v2() {
        let access = token("patient/Observation.r", Some("p1"), None);
        assert!(access.reach("Observation", Permission::Read).is_ok());
        assert!(access.reach("Observation", Permission::Search).is_err());
        assert!(access.reach("Condition", Permission::Read).is_err());
    }

    #[test]
    fn user_scopes_follow_the_user() {
        let practitioner = token("user/*.rs", None, Some("Practitioner/d1"));
        assert_eq!(
            practitioner.reach("Observation", Permission::Read).unwrap(),
            Reach::All
        );
        let patient_user = token("user/*.rs", None, Some("Patient/p9"));
        assert_eq!(
            patients(&patient_user.reach("Observation", Permission::Read).unwrap()),
            vec![Some("p9")]
        );
        let nobody = token("user/*.rs", None, None);
        assert!(nobody.reach("Observation", Permission::Read).is_err());
        let system = token("system/*.read", None, None);
        assert_eq!(
            system.reach("Encounter", Permission::Search).unwrap(),
            Reach::All
        );
    }

    #[test]
    fn granular_scopes_add_filters_and_wider_scopes_win() {
        let lab = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
        let access = token(lab, Some("p1"), None);
        let reach = access.reach("Observation", Permission::Search).unwrap();
        assert!(reach.has_criteria());
        assert!(
            !reach.admits_owners(&["p1".into()]),
            "the filter must be checked"
        );
        let wider = token(&format!("{lab} patient/Observation.rs"), Some("p1"), None);
        let reach = wider.reach("Observation", Permission::Search).unwrap();
        assert!(reach.admits_owners(&["p1".into()]));
        // A filter on an unknown parameter grants nothing.
        let bogus = token("patient/Observation.rs?nonsense=1", Some("p1"), None);
        assert!(bogus.reach("Observation", Permission::Search).is_err());
    }

    #[test]
    fn anonymous_and_missing_tokens() {
        assert_eq!(
            Access::Full.reach("Patient", Permission::Delete).unwrap(),
            Reach::All
        );
        assert_eq!(
            Access::Nobody
                .reach("Patient", Permission::Read)
                .unwrap_err()
                .status
                .as_u16(),
            401
        );
    }
}
