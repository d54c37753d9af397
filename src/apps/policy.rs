//! Which submitted apps are approved without an admin (`--approval-policy`, `--sandbox`),
//! and the onboarding settings `kiln serve` records in the database so the command line
//! (`kiln app create`) applies the same rules as the running server.

use crate::access::scope::{Permission, Scope};
use crate::apps::request::{AppRequest, Audience};
use crate::config::{ApprovalPolicy, OnboardingConfig};
use crate::store::{Store, StoreResult};

const POLICY_SETTING: &str = "approval_policy";
const SANDBOX_SETTING: &str = "sandbox";

/// Whether `policy` approves a valid submission of `request` without review.
pub fn auto_approves(policy: ApprovalPolicy, request: &AppRequest) -> bool {
    match policy {
        ApprovalPolicy::Review => false,
        ApprovalPolicy::All => true,
        ApprovalPolicy::PatientRead => patient_read_only(request),
    }
}

/// A patient app asking only to read (`patient/….read`, `.r`, `.s`, `.rs`) plus identity,
/// patient launch and refresh scopes.
pub fn patient_read_only(request: &AppRequest) -> bool {
    request.audience == Some(Audience::Patient)
        && request.scopes.iter().all(|text| match Scope::parse(text) {
            Some(Scope::Resource { scope, .. }) => {
                scope.context == crate::access::scope::Context::Patient
                    && ![Permission::Create, Permission::Update, Permission::Delete]
                        .into_iter()
                        .any(|p| scope.permissions.contains(p))
            }
            Some(
                Scope::OpenId
                | Scope::FhirUser
                | Scope::LaunchPatient
                | Scope::OfflineAccess
                | Scope::OnlineAccess,
            ) => true,
            _ => false,
        })
}

/// Records the server's onboarding settings (at `kiln serve` start).
pub async fn record(store: &Store, config: &OnboardingConfig) -> StoreResult<()> {
    store
        .set_setting(POLICY_SETTING, config.policy().as_str())
        .await?;
    store
        .set_setting(
            SANDBOX_SETTING,
            if config.sandbox { "true" } else { "false" },
        )
        .await
}

/// The onboarding settings the last `kiln serve` on this database recorded (the defaults
/// when none has run). Dynamic registration is the server's alone: it reads as off.
pub async fn recorded(store: &Store) -> StoreResult<OnboardingConfig> {
    let policy = store.setting(POLICY_SETTING).await?;
    let sandbox = store.setting(SANDBOX_SETTING).await?;
    Ok(OnboardingConfig {
        approval_policy: policy.as_deref().and_then(ApprovalPolicy::parse),
        sandbox: sandbox.as_deref() == Some("true"),
        dynamic_registration: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient_app(scopes: &[&str]) -> AppRequest {
        AppRequest {
            audience: Some(Audience::Patient),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..AppRequest::default()
        }
    }

    #[test]
    fn patient_read_apps_are_recognised() {
        let read = patient_app(&[
            "patient/*.read",
            "patient/Observation.rs",
            "openid",
            "fhirUser",
            "launch/patient",
            "offline_access",
        ]);
        assert!(auto_approves(ApprovalPolicy::PatientRead, &read));
        assert!(!auto_approves(ApprovalPolicy::Review, &read));
        for scopes in [
            &["patient/Observation.cruds"][..],
            &["patient/*.write"],
            &["launch"],
            &["user/Observation.rs"],
        ] {
            assert!(
                !auto_approves(ApprovalPolicy::PatientRead, &patient_app(scopes)),
                "{scopes:?}"
            );
        }
        let practitioner = AppRequest {
            audience: Some(Audience::Practitioner),
            ..read
        };
        assert!(!auto_approves(ApprovalPolicy::PatientRead, &practitioner));
        assert!(auto_approves(ApprovalPolicy::All, &practitioner));
    }
}
