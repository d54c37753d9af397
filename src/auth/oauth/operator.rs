//! Tokens an operator mints for a registered client (`kiln token create`), for scripts, CI
//! and support: a grant recorded as the token endpoint records one (so revoking it, or
//! removing the client, stops the token at once), and the token response from the same
//! issuing code. The scope must lie within the client's registration, and each scope's
//! context must be given: a patient for `patient/`, a user for `user/` and the identity
//! scopes. Only an access token is minted (no refresh token).

use serde_json::Value;

use super::endpoint::OAuthError;
use super::issue::{Issue, Issuer, token_response};
use crate::access::scope::{Context, Scope, ScopeSet};
use crate::store::auth::{Client, Grant, User};

/// What the operator asked for; the user, patient and encounter are known to exist.
pub struct Mint<'a> {
    pub client: &'a Client,
    pub scope: &'a str,
    pub user: Option<&'a User>,
    pub patient: Option<String>,
    pub encounter: Option<String>,
    /// Seconds the access token lives.
    pub lifetime: i64,
}

/// Records a grant for `mint` and returns the token response.
pub async fn mint(issuer: &Issuer<'_>, mint: Mint<'_>, now: i64) -> Result<Value, OAuthError> {
    if mint.lifetime <= 0 {
        return Err(OAuthError::invalid_request(
            "the lifetime must be a positive number of seconds",
        ));
    }
    let scope = checked_scope(
        mint.scope,
        &ScopeSet::parse(&mint.client.scope),
        mint.user.is_some(),
        mint.patient.is_some(),
    )?;
    let grant = Grant {
        grant_id: uuid::Uuid::now_v7().to_string(),
        client_id: mint.client.client_id.clone(),
        username: mint.user.map(|user| user.username.clone()),
        scope: scope.clone(),
        patient: mint.patient,
        encounter: mint.encounter,
        fhir_user: mint.user.map(|user| user.fhir_user.clone()),
        need_patient_banner: false,
        created_at: now,
        revoked: false,
    };
    issuer.store.insert_grant(&grant).await?;
    token_response(
        issuer,
        Issue {
            grant: &grant,
            scope,
            refresh: None,
            lifetime: mint.lifetime,
            nonce: None,
        },
        now,
    )
    .await
}

/// The scope to grant: `asked` as written, when every scope in it is known, wholly within
/// `registered`, not a refresh scope, and has its context (user or patient).
fn checked_scope(
    asked: &str,
    registered: &ScopeSet,
    has_user: bool,
    has_patient: bool,
) -> Result<String, OAuthError> {
    let mut granted = Vec::new();
    for text in asked.split_ascii_whitespace() {
        let scope = Scope::parse(text)
            .ok_or_else(|| OAuthError::invalid_scope(format!("{text} is not a SMART scope")))?;
        let alone = ScopeSet::from_iter([scope.clone()]);
        if alone.within(registered) != alone {
            return Err(OAuthError::invalid_scope(format!(
                "{text} is not within the client's registered scope ({registered})"
            )));
        }
        let context = scope.resource().map(|resource| resource.context);
        let needs_user = context == Some(Context::User)
            || matches!(scope, Scope::OpenId | Scope::FhirUser | Scope::Profile);
        if matches!(scope, Scope::OfflineAccess | Scope::OnlineAccess) {
            return Err(OAuthError::invalid_scope(format!(
                "{text}: only an access token is minted here, never a refresh token"
            )));
        }
        if needs_user && !has_user {
            return Err(OAuthError::invalid_scope(format!(
                "{text} needs a user (--user)"
            )));
        }
        if context == Some(Context::Patient) && !has_patient {
            return Err(OAuthError::invalid_scope(format!(
                "{text} needs a patient in context (--patient)"
            )));
        }
        granted.push(scope);
    }
    if granted.is_empty() {
        return Err(OAuthError::invalid_scope("the scope is empty"));
    }
    Ok(ScopeSet::from_iter(granted).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(asked: &str, user: bool, patient: bool) -> Result<String, String> {
        let registered =
            ScopeSet::parse("openid fhirUser patient/*.rs user/Observation.rs system/*.read");
        checked_scope(asked, &registered, user, patient)
            .map_err(|error| format!("{}: {}", error.error, error.description))
    }

    #[test]
    fn the_scope_lies_within_the_registration_with_its_context() {
        assert_eq!(
            check("system/Patient.read system/Observation.read", false, false).unwrap(),
            "system/Patient.read system/Observation.read"
        );
        assert_eq!(
            check("patient/Observation.rs openid fhirUser", true, true).unwrap(),
            "patient/Observation.rs openid fhirUser"
        );
        assert!(
            check("patient/*.cruds", false, true)
                .unwrap_err()
                .contains("not within")
        );
        assert!(
            check("user/Patient.rs", true, false)
                .unwrap_err()
                .contains("not within")
        );
        assert!(
            check("system/*.c", false, false)
                .unwrap_err()
                .contains("not within")
        );
        assert!(
            check("patient/*.rs", true, false)
                .unwrap_err()
                .contains("--patient")
        );
        assert!(
            check("user/Observation.rs", false, false)
                .unwrap_err()
                .contains("--user")
        );
        assert!(
            check("openid", false, false)
                .unwrap_err()
                .contains("--user")
        );
        assert!(
            check("nonsense", true, true)
                .unwrap_err()
                .contains("not a SMART scope")
        );
        assert!(check("offline_access", true, true).is_err());
        assert!(
            check("  ", true, true)
                .unwrap_err()
                .starts_with("invalid_scope")
        );
    }
}
