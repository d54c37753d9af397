//! The `client_credentials` grant of SMART Backend Services: a client proven by
//! `private_key_jwt` gets `system/` scopes within its registration, no user, no refresh.

use axum::response::Response;

use super::client_auth::{Authenticated, Method};
use super::endpoint::{OAuthError, Params};
use super::issue::{Issue, issue};
use crate::access::scope::{Context, Scope, ScopeSet};
use crate::state::AppState;
use crate::store::auth::Grant;

pub async fn exchange(
    state: &AppState,
    caller: &Authenticated,
    params: &Params,
    now: i64,
) -> Result<Response, OAuthError> {
    if caller.method != Method::PrivateKeyJwt {
        return Err(OAuthError::unauthorized_client(
            "backend services authenticate with private_key_jwt",
        ));
    }
    let scope = granted(params.get("scope"), &ScopeSet::parse(&caller.client.scope))?;
    let grant = Grant {
        grant_id: uuid::Uuid::now_v7().to_string(),
        client_id: caller.client.client_id.clone(),
        username: None,
        scope: scope.clone(),
        patient: None,
        encounter: None,
        fhir_user: None,
        need_patient_banner: false,
        created_at: now,
        revoked: false,
    };
    state.store.insert_grant(&grant).await?;
    issue(
        state,
        Issue {
            grant: &grant,
            scope,
            refresh: None,
            lifetime: state.config.auth.backend_lifetime(),
            nonce: None,
        },
        now,
    )
    .await
}

/// The scope granted for `asked`: only `system/` scopes, each at least partly registered.
fn granted(asked: Option<&str>, registered: &ScopeSet) -> Result<String, OAuthError> {
    let asked = asked.ok_or_else(|| OAuthError::invalid_scope("scope is required"))?;
    let mut granted = Vec::new();
    for text in asked.split_ascii_whitespace() {
        let system = Scope::parse(text)
            .filter(|scope| {
                scope
                    .resource()
                    .is_some_and(|r| r.context == Context::System)
            })
            .ok_or_else(|| {
                OAuthError::invalid_scope(format!("{text} is not a system/ resource scope"))
            })?;
        let within = ScopeSet::from_iter([system]).within(registered);
        if within.is_empty() {
            return Err(OAuthError::invalid_scope(format!(
                "{text} is not registered for this client"
            )));
        }
        granted.extend(within.iter().cloned());
    }
    if granted.is_empty() {
        return Err(OAuthError::invalid_scope("scope is required"));
    }
    Ok(ScopeSet::from_iter(granted).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(asked: Option<&str>) -> Result<String, String> {
        granted(
            asked,
            &ScopeSet::parse("system/*.rs system/Observation.cruds"),
        )
        .map_err(|error| format!("{}: {}", error.error, error.description))
    }

    #[test]
    fn only_registered_system_scopes_are_granted() {
        assert_eq!(
            grant(Some("system/Patient.rs system/Observation.c")).unwrap(),
            "system/Patient.rs system/Observation.c"
        );
        assert_eq!(
            grant(Some("system/Patient.read")).unwrap(),
            "system/Patient.read"
        );
        // Narrowed to the registered permissions.
        assert_eq!(
            grant(Some("system/Patient.cruds")).unwrap(),
            "system/Patient.rs"
        );
        for refused in [
            "patient/Patient.rs",
            "user/*.rs",
            "openid",
            "launch",
            "system/Nope.rs",
            "system/Patient.rs offline_access",
        ] {
            assert!(
                grant(Some(refused))
                    .unwrap_err()
                    .starts_with("invalid_scope"),
                "{refused}"
            );
        }
        assert!(
            grant(Some("system/Patient.d"))
                .unwrap_err()
                .contains("not registered")
        );
        assert!(grant(None).unwrap_err().starts_with("invalid_scope"));
        assert!(grant(Some("   ")).unwrap_err().starts_with("invalid_scope"));
    }
}
