//! The request metrics: `track`, the outermost layer, times every request and counts it by
//! method, route template and status once the response head is ready; `mark_route`, a route
//! layer, tells it which route template answered (axum's `MatchedPath`, never the raw path,
//! so the labels stay few). A request no route answered is labelled `unmatched`.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Key, Label, Level, Metadata, SharedString};

use super::{HTTP_DURATION, HTTP_REQUESTS};

/// The `route` label of a request no route answered (404s of unknown paths, and requests a
/// layer in front of the routes refused first).
pub const UNMATCHED: &str = "unmatched";

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Where `mark_route` leaves the route template for `track`.
#[derive(Clone, Default)]
struct RouteSlot(Arc<OnceLock<MatchedPath>>);

/// Times the request and records it; the outermost layer of the application.
pub async fn track(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let slot = RouteSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let route = match slot.0.get() {
        Some(path) => SharedString::from_owned(path.as_str().to_string()),
        None => SharedString::const_str(UNMATCHED),
    };
    let status = SharedString::from_owned(response.status().as_u16().to_string());
    let labels = vec![
        Label::from_static_parts("method", method),
        Label::new("route", route),
        Label::new("status", status),
    ];
    // One set of labels for both metrics (what the macros would build twice).
    metrics::with_recorder(|recorder| {
        recorder
            .register_histogram(&Key::from_parts(HTTP_DURATION, labels.clone()), &METADATA)
            .record(seconds);
        recorder
            .register_counter(&Key::from_parts(HTTP_REQUESTS, labels), &METADATA)
            .increment(1);
    });
    response
}

/// Records the matched route template for `track`; a route layer, so it runs only for a
/// request a route answers.
pub async fn mark_route(request: Request, next: Next) -> Response {
    if let (Some(slot), Some(path)) = (
        request.extensions().get::<RouteSlot>(),
        request.extensions().get::<MatchedPath>(),
    ) {
        let _ = slot.0.set(path.clone());
    }
    next.run(request).await
}

/// The method's name, or `other` for a method HTTP does not define (a client could invent
/// any number of them).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
