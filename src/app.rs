//! Builds the HTTP application: the application state, and the middleware stack around the
//! routes of `router` (the bearer-token check in front of the FHIR API among them, and the
//! request metrics of `telemetry` around everything). The top of the server: it may import
//! every module but the CLI.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::{Router, middleware};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::ServeConfig;
use crate::rest::body_budget::{self, BodyBudget};
use crate::rest::capability::capability_statement;
use crate::rest::outcome_layer;
use crate::state::replicas::ReadReplica;
use crate::state::{AppState, StateError};
use crate::store::Store;

/// The application state for `config`: the CapabilityStatement is built here, from the
/// FHIR routes and the authorization server's endpoints it describes.
pub fn state(
    store: Store,
    config: ServeConfig,
    read_replica: Option<Arc<ReadReplica>>,
) -> Result<AppState, StateError> {
    let endpoints = crate::auth::Endpoints::new(&config.base_url);
    let capability = capability_statement(&config.fhir_base(), &endpoints);
    if !config.metrics.disable_metrics {
        crate::telemetry::install();
    }
    AppState::new(store, config, capability, read_replica)
}

/// Browser apps call discovery, the token endpoint and the FHIR API from their own origin;
/// tokens travel in headers, never cookies, so any origin may call without credentials.
/// A preflight's requested headers are allowed by name: the Fetch standard's `*` never
/// covers `Authorization`, which every FHIR call of a browser app carries.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LAST_MODIFIED,
            header::CONTENT_LOCATION,
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("x-progress"),
            header::RETRY_AFTER,
            REQUEST_ID,
        ])
        .max_age(Duration::from_secs(3600))
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let bearer = middleware::from_fn_with_state(
        crate::auth::oauth::bearer::BearerCheck::new(&state),
        crate::auth::oauth::bearer::authenticate,
    );
    // Inside the bearer check: it needs the caller.
    let fences =
        middleware::from_fn_with_state(state.clone(), crate::rest::read_routing::fence_writes);
    // Outside the bearer check: refused requests are recorded too.
    let audit = middleware::from_fn_with_state(state.clone(), crate::rest::audit_trail::record);
    let metrics = !state.config.metrics.disable_metrics;
    let routes = Router::new()
        .nest(
            "/fhir",
            crate::router::fhir()
                .layer(fences.clone())
                .layer(bearer.clone())
                .layer(audit.clone()),
        )
        .merge(
            crate::router::fhir_root()
                .layer(fences)
                .layer(bearer)
                .layer(audit),
        )
        .merge(crate::router::auth())
        .merge(crate::router::portal(&state))
        .merge(crate::router::logos())
        .merge(crate::router::admin())
        .merge(crate::router::health())
        .merge(crate::router::docs());
    // `/metrics` on the main listener unless it has its own; the route of every request is
    // marked for the request metrics.
    let routes = match (metrics, state.config.metrics.metrics_bind) {
        (true, None) => routes.merge(crate::router::metrics()),
        _ => routes,
    };
    let routes = match metrics {
        true => routes.route_layer(middleware::from_fn(crate::telemetry::http::mark_route)),
        false => routes,
    };
    let app = routes
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(middleware::from_fn_with_state(
            BodyBudget::new(
                state.config.max_body_bytes_in_flight,
                u64::try_from(max_body).unwrap_or(u64::MAX),
            ),
            body_budget::limit,
        ))
        .layer(CatchPanicLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(middleware::from_fn(outcome_layer::ensure_outcome))
        .layer(middleware::from_fn(outcome_layer::bound_request_head))
        .layer(cors())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %request_id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .with_state(state);
    match metrics {
        true => app.layer(middleware::from_fn(crate::telemetry::http::track)),
        false => app,
    }
}

/// The router of `--metrics-bind`'s own listener: `/metrics` alone.
pub fn metrics_router(state: AppState) -> Router {
    crate::router::metrics().with_state(state)
}
