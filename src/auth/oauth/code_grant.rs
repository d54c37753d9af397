//! The `authorization_code` grant: a code is issued for what the user allowed on the consent
//! page, and used once, within its lifetime, by the client it was issued to, with the same
//! redirect URI and the PKCE verifier of its challenge.

use axum::response::Response;

use super::endpoint::{OAuthError, Params};
use super::issue::{Issue, Refresh, allows_refresh, issue};
use crate::access::scope::ScopeSet;
use crate::crypto::{digest_hex, pkce_matches, random_token};
use crate::state::AppState;
use crate::store::auth::{Client, Code, Grant, Pending};
use crate::store::{Store, StoreError};

/// Authorization codes live one minute.
const CODE_LIFETIME_SECS: i64 = 60;

/// Records `grant` (what the user allowed) and issues an authorization code for it, bound to
/// the pending request's redirect URI, PKCE challenge and nonce; returns the code.
pub async fn issue_code(
    store: &Store,
    grant: &Grant,
    pending: &Pending,
) -> Result<String, StoreError> {
    store.insert_grant(grant).await?;
    let code = random_token();
    store
        .insert_code(&Code {
            code_hash: digest_hex(&code),
            grant_id: grant.grant_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            nonce: pending.nonce.clone(),
            expires_at: grant.created_at + CODE_LIFETIME_SECS,
        })
        .await?;
    Ok(code)
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<Response, OAuthError> {
    let code = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?;
    let verifier = params.require("code_verifier")?;
    let Some((code, replayed)) = state.store.consume_code(&digest_hex(code)).await? else {
        return Err(OAuthError::invalid_grant("unknown authorization code"));
    };
    if replayed {
        // RFC 6749 §4.1.2: a code used twice revokes what it already yielded.
        state.store.revoke_grant(&code.grant_id).await?;
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; its tokens are revoked",
        ));
    }
    let grant = state
        .store
        .grant(&code.grant_id)
        .await?
        .filter(|grant| !grant.revoked)
        .ok_or_else(|| OAuthError::invalid_grant("the authorization was revoked"))?;
    check(
        &code,
        &grant,
        &client.client_id,
        redirect_uri,
        verifier,
        now,
    )?;
    let scope = ScopeSet::parse(&grant.scope);
    let refresh = allows_refresh(&grant, &scope).then(|| Refresh {
        scope: grant.scope.clone(),
        lifetime: state.config.auth.refresh_token_lifetime,
    });
    issue(
        state,
        Issue {
            grant: &grant,
            scope: grant.scope.clone(),
            refresh,
            lifetime: state.config.auth.access_token_lifetime,
            nonce: code.nonce.as_deref(),
        },
        now,
    )
    .await
}

/// Whether a consumed code may be exchanged by this request.
fn check(
    code: &Code,
    grant: &Grant,
    client_id: &str,
    redirect_uri: &str,
    verifier: &str,
    now: i64,
) -> Result<(), OAuthError> {
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if grant.client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !pkce_matches(verifier, &code.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code() -> Code {
        Code {
            code_hash: "h".into(),
            grant_id: "g".into(),
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: CHALLENGE.into(),
            nonce: None,
            expires_at: 160,
        }
    }

    fn grant() -> Grant {
        Grant {
            grant_id: "g".into(),
            client_id: "app".into(),
            username: Some("alice".into()),
            scope: "patient/*.rs".into(),
            patient: Some("p".into()),
            encounter: None,
            fhir_user: Some("Patient/p".into()),
            need_patient_banner: true,
            created_at: 100,
            revoked: false,
        }
    }

    fn refusal(result: Result<(), OAuthError>) -> String {
        let error = result.unwrap_err();
        assert_eq!(error.error, "invalid_grant");
        error.description
    }

    #[test]
    fn a_code_is_bound_to_client_redirect_verifier_and_time() {
        let (code, grant) = (code(), grant());
        let cb = "https://app.example/cb";
        assert!(check(&code, &grant, "app", cb, VERIFIER, 159).is_ok());
        assert!(refusal(check(&code, &grant, "app", cb, VERIFIER, 160)).contains("expired"));
        assert!(refusal(check(&code, &grant, "other", cb, VERIFIER, 100)).contains("client"));
        let other_uri = "https://app.example/cb/";
        assert!(
            refusal(check(&code, &grant, "app", other_uri, VERIFIER, 100)).contains("redirect")
        );
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
        assert!(refusal(check(&code, &grant, "app", cb, wrong, 100)).contains("code_verifier"));
        assert!(refusal(check(&code, &grant, "app", cb, CHALLENGE, 100)).contains("code_verifier"));
    }
}
