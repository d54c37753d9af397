//! `POST /auth/introspect` (RFC 7662): a confidential client with its own credentials, or a
//! backend service with its bearer token, asks whether one of its own tokens is live. Another
//! client's token is answered `{"active": false}`, as an unknown one is, so nothing about
//! other apps' tokens is revealed.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::active::live_token;
use super::client_auth::{Method, authenticate};
use super::endpoint::{OAuthError, Params, no_store};
use crate::access::scope::{Context, ScopeSet};
use crate::auth::Endpoints;
use crate::state::AppState;
use crate::store::auth::{TokenKind, TokenRecord};

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let (state, headers) = (&state, &headers);
    let now = crate::auth::now();
    let caller = authorize_caller(state, headers, &params, now).await?;
    let token = params.require("token")?;
    let access = live_token(&state.store, token, TokenKind::Access, now).await?;
    let record = match access {
        Some(record) => Some(record),
        // A rotated refresh token can no longer be exchanged.
        None => live_token(&state.store, token, TokenKind::Refresh, now)
            .await?
            .filter(|record| !record.used),
    };
    let body = match record {
        Some(record) if record.grant.client_id == caller => {
            describe(&record, &state.config.fhir_base())
        }
        _ => json!({ "active": false }),
    };
    Ok(no_store(StatusCode::OK, body))
}

/// Only confidential clients and backend services may introspect; returns the caller's
/// client id.
async fn authorize_caller(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    now: i64,
) -> Result<String, OAuthError> {
    if let Some(bearer) = bearer(headers) {
        let record = live_token(&state.store, bearer, TokenKind::Access, now).await?;
        return match record {
            Some(record)
                if record.grant.username.is_none()
                    && ScopeSet::parse(&record.scope).has_context(Context::System) =>
            {
                Ok(record.grant.client_id)
            }
            _ => Err(OAuthError::invalid_token(
                "introspection needs a live backend-services access token",
            )),
        };
    }
    let endpoints = Endpoints::new(&state.config.base_url);
    let audiences = [endpoints.token.as_str(), endpoints.introspect.as_str()];
    let caller = authenticate(&state.store, headers, params, &audiences, now).await?;
    if caller.method == Method::None {
        return Err(OAuthError::invalid_client(
            "introspection needs a confidential client's credentials",
        ));
    }
    Ok(caller.client.client_id)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The RFC 7662 answer for a live token.
fn describe(record: &TokenRecord, fhir_base: &str) -> Value {
    let grant = &record.grant;
    let mut body = json!({
        "active": true,
        "scope": record.scope,
        "client_id": grant.client_id,
        "exp": record.expires_at,
        "iat": record.issued_at,
        "iss": fhir_base,
    });
    if record.kind == TokenKind::Access {
        body["token_type"] = json!("Bearer");
    }
    if let Some(username) = &grant.username {
        body["sub"] = json!(username);
    }
    if let Some(patient) = &grant.patient {
        body["patient"] = json!(patient);
    }
    if let Some(encounter) = &grant.encounter {
        body["encounter"] = json!(encounter);
    }
    if let Some(fhir_user) = &grant.fhir_user {
        body["fhirUser"] = json!(format!("{}/{fhir_user}", fhir_base.trim_end_matches('/')));
    }
    body
}
