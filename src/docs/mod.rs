//! The documentation Kiln serves at `/docs`, with this server's own URLs: the guides written in
//! Markdown under docs/site/ (`guides`, rendered by `markdown`), one page per resource type
//! generated from the CapabilityStatement in the application state (`resources`), each US Core
//! search with a runnable example on the sample data (`examples`), and a Postman collection and
//! environment generated for this server (`postman`). Imports the state, `auth::Endpoints` and
//! `web` (layout, page headers, error page); nothing imports it but the router.

pub mod examples;
pub mod guides;
pub mod markdown;
pub mod postman;
pub mod resources;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::state::AppState;
use crate::web::html::html;

/// The index: every guide and every resource type's page.
#[derive(Template)]
#[template(path = "docs/index.html")]
struct Index<'a> {
    guides: &'a [guides::Guide],
    us_core: Vec<String>,
    others: Vec<String>,
    fhir_base: String,
}

pub async fn index(State(state): State<AppState>) -> Response {
    let (us_core, others) = resources::type_names(&state.capability);
    html(
        StatusCode::OK,
        &Index {
            guides: guides::GUIDES,
            us_core,
            others,
            fhir_base: state.config.fhir_base(),
        },
    )
}

/// `GET /docs/{slug}`: one guide.
pub async fn guide(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    guides::page(&state, &slug)
}

/// `GET /docs/resources/{type}`: one resource type.
pub async fn resource(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    resources::page(&state, &name)
}

/// The page for a docs URL that names nothing.
fn not_found(what: &str) -> Response {
    html(
        StatusCode::NOT_FOUND,
        &crate::web::error::ErrorPage {
            title: "Not found",
            detail: &format!("There is no documentation page {what}. See /docs for the list."),
        },
    )
}
