//! Kiln's SMART App Launch authorization server: discovery, keys, clients, users, scopes,
//! the authorize and token endpoints, and the access checks on every FHIR request.

pub mod access;
mod apps;
mod authorize;
mod consent;
pub mod crypto;
mod ehr;
mod flow;
pub mod oauth;
mod pages;
mod records;
pub mod scope;
mod session;

use axum::Router;
use axum::middleware;
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

/// Routes under `/auth` and the discovery documents under the FHIR base (with or without a
/// trailing slash, as some vendors' documentation writes them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/fhir/.well-known/smart-configuration",
            get(oauth::discovery::smart_configuration),
        )
        .route(
            "/fhir/.well-known/smart-configuration/",
            get(oauth::discovery::smart_configuration),
        )
        .route(
            "/fhir/.well-known/openid-configuration",
            get(oauth::discovery::openid_configuration),
        )
        .route(
            "/fhir/.well-known/openid-configuration/",
            get(oauth::discovery::openid_configuration),
        )
        .route("/auth/jwks", get(oauth::discovery::jwks))
        .route("/auth/smart-style.json", get(oauth::discovery::style))
        .route("/auth/token", post(oauth::token::token))
        .route("/auth/introspect", post(oauth::introspect::introspect))
        .route("/auth/revoke", post(oauth::revoke::revoke))
        .merge(pages())
}

/// The browser side: authorize, sign in, patient and encounter pickers, consent, EHR launch,
/// connected apps.
fn pages() -> Router<AppState> {
    Router::new()
        .route(
            "/auth/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/auth/login", post(flow::login))
        .route(
            "/auth/patient",
            get(flow::picker).post(flow::choose_patient),
        )
        .route("/auth/encounter", post(flow::choose_encounter))
        .route("/auth/consent", post(flow::consent))
        .route("/auth/ehr", get(ehr::page))
        .route("/auth/ehr/launch", post(ehr::launch))
        .route("/auth/apps", get(apps::page))
        .route("/auth/apps/revoke", post(apps::revoke))
        .route("/auth/logout", post(apps::logout))
        .layer(middleware::from_fn(pages::no_store))
}
