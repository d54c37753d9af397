//! The `refresh_token` grant: each refresh token is used once and replaced (rotation); a
//! used one presented again revokes the whole grant, since one of its holders is an impostor.

use axum::response::Response;

use super::active::live_token;
use super::endpoint::{OAuthError, Params};
use super::issue::{Issue, Refresh, allows_refresh, issue};
use crate::access::scope::{Scope, ScopeSet};
use crate::crypto::digest_hex;
use crate::state::AppState;
use crate::store::auth::{Client, TokenKind};

pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<Response, OAuthError> {
    let raw = params.require("refresh_token")?;
    let Some(record) = live_token(&state.store, raw, TokenKind::Refresh, now).await? else {
        return Err(OAuthError::invalid_grant(
            "the refresh token is unknown, expired or revoked",
        ));
    };
    if record.grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let original = ScopeSet::parse(&record.scope);
    if !allows_refresh(&record.grant, &original) {
        return Err(OAuthError::invalid_grant(
            "this authorization does not allow refreshing",
        ));
    }
    let scope = narrowed(params.get("scope"), &original)?;
    if !state.store.use_refresh_token(&digest_hex(raw)).await? {
        state.store.revoke_grant(&record.grant.grant_id).await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used; the authorization is revoked",
        ));
    }
    issue(
        state,
        Issue {
            grant: &record.grant,
            scope,
            refresh: Some(Refresh {
                scope: record.scope.clone(),
                lifetime: state.config.auth.refresh_token_lifetime,
            }),
            lifetime: state.config.auth.access_token_lifetime,
            nonce: None,
        },
        now,
    )
    .await
}

/// The scope of the new access token: the original, or a narrower one the client asked for
/// (RFC 6749 §6); anything wider or unknown is refused.
fn narrowed(asked: Option<&str>, original: &ScopeSet) -> Result<String, OAuthError> {
    let Some(asked) = asked else {
        return Ok(original.to_string());
    };
    let parsed = ScopeSet::parse(asked);
    let all_known = asked
        .split_ascii_whitespace()
        .all(|scope| Scope::parse(scope).is_some());
    if parsed.is_empty() || !all_known || parsed.within(original) != parsed {
        return Err(OAuthError::invalid_scope(
            "the requested scope is not within the scope originally granted",
        ));
    }
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn narrow(asked: Option<&str>) -> Result<String, &'static str> {
        let original =
            ScopeSet::parse("launch/patient patient/*.rs openid fhirUser offline_access");
        narrowed(asked, &original).map_err(|error| error.error)
    }

    #[test]
    fn a_refresh_may_narrow_but_never_widen_the_scope() {
        assert_eq!(
            narrow(None).unwrap(),
            "launch/patient patient/*.rs openid fhirUser offline_access"
        );
        assert_eq!(
            narrow(Some("patient/Observation.rs offline_access")).unwrap(),
            "patient/Observation.rs offline_access"
        );
        assert_eq!(
            narrow(Some("patient/Observation.r patient/Observation.r")).unwrap(),
            "patient/Observation.r"
        );
        for wider in [
            "patient/*.cruds",
            "user/Observation.rs",
            "online_access",
            "patient/Observation.rs bogus",
            "",
        ] {
            assert_eq!(narrow(Some(wider)), Err("invalid_scope"), "{wider}");
        }
    }
}
