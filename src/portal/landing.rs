//! Kiln's landing page, `/`: what this server is, and links to the developer portal, the
//! documentation, the FHIR base, its CapabilityStatement and the SMART configuration, with
//! this server's real base URL.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::state::AppState;
use crate::web::html::html;

#[derive(Template)]
#[template(path = "portal/landing.html")]
struct LandingPage<'a> {
    base_url: &'a str,
    fhir_base: &'a str,
    version: &'a str,
}

/// `GET /`.
pub async fn page(State(state): State<AppState>) -> Response {
    html(
        StatusCode::OK,
        &LandingPage {
            base_url: state.config.base_url.trim_end_matches('/'),
            fhir_base: &state.config.fhir_base(),
            version: env!("CARGO_PKG_VERSION"),
        },
    )
}
