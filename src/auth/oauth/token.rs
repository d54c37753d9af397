//! `POST /auth/token` (RFC 6749 §3.2): authenticates the client (a public client refreshing
//! may be named by its refresh token alone), then runs the grant it asks for:
//! `authorization_code`, `refresh_token` or `client_credentials`. Kiln's own client (the
//! developer portal's launch simulator) asks in-process with [`answer`].

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::client_auth::{authenticate, authenticate_refresh};
use super::endpoint::{OAuthError, Params};
use super::issue::Issued;
use super::{backend_grant, code_grant, refresh_grant};
use crate::audit::{Agent, Event, Kind, Origin, Outcome, Security};
use crate::auth::Endpoints;
use crate::state::AppState;

const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];

/// The token endpoint, recording every token issued and every request refused.
pub async fn token(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let result = exchange(&state, &headers, &params).await;
    let event = match &result {
        Ok(response) => {
            let issued = response.extensions().get::<Issued>();
            let mut event = Event::security(
                Kind::Security(Security::TokenIssued),
                Outcome::Success,
                issued
                    .map(|issued| issued.agent.clone())
                    .unwrap_or_default(),
                origin,
            );
            event.patient = issued.and_then(|issued| issued.patient.clone());
            event.with_description(format!(
                "grant_type {}",
                params.get("grant_type").unwrap_or_default()
            ))
        }
        Err(error) => Event::security(
            Kind::Security(Security::TokenRefused),
            Outcome::of_status(error.status.as_u16()),
            params
                .get("client_id")
                .map(Agent::client)
                .unwrap_or_default(),
            origin,
        )
        .with_description(format!("{}: {}", error.error, error.description)),
    };
    record_security(&state, event).await?;
    result
}

/// Appends a security event of an OAuth endpoint; the request fails (503) when it cannot.
pub async fn record_security(state: &AppState, event: Event) -> Result<(), OAuthError> {
    state.audit.record(event).await.map_err(|error| {
        OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            error.to_string(),
        )
    })
}

async fn exchange(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, OAuthError> {
    let grant_type = params.require("grant_type")?;
    if !GRANT_TYPES.contains(&grant_type) {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {grant_type} is not supported"
        )));
    }
    let now = crate::auth::now();
    let endpoints = Endpoints::new(&state.config.base_url);
    let audiences = [endpoints.token.as_str()];
    let caller = if grant_type == "refresh_token" {
        authenticate_refresh(&state.store, headers, params, &audiences, now).await?
    } else {
        authenticate(&state.store, headers, params, &audiences, now).await?
    };
    if !caller.client.grant_types.iter().any(|g| g == grant_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client is not registered for {grant_type}"
        )));
    }
    match grant_type {
        "authorization_code" => code_grant::exchange(state, &caller.client, params, now).await,
        "refresh_token" => refresh_grant::exchange(state, &caller.client, params, now).await,
        _ => backend_grant::exchange(state, &caller, params, now).await,
    }
}

/// The token endpoint's answer to a form body sent in-process (no HTTP round trip to the
/// server's own public URL, which it may not reach): the same checks and the same answer.
pub async fn answer(state: &AppState, form: &[(&str, &str)]) -> Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    match Params::parse(&headers, body.as_bytes()) {
        Ok(params) => token(State(state.clone()), Origin::default(), headers, params)
            .await
            .into_response(),
        Err(error) => error.into_response(),
    }
}
