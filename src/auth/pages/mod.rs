//! The browser side of the authorization server: the HTML pages a person sees, one file per
//! page with its handlers, its template and its text — `authorize` (the request's outcome and
//! the first page), `login`, `patient` (picker), `encounter` (picker), `consent`, `ehr` (Kiln
//! as the EHR, launching apps), `apps` (connected apps, sign out) — and what they share:
//! `steps` (which page comes next), `session` (cookies, CSRF), `records` (the FHIR reads the
//! pages show), `html` (rendering, redirects, headers) and `error` (the error page). Protocol
//! decisions come from `oauth` (the request's checks, issuing a code); `oauth` never imports
//! the pages.

mod apps;
mod authorize;
mod consent;
mod ehr;
mod encounter;
mod error;
mod html;
mod login;
mod patient;
mod records;
mod session;
mod steps;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use crate::state::AppState;

/// The browser side: authorize, sign in, patient and encounter pickers, consent, EHR launch,
/// connected apps.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/auth/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/auth/login", post(login::login))
        .route(
            "/auth/patient",
            get(patient::picker).post(patient::choose_patient),
        )
        .route("/auth/encounter", post(encounter::choose_encounter))
        .route("/auth/consent", post(consent::consent))
        .route("/auth/ehr", get(ehr::page))
        .route("/auth/ehr/launch", post(ehr::launch))
        .route("/auth/apps", get(apps::page))
        .route("/auth/apps/revoke", post(apps::revoke))
        .route("/auth/logout", post(apps::logout))
        .layer(middleware::from_fn(html::no_store))
}
