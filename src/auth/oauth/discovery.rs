//! Discovery documents: SMART configuration, OpenID Provider metadata (each with
//! `registration_endpoint` when dynamic registration is on), JWKS, and the style document
//! `smart_style_url` points to.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::Endpoints;
use crate::config::ServeConfig;
use crate::fhir::outcome::FhirError;
use crate::state::keys::KeyRing;

/// Scopes Kiln grants, listed for discovery (resource scopes are any type, v1 and v2).
pub const SCOPES_SUPPORTED: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
    "patient/*.read",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.read",
    "user/*.rs",
    "user/*.cruds",
    "system/*.read",
    "system/*.rs",
    "system/*.cruds",
];

pub const CAPABILITIES: &[&str] = &[
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-passthrough-banner",
    "context-passthrough-style",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "context-standalone-encounter",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "sso-openid-connect",
];

pub async fn smart_configuration(State(config): State<Arc<ServeConfig>>) -> Response {
    let endpoints = Endpoints::new(&config.base_url);
    let body = json!({
        "issuer": config.fhir_base(),
        "jwks_uri": endpoints.jwks,
        "authorization_endpoint": endpoints.authorize,
        "token_endpoint": endpoints.token,
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "introspection_endpoint": endpoints.introspect,
        "revocation_endpoint": endpoints.revoke,
        "management_endpoint": endpoints.manage,
        "capabilities": CAPABILITIES,
    });
    public_json(with_registration(body, &config, &endpoints))
}

pub async fn openid_configuration(State(config): State<Arc<ServeConfig>>) -> Response {
    let endpoints = Endpoints::new(&config.base_url);
    let body = json!({
        "issuer": config.fhir_base(),
        "authorization_endpoint": endpoints.authorize,
        "token_endpoint": endpoints.token,
        "jwks_uri": endpoints.jwks,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": SCOPES_SUPPORTED,
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser", "name"],
    });
    public_json(with_registration(body, &config, &endpoints))
}

/// Adds `registration_endpoint` when dynamic client registration is on.
fn with_registration(mut body: Value, config: &ServeConfig, endpoints: &Endpoints) -> Value {
    if config.onboarding.dynamic_registration {
        body["registration_endpoint"] = json!(endpoints.register);
    }
    body
}

pub async fn jwks(State(keys): State<Arc<KeyRing>>) -> Result<Response, FhirError> {
    let keys = keys
        .current()
        .await
        .map_err(|error| FhirError::internal("loading the signing keys", error))?;
    let body = serde_json::to_value(&keys.jwks)
        .map_err(|error| FhirError::internal("serializing the JWKS", error))?;
    Ok(public_json(body))
}

/// The style document of `smart_style_url` (SMART App Launch "styling").
pub async fn style() -> Response {
    public_json(json!({
        "color_background": "#f6f4f0",
        "color_error": "#9e2d2d",
        "color_highlight": "#b3541e",
        "color_modal_backdrop": "",
        "color_success": "#498e49",
        "color_text": "#1f1f1f",
        "dim_border_radius": "6px",
        "dim_font_size": "14px",
        "dim_spacing_size": "20px",
        "font_family_body": "Georgia, Times, 'Times New Roman', serif",
        "font_family_heading": "'HelveticaNeue-Light', Helvetica, Arial, 'Lucida Grande', sans-serif",
    }))
}

/// A JSON document anyone may fetch (CORS is added for every route by the app).
fn public_json(body: Value) -> Response {
    ([(header::CACHE_CONTROL, "public, max-age=60")], Json(body)).into_response()
}
