//! Issues tokens under a grant and writes the token response (SMART App Launch 2.2):
//! opaque access and refresh tokens stored as digests, the `id_token`, and the launch context.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::endpoint::{OAuthError, no_store};
use crate::access::scope::{Scope, ScopeSet};
use crate::audit::Agent;
use crate::auth::Endpoints;
use crate::crypto::{digest_hex, random_token};
use crate::state::AppState;
use crate::state::keys::KeyRing;
use crate::store::Store;
use crate::store::auth::{Grant, TokenKind};

/// What issuing needs: the store the tokens are recorded in, the keys that sign the
/// `id_token`, and the server's public base URL. The token endpoint issues with the
/// application state's; `kiln token create` (`operator`) with its own.
pub struct Issuer<'a> {
    pub store: &'a Store,
    pub keys: &'a KeyRing,
    pub base_url: &'a str,
}

impl<'a> Issuer<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Issuer {
            store: &state.store,
            keys: &state.keys,
            base_url: &state.config.base_url,
        }
    }
}

/// What to issue under `grant`.
pub struct Issue<'a> {
    pub grant: &'a Grant,
    /// The access token's scope.
    pub scope: String,
    /// The refresh token, when one is issued.
    pub refresh: Option<Refresh>,
    /// Seconds the access token (and the `id_token`) lives.
    pub lifetime: i64,
    /// The authorization request's `nonce`, echoed in the `id_token`.
    pub nonce: Option<&'a str>,
}

/// A refresh token to issue alongside the access token.
pub struct Refresh {
    pub scope: String,
    /// Seconds it lives.
    pub lifetime: i64,
}

/// Whether a grant may hold refresh tokens: a user's grant with `offline_access` or
/// `online_access` (never a backend service's).
pub fn allows_refresh(grant: &Grant, scope: &ScopeSet) -> bool {
    grant.username.is_some()
        && (scope.contains(&Scope::OfflineAccess) || scope.contains(&Scope::OnlineAccess))
}

/// Whom a token was issued to, left on the token endpoint's response for its audit event.
#[derive(Debug, Clone)]
pub struct Issued {
    pub agent: Agent,
    pub patient: Option<String>,
}

/// The token endpoint's answer: the token response, not to be cached.
pub async fn issue(state: &AppState, issue: Issue<'_>, now: i64) -> Result<Response, OAuthError> {
    let grant = issue.grant;
    let body = token_response(&Issuer::of(state), issue, now).await?;
    let issued = Issued {
        agent: Agent {
            fhir_user: grant.fhir_user.clone(),
            username: grant.username.clone(),
            client_id: Some(grant.client_id.clone()),
            token_id: body["access_token"].as_str().map(digest_hex),
        },
        patient: grant.patient.clone(),
    };
    let mut response = no_store(StatusCode::OK, body);
    response.extensions_mut().insert(issued);
    Ok(response)
}

/// Records the tokens of `issue` (as digests) and returns the token response: access token,
/// refresh token, `id_token` and launch context.
pub async fn token_response(
    issuer: &Issuer<'_>,
    issue: Issue<'_>,
    now: i64,
) -> Result<Value, OAuthError> {
    let grant = issue.grant;
    let access_token = random_token();
    issuer
        .store
        .insert_token(
            &digest_hex(&access_token),
            TokenKind::Access,
            &grant.grant_id,
            &issue.scope,
            now,
            now + issue.lifetime,
        )
        .await?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": issue.lifetime,
        "scope": issue.scope,
    });
    if let Some(refresh) = &issue.refresh {
        let refresh_token = random_token();
        issuer
            .store
            .insert_token(
                &digest_hex(&refresh_token),
                TokenKind::Refresh,
                &grant.grant_id,
                &refresh.scope,
                now,
                now + refresh.lifetime,
            )
            .await?;
        body["refresh_token"] = json!(refresh_token);
    }
    let endpoints = Endpoints::new(issuer.base_url);
    let fhir_base = endpoints.fhir_base.clone();
    let scope = ScopeSet::parse(&issue.scope);
    let claims = id_token_claims(grant, &scope, &fhir_base, issue.nonce, now, issue.lifetime);
    if let Some(claims) = claims {
        let signed = issuer
            .keys
            .current()
            .await?
            .sign(&claims)
            .map_err(|error| {
                OAuthError::from(crate::state::keys::KeyError::Crypto(error.to_string()))
            })?;
        body["id_token"] = json!(signed);
    }
    if let Value::Object(fields) = &mut body {
        fields.extend(launch_context(grant, &endpoints.style));
    }
    Ok(body)
}

