//! Every route of the server and the handler that answers it: the FHIR REST API (with Bulk
//! Data export) under `/fhir`, the authorization server's protocol endpoints and discovery
//! documents, and its browser pages; the landing page, the developer portal, the
//! documentation and the admin console. The middleware around them is built in `app`. Imports
//! the HTTP-facing modules (`rest`, `auth`, `bulk`, `portal`, `docs`, `admin`); never `app` or
//! the CLI.

use axum::Router;
use axum::middleware;
use axum::routing::{any, get, post};

use crate::auth::pages;
use crate::state::AppState;
use crate::{admin, auth, bulk, docs, portal, rest};

/// The FHIR REST API, mounted at `/fhir`.
pub fn fhir() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            post(rest::system::transaction).get(rest::search::search_system),
        )
        .route("/_search", post(rest::search::search_system_post))
        .route("/metadata", get(rest::capability::metadata))
        .route(
            "/Patient/{id}/$everything",
            get(rest::operations::patient_everything),
        )
        .route(
            "/DocumentReference/$docref",
            get(rest::docref::docref).post(rest::docref::docref_post),
        )
        .route("/_history", get(rest::history::system_history))
        .merge(export())
        .merge(audit())
        .route(
            "/{resource_type}",
            get(rest::search::search_type)
                .post(rest::write::create)
                .put(rest::write::conditional_update)
                .patch(rest::patch::conditional_patch)
                .delete(rest::write::conditional_delete),
        )
        .route(
            "/{resource_type}/_search",
            post(rest::search::search_type_post),
        )
        .route(
            "/{resource_type}/_history",
            get(rest::history::type_history),
        )
        .route(
            "/{resource_type}/{id}",
            get(rest::read::read)
                .put(rest::write::update)
                .patch(rest::patch::patch)
                .delete(rest::write::delete),
        )
        .route(
            "/{resource_type}/{id}/_history",
            get(rest::history::instance_history),
        )
        .route(
            "/{compartment}/{id}/{resource_type}",
            get(rest::search::search_compartment),
        )
        .route(
            "/{resource_type}/{id}/_history/{version}",
            get(rest::read::vread),
        )
}

/// The audit log, ahead of the generic `/{resource_type}` patterns: read and search, every
/// write and history refused (405).
fn audit() -> Router<AppState> {
    Router::new()
        .route(
            "/AuditEvent",
            get(rest::audit::search).fallback(rest::audit::refuse),
        )
        .route(
            "/AuditEvent/_search",
            post(rest::audit::search_post).fallback(rest::audit::refuse),
        )
        .route("/AuditEvent/_history", any(rest::audit::refuse))
        .route(
            "/AuditEvent/{id}",
            get(rest::audit::read).fallback(rest::audit::refuse),
        )
        .route("/AuditEvent/{id}/_history", any(rest::audit::refuse))
        .route(
            "/AuditEvent/{id}/_history/{version}",
            any(rest::audit::refuse),
        )
}

/// `POST /fhir/` (a transaction or batch) and `GET /fhir/` (a system search), as some clients
/// write the base with its trailing slash.
pub fn fhir_root() -> Router<AppState> {
    Router::new().route(
        "/fhir/",
        post(rest::system::transaction).get(rest::search::search_system),
    )
}

/// Liveness and readiness, outside the FHIR API and without a token.
pub fn health() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(rest::health::healthz))
        .route("/readyz", get(rest::health::readyz))
}

/// `/metrics` (Prometheus), outside the FHIR API and its token: on the main listener, or
/// alone on `--metrics-bind`.
pub fn metrics() -> Router<AppState> {
    Router::new().route("/metrics", get(rest::metrics::metrics))
}

/// Bulk Data export, merged into the FHIR API (behind its bearer-token check) ahead of the
/// `/{resource_type}/{id}` patterns.
fn export() -> Router<AppState> {
    Router::new()
        .route(
            "/$export",
            get(bulk::kickoff::system).post(bulk::kickoff::system),
        )
        .route(
            "/Patient/$export",
            get(bulk::kickoff::patient).post(bulk::kickoff::patient),
        )
        .route(
            "/Group/{id}/$export",
            get(bulk::kickoff::group).post(bulk::kickoff::group),
        )
        .route(
            "/$export-status/{id}",
            get(bulk::status::status).delete(bulk::status::cancel),
        )
        .route("/$export-file/{id}/{index}", get(bulk::status::file))
}

/// Routes under `/auth` and the discovery documents under the FHIR base (with or without a
/// trailing slash, as some vendors' documentation writes them).
pub fn auth() -> Router<AppState> {
    Router::new()
        .route(
            "/fhir/.well-known/smart-configuration",
            get(auth::oauth::discovery::smart_configuration),
        )
        .route(
            "/fhir/.well-known/smart-configuration/",
            get(auth::oauth::discovery::smart_configuration),
        )
        .route(
            "/fhir/.well-known/openid-configuration",
            get(auth::oauth::discovery::openid_configuration),
        )
        .route(
            "/fhir/.well-known/openid-configuration/",
            get(auth::oauth::discovery::openid_configuration),
        )
        .route("/auth/jwks", get(auth::oauth::discovery::jwks))
        .route("/auth/smart-style.json", get(auth::oauth::discovery::style))
        .route("/auth/token", post(auth::oauth::token::token))
        .route(
            "/auth/introspect",
            post(auth::oauth::introspect::introspect),
        )
        .route("/auth/revoke", post(auth::oauth::revoke::revoke))
        .route("/auth/register", post(auth::oauth::registration::register))
        .route(
            "/auth/register/{client_id}",
            get(auth::oauth::registration::read)
                .put(auth::oauth::registration::update)
                .delete(auth::oauth::registration::delete),
        )
        .route("/assets/kiln.css", get(crate::web::assets::stylesheet))
        .merge(pages())
}

