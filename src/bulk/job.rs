//! What a job carries from its kick-off to the worker: the parameters, the resolved types
//! and population, and the caller's grant (the worker applies the same scopes).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::params::ExportParams;
use crate::access::reach::{Access, Granted};
use crate::access::scope::ScopeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub params: ExportParams,
    /// The types to export, in output order.
    pub types: Vec<String>,
    /// The token's `system/` and `user/` scopes; `None` under anonymous access.
    pub scope: Option<String>,
    pub fhir_user: Option<String>,
    /// Whose compartments to export; `None`: every resource (system) or every patient's.
    pub patients: Option<Vec<String>>,
}

impl JobSpec {
    /// The caller's access, as the worker applies it.
    pub fn access(&self, client_id: &str) -> Access {
        grant_access(self.scope.as_deref(), self.fhir_user.as_deref(), client_id)
    }
}

/// An [`Access`] of these scopes (`None`: full access).
pub fn grant_access(scope: Option<&str>, fhir_user: Option<&str>, client_id: &str) -> Access {
    match scope {
        None => Access::Full,
        Some(scope) => Access::Token(Arc::new(Granted {
            client_id: client_id.to_owned(),
            scopes: ScopeSet::parse(scope),
            patient: None,
            fhir_user: fhir_user.map(str::to_owned),
            // The job's owner is checked at its status URL; its reads need only the scopes.
            username: None,
            token_id: None,
        })),
    }
}