/// The `id_token` claims, when `openid` and `fhirUser` or `profile` were granted to a user.
pub fn id_token_claims(
    grant: &Grant,
    scope: &ScopeSet,
    fhir_base: &str,
    nonce: Option<&str>,
    now: i64,
    lifetime: i64,
) -> Option<Value> {
    let username = grant.username.as_deref()?;
    let identity = scope.contains(&Scope::FhirUser) || scope.contains(&Scope::Profile);
    if !scope.contains(&Scope::OpenId) || !identity {
        return None;
    }
    let mut claims = json!({
        "iss": fhir_base,
        "sub": username,
        "aud": grant.client_id,
        "iat": now,
        "exp": now + lifetime,
    });
    if let Some(fhir_user) = &grant.fhir_user {
        let url = format!("{}/{fhir_user}", fhir_base.trim_end_matches('/'));
        claims["fhirUser"] = json!(url);
        if scope.contains(&Scope::Profile) {
            // SMART 1's name for the same claim.
            claims["profile"] = json!(url);
        }
    }
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    Some(claims)
}

/// The launch context of a user's grant: patient, encounter, banner, style and `fhirContext`.
pub fn launch_context(grant: &Grant, style_url: &str) -> Map<String, Value> {
    let mut context = Map::new();
    if grant.username.is_none() {
        return context;
    }
    if let Some(patient) = &grant.patient {
        context.insert("patient".into(), json!(patient));
    }
    if let Some(encounter) = &grant.encounter {
        context.insert("encounter".into(), json!(encounter));
        context.insert(
            "fhirContext".into(),
            json!([{ "reference": format!("Encounter/{encounter}") }]),
        );
    }
    context.insert(
        "need_patient_banner".into(),
        json!(grant.need_patient_banner),
    );
    context.insert("smart_style_url".into(), json!(style_url));
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(username: Option<&str>) -> Grant {
        Grant {
            grant_id: "g1".into(),
            client_id: "app".into(),
            username: username.map(str::to_owned),
            scope: "openid fhirUser patient/*.rs".into(),
            patient: Some("p1".into()),
            encounter: Some("e1".into()),
            fhir_user: Some("Practitioner/dr".into()),
            need_patient_banner: true,
            created_at: 0,
            revoked: false,
        }
    }

    #[test]
    fn id_token_needs_openid_and_an_identity_scope_and_a_user() {
        let base = "https://ehr.example/fhir";
        let claims = id_token_claims(
            &grant(Some("alice")),
            &ScopeSet::parse("openid fhirUser"),
            base,
            Some("n-1"),
            1000,
            3600,
        )
        .unwrap();
        assert_eq!(
            claims,
            json!({
                "iss": base,
                "sub": "alice",
                "aud": "app",
                "iat": 1000,
                "exp": 4600,
                "fhirUser": "https://ehr.example/fhir/Practitioner/dr",
                "nonce": "n-1",
            })
        );
        let profile = id_token_claims(
            &grant(Some("alice")),
            &ScopeSet::parse("openid profile"),
            base,
            None,
            1000,
            3600,
        )
        .unwrap();
        assert_eq!(profile["profile"], profile["fhirUser"]);
        assert!(profile.get("nonce").is_none());
        for scope in ["openid", "fhirUser profile", "patient/*.rs"] {
            let scope = ScopeSet::parse(scope);
            assert!(id_token_claims(&grant(Some("a")), &scope, base, None, 0, 1).is_none());
        }
        let backend = ScopeSet::parse("openid fhirUser");
        assert!(id_token_claims(&grant(None), &backend, base, None, 0, 1).is_none());
    }

    #[test]
    fn launch_context_in_smart_2_2_form() {
        let context = launch_context(&grant(Some("alice")), "https://ehr.example/style");
        assert_eq!(
            Value::Object(context),
            json!({
                "patient": "p1",
                "encounter": "e1",
                "fhirContext": [{"reference": "Encounter/e1"}],
                "need_patient_banner": true,
                "smart_style_url": "https://ehr.example/style",
            })
        );
        assert!(launch_context(&grant(None), "x").is_empty());
    }

    #[test]
    fn refresh_only_for_users_with_offline_or_online_access() {
        let user = grant(Some("alice"));
        assert!(allows_refresh(&user, &ScopeSet::parse("offline_access")));
        assert!(allows_refresh(&user, &ScopeSet::parse("online_access")));
        assert!(!allows_refresh(&user, &ScopeSet::parse("patient/*.rs")));
        assert!(!allows_refresh(
            &grant(None),
            &ScopeSet::parse("offline_access")
        ));
    }
}
