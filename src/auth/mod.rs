//! Kiln's SMART App Launch authorization server: discovery, keys, clients, users, scopes,
//! the authorize and token endpoints, and the access checks on every FHIR request.

pub mod active;
mod assertion;
mod backend_grant;
pub mod cli;
mod client_auth;
mod code_grant;
pub mod crypto;
pub mod discovery;
mod introspect;
mod issue;
mod jwks_fetch;
pub mod keys;
mod oauth;
mod refresh_grant;
mod revoke;
pub mod scope;
mod token;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

/// Seconds since the Unix epoch: the unit of every time in the auth tables and in JWTs.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The endpoints a SMART app uses, relative to `{base-url}`.
pub struct Endpoints {
    pub authorize: String,
    pub token: String,
    pub introspect: String,
    pub revoke: String,
    pub jwks: String,
    pub manage: String,
    pub style: String,
}

impl Endpoints {
    pub fn new(base_url: &str) -> Endpoints {
        let base = base_url.trim_end_matches('/');
        Endpoints {
            authorize: format!("{base}/auth/authorize"),
            token: format!("{base}/auth/token"),
            introspect: format!("{base}/auth/introspect"),
            revoke: format!("{base}/auth/revoke"),
            jwks: format!("{base}/auth/jwks"),
            manage: format!("{base}/auth/apps"),
            style: format!("{base}/auth/smart-style.json"),
        }
    }
}

/// Routes under `/auth` and the discovery documents under the FHIR base.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/fhir/.well-known/smart-configuration",
            get(discovery::smart_configuration),
        )
        .route(
            "/fhir/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/auth/jwks", get(discovery::jwks))
        .route("/auth/smart-style.json", get(discovery::style))
        .route("/auth/token", post(token::token))
        .route("/auth/introspect", post(introspect::introspect))
        .route("/auth/revoke", post(revoke::revoke))
}
