//! Dynamic client registration, when `--dynamic-registration` is on: `POST /auth/register`
//! (RFC 7591) and the client configuration endpoint `/auth/register/{client_id}` (RFC 7592:
//! GET reads, PUT replaces the metadata, DELETE retires the app). Off, every one answers 404
//! with an OAuth error.
//!
//! A registration is an app registered through `crate::apps::lifecycle::register_client`
//! (actor `client`, origin `dynamic`, no owner), so it follows the approval policy: on a
//! production deployment it waits in PENDING REVIEW. Its client id (and, for
//! `client_secret_basic`/`client_secret_post`, its secret, shown this once and stored
//! hashed) are in the 201 answer; the client is refused ("this client is awaiting review")
//! until the app is approved. The registration access token is random and stored only as
//! its SHA-256 digest; it is not rotated by updates, and deleting the registration revokes
//! it with the app's tokens. An update is a new revision: reviewed like any other (the
//! approved one keeps working meanwhile), refused while one waits, and it may not change
//! the authentication method.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::client_metadata::{problems_error, same_client_type, to_metadata, to_request};
use super::endpoint::{OAuthError, no_store, read_bounded};
use crate::apps::lifecycle::{self, LifecycleError};
use crate::apps::request::ClientType;
use crate::apps::{Actor, view};
use crate::audit::Origin;
use crate::auth::Endpoints;
use crate::crypto::{digest_hex, random_token, verify_secret};
use crate::state::AppState;
use crate::store::apps::AppRow;

/// The largest registration body: room for a pasted JWK Set
/// (`crate::apps::validate::MAX_JWKS_BYTES`) and the other metadata.
pub const MAX_REGISTRATION_BYTES: usize = 128 * 1024;

/// `POST /auth/register`: registers a client from its RFC 7591 metadata.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: Origin,
    body: Body,
) -> Result<Response, OAuthError> {
    enabled(&state)?;
    let metadata = read_metadata(&headers, body).await?;
    let request = to_request(&metadata)?;
    let token = random_token();
    let now = crate::auth::now();
    let registered = lifecycle::register_client(
        &state.store,
        &lifecycle::Audit::new(&state.audit, origin),
        &state.config.onboarding,
        &request,
        &digest_hex(&token),
        now,
    )
    .await
    .map_err(|error| refusal(&request, error))?;
    let mut body = to_metadata(&request);
    let endpoints = Endpoints::new(&state.config.base_url);
    body.insert("client_id".into(), json!(registered.client_id));
    body.insert("client_id_issued_at".into(), json!(now));
    if let Some(secret) = registered.client_secret {
        body.insert("client_secret".into(), json!(secret));
        body.insert("client_secret_expires_at".into(), json!(0));
    }
    body.insert("registration_access_token".into(), json!(token));
    body.insert(
        "registration_client_uri".into(),
        json!(endpoints.registration_client(&registered.client_id)),
    );
    let detail = view::show(&state.store, &registered.app_id)
        .await
        .map_err(|error| refusal(&request, error))?;
    body.insert("kiln_status".into(), json!(detail.summary.status.as_str()));
    Ok(no_store(StatusCode::CREATED, Value::Object(body)))
}

/// `GET /auth/register/{client_id}`: the client's current registration.
pub async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    enabled(&state)?;
    let (app, token) = registered_app(&state, &headers, &client_id).await?;
    information(&state, &app, &client_id, &token).await
}

/// `PUT /auth/register/{client_id}`: replaces the client's metadata (a new revision,
/// following the approval policy).
pub async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    origin: Origin,
    body: Body,
) -> Result<Response, OAuthError> {
    enabled(&state)?;
    let (app, token) = registered_app(&state, &headers, &client_id).await?;
    let metadata = read_metadata(&headers, body).await?;
    if metadata.get("client_id").and_then(Value::as_str) != Some(client_id.as_str()) {
        return Err(OAuthError::invalid_client_metadata(
            "client_id: the body must carry this client's client_id",
        ));
    }
    let client = state.store.client(&client_id).await?;
    if let Some(secret) = metadata.get("client_secret") {
        let matches = secret.as_str().is_some_and(|secret| {
            client
                .as_ref()
                .and_then(|client| client.secret_hash.as_deref())
                .is_some_and(|hash| verify_secret(secret, hash))
        });
        if !matches {
            return Err(OAuthError::invalid_client_metadata(
                "client_secret: does not match this client's secret (leave it out)",
            ));
        }
    }
    let request = to_request(&metadata)?;
    let detail = view::show(&state.store, &app.app_id)
        .await
        .map_err(|error| refusal(&request, error))?;
    if let Some(current) = detail.current_request() {
        same_client_type(current, &request)?;
    }
    lifecycle::resubmit(
        &state.store,
        &lifecycle::Audit::new(&state.audit, origin),
        &state.config.onboarding,
        &Actor::Client,
        &app.app_id,
        &request,
        crate::auth::now(),
    )
    .await
    .map_err(|error| refusal(&request, error))?;
    information(&state, &app, &client_id, &token).await
}