/// The documentation under `/docs`: the guides, a page per resource type, and the Postman
/// collection and environment.
pub fn docs() -> Router<AppState> {
    Router::new()
        .route("/docs", get(docs::index))
        .route("/docs/", get(docs::index))
        .route(
            "/docs/postman/collection.json",
            get(docs::postman::collection),
        )
        .route(
            "/docs/postman/environment.json",
            get(docs::postman::environment),
        )
        .route("/docs/resources/{name}", get(docs::resource))
        .route("/docs/{slug}", get(docs::guide))
        .layer(middleware::from_fn(crate::web::html::page_headers))
}

/// The browser side: authorize, sign in, patient and encounter pickers, consent, EHR launch,
/// connected apps.
fn pages() -> Router<AppState> {
    Router::new()
        .route(
            "/auth/authorize",
            get(pages::authorize::authorize_get).post(pages::authorize::authorize_post),
        )
        .route("/auth/login", post(pages::login::login))
        .route(
            "/auth/patient",
            get(pages::patient::picker).post(pages::patient::choose_patient),
        )
        .route("/auth/encounter", post(pages::encounter::choose_encounter))
        .route("/auth/consent", post(pages::consent::consent))
        .route("/auth/ehr", get(pages::ehr::page))
        .route("/auth/ehr/launch", post(pages::ehr::launch))
        .route("/auth/apps", get(pages::apps::page))
        .route("/auth/apps/revoke", post(pages::apps::revoke))
        .route("/auth/logout", post(pages::apps::logout))
        .layer(middleware::from_fn(crate::web::html::page_headers))
}

/// The landing page and the developer portal: accounts (sign-up, verification, sign-in and
/// out, password reset), the "My Applications" home and the app pages and, on a sandbox
/// deployment, the launch simulator; every page of a sandbox carries its notice.
pub fn portal(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(portal::landing::page))
        .route("/developer", get(portal::home::page))
        .route(
            "/developer/signup",
            get(portal::account::signup_page).post(portal::account::signup),
        )
        .route("/developer/verify", get(portal::account::verify))
        .route("/developer/verify/resend", post(portal::account::resend))
        .route(
            "/developer/signin",
            get(portal::signin::page).post(portal::signin::signin),
        )
        .route("/developer/signout", post(portal::signin::signout))
        .route(
            "/developer/reset",
            get(portal::reset::request_page).post(portal::reset::request),
        )
        .route(
            "/developer/reset/new",
            get(portal::reset::new_password_page).post(portal::reset::new_password),
        )
        .route(
            "/developer/apps/new",
            get(portal::apps::new_page).post(portal::apps::create),
        )
        .route("/developer/apps/{app_id}", get(portal::apps::show))
        .route(
            "/developer/apps/{app_id}/edit",
            get(portal::apps::edit_page).post(portal::apps::edit),
        )
        .route("/developer/apps/{app_id}/{action}", post(portal::apps::act))
        .route("/developer/simulator", get(portal::simulator::page))
        .route(
            "/developer/simulator/launch",
            post(portal::simulator::launch),
        )
        .route(
            portal::simulator::CALLBACK_PATH,
            get(portal::simulator::callback),
        )
        .route(
            "/developer/simulator/callback-uri",
            post(portal::simulator::add_callback),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            portal::sandbox::add_notice,
        ))
        .layer(middleware::from_fn(crate::web::html::page_headers))
}

/// App logos, served by Kiln with their own headers (long-cached images, not pages).
pub fn logos() -> Router<AppState> {
    Router::new().route("/apps/logo/{digest}", get(portal::logo::serve))
}

/// The admin console: every handler takes `admin::guard::Admin` (a signed-in admin; on a POST
/// the CSRF token too).
pub fn admin() -> Router<AppState> {
    Router::new()
        .route("/admin", get(admin::home::page))
        .route("/admin/logout", post(admin::home::logout))
        .route(
            "/admin/users",
            get(admin::users::list).post(admin::users::create),
        )
        .route("/admin/users/show", get(admin::users::show))
        .route("/admin/users/{action}", post(admin::users::act))
        .route("/admin/apps", get(admin::apps::list))
        .route("/admin/apps/{app_id}", get(admin::apps::show))
        .route("/admin/apps/{app_id}/{action}", post(admin::apps::act))
        .route("/admin/developers", get(admin::developers::list))
        .route(
            "/admin/developers/{account_id}",
            get(admin::developers::show),
        )
        .route(
            "/admin/developers/{account_id}/{action}",
            post(admin::developers::act),
        )
        .route("/admin/audit", get(admin::audit::page))
        .route("/admin/audit/csv", get(admin::audit::csv))
        .layer(middleware::from_fn(crate::web::html::page_headers))
}
