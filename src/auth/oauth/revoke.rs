//! `POST /auth/revoke` (RFC 7009): a client revokes one of its tokens; revoking a refresh
//! token revokes its whole grant. Unknown tokens are answered 200 like known ones.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::client_auth::authenticate;
use super::endpoint::{OAuthError, Params, no_store};
use super::token::record_security;
use crate::audit::{Agent, Event, Kind, Origin, Outcome, Security};
use crate::auth::Endpoints;
use crate::crypto::digest_hex;
use crate::state::AppState;
use crate::store::auth::TokenKind;

pub async fn revoke(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let (state, headers) = (&state, &headers);
    let now = crate::auth::now();
    let endpoints = Endpoints::new(&state.config.base_url);
    let audiences = [endpoints.token.as_str(), endpoints.revoke.as_str()];
    let caller = authenticate(&state.store, headers, &params, &audiences, now).await?;
    let hash = digest_hex(params.require("token")?);
    // Another client's token is left alone, with the same answer, so nothing is revealed.
    let mut revoked = "the token is unknown or another client's; nothing was revoked";
    if let Some(record) = state.store.token(&hash).await?
        && record.grant.client_id == caller.client.client_id
    {
        match record.kind {
            TokenKind::Access => state.store.revoke_token(&hash).await?,
            TokenKind::Refresh => state.store.revoke_grant(&record.grant.grant_id).await?,
        }
        revoked = match record.kind {
            TokenKind::Access => "access token revoked",
            TokenKind::Refresh => "refresh token revoked with its grant",
        };
    }
    let agent = Agent {
        token_id: Some(hash),
        ..Agent::client(caller.client.client_id.clone())
    };
    let event = Event::security(
        Kind::Security(Security::TokenRevoked),
        Outcome::Success,
        agent,
        origin,
    )
    .with_description(revoked);
    record_security(state, event).await?;
    Ok(no_store(StatusCode::OK, json!({})))
}