/// `DELETE /auth/register/{client_id}`: retires the app (its tokens stop at once) and
/// revokes the registration access token.
pub async fn delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    origin: Origin,
) -> Result<Response, OAuthError> {
    enabled(&state)?;
    let (app, _) = registered_app(&state, &headers, &client_id).await?;
    match lifecycle::retire(
        &state.store,
        &lifecycle::Audit::new(&state.audit, origin),
        &Actor::Client,
        &app.app_id,
        Some("the client deleted its registration (RFC 7592)"),
        crate::auth::now(),
    )
    .await
    {
        Ok(_) | Err(LifecycleError::NotAllowed { .. }) => {}
        Err(error) => return Err(refusal(&Default::default(), error)),
    }
    state
        .store
        .set_registration_token(&app.app_id, None)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// 404 unless dynamic registration is on.
fn enabled(state: &AppState) -> Result<(), OAuthError> {
    if state.config.onboarding.dynamic_registration {
        return Ok(());
    }
    Err(OAuthError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "dynamic client registration is not enabled on this server",
    ))
}

/// The JSON object of client metadata in an `application/json` body of at most
/// [`MAX_REGISTRATION_BYTES`].
async fn read_metadata(headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, OAuthError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(OAuthError::invalid_request(
            "the body must be application/json (RFC 7591 client metadata)",
        ));
    }
    let bytes = read_bounded(headers, body, MAX_REGISTRATION_BYTES).await?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(metadata)) => Ok(metadata),
        Ok(_) => Err(OAuthError::invalid_request(
            "the body must be a JSON object of client metadata",
        )),
        Err(error) => Err(OAuthError::invalid_request(format!(
            "the body is not valid JSON: {error}"
        ))),
    }
}

/// The app whose registration access token the request carries, if it is `client_id`'s;
/// otherwise 401 (RFC 6750), without telling whether `client_id` exists.
async fn registered_app(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(AppRow, String), OAuthError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            OAuthError::invalid_token("send the registration access token as a Bearer token")
        })?;
    let app = state
        .store
        .app_by_registration_token(&digest_hex(token))
        .await?
        .filter(|app| app.client_id.as_deref() == Some(client_id))
        .ok_or_else(|| {
            OAuthError::invalid_token("the registration access token is not valid for this client")
        })?;
    Ok((app, token.to_string()))
}

/// The client information response (RFC 7592 §3): the metadata in force (the approved
/// revision, or the latest while none is), with the client id, the configuration endpoint
/// and its token, and Kiln's `kiln_status` (the app's status) and `kiln_awaiting_review`.
async fn information(
    state: &AppState,
    app: &AppRow,
    client_id: &str,
    token: &str,
) -> Result<Response, OAuthError> {
    let detail = view::show(&state.store, &app.app_id)
        .await
        .map_err(|error| refusal(&Default::default(), error))?;
    let request = detail.current_request().cloned().unwrap_or_default();
    let mut body = to_metadata(&request);
    let client = state.store.client(client_id).await?;
    body.insert("client_id".into(), json!(client_id));
    body.insert(
        "client_id_issued_at".into(),
        json!(client.as_ref().map_or(app.created_at, |c| c.created_at)),
    );
    if request.client_type == Some(ClientType::ConfidentialSymmetric) {
        // The secret is stored hashed: it was shown once, at registration.
        body.insert("client_secret_expires_at".into(), json!(0));
    }
    body.insert("registration_access_token".into(), json!(token));
    body.insert(
        "registration_client_uri".into(),
        json!(Endpoints::new(&state.config.base_url).registration_client(client_id)),
    );
    body.insert("kiln_status".into(), json!(detail.summary.status.as_str()));
    body.insert(
        "kiln_awaiting_review".into(),
        json!(detail.summary.awaiting_review),
    );
    Ok(no_store(StatusCode::OK, Value::Object(body)))
}

/// A lifecycle refusal as an RFC 7591 error.
fn refusal(request: &crate::apps::AppRequest, error: LifecycleError) -> OAuthError {
    match error {
        LifecycleError::Invalid(problems) => problems_error(request, &problems),
        LifecycleError::Store(error) => OAuthError::from(error),
        LifecycleError::NotFound(_) => {
            OAuthError::invalid_token("the registration access token is not valid for this client")
        }
        LifecycleError::Conflict => OAuthError::new(
            StatusCode::CONFLICT,
            "invalid_request",
            LifecycleError::Conflict.to_string(),
        ),
        other => OAuthError::invalid_client_metadata(other.to_string()),
    }
}
