//! The bearer-token check in front of the FHIR API: turns `Authorization: Bearer …` into an
//! [`Access`] for the handlers, or answers 401 with `WWW-Authenticate` and an
//! OperationOutcome. `/metadata` stays public. Live tokens are found through the
//! replica's cache of verified tokens (`token_cache`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::token_cache::TokenCache;
use crate::access::reach::{Access, unauthorized};
use crate::fhir::outcome::FhirError;
use crate::state::AppState;

/// What the bearer check needs: the application state and the replica's token cache.
#[derive(Clone)]
pub struct BearerCheck {
    state: AppState,
    cache: Arc<TokenCache>,
}

impl BearerCheck {
    /// The check for `state`, with a fresh token cache (on PostgreSQL, with its listener of
    /// revocations). One per application.
    pub fn new(state: &AppState) -> BearerCheck {
        let ttl = Duration::from_secs(state.config.auth.token_cache_ttl);
        BearerCheck {
            cache: Arc::new(TokenCache::new(&state.store, ttl)),
            state: state.clone(),
        }
    }
}

pub async fn authenticate(
    State(BearerCheck { state, cache }): State<BearerCheck>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.uri().path().ends_with("/metadata") {
        return next.run(request).await;
    }
    let access = match bearer_token(&request) {
        Bearer::Missing if state.config.auth.anonymous_access => Access::Full,
        Bearer::Missing => return challenge(None),
        Bearer::Malformed => {
            return challenge(Some("the Authorization header is not a Bearer token"));
        }
        Bearer::Token(token) => {
            match cache.granted(&state.store, token, crate::auth::now()).await {
                Ok(Some(granted)) => Access::Token(granted),
                Ok(None) => {
                    return challenge(Some("the access token is unknown, expired or revoked"));
                }
                Err(error) => return FhirError::from(error).into_response(),
            }
        }
    };
    let with_token = matches!(access, Access::Token(_));
    request.extensions_mut().insert(access.clone());
    let mut response = next.run(request).await;
    // For the audit layer around this check: who asked.
    response.extensions_mut().insert(access);
    // RFC 6750 §3.1: a token that lacks the scope for the request.
    if with_token && response.status() == StatusCode::FORBIDDEN {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"kiln\", error=\"insufficient_scope\""),
        );
    }
    response
}

enum Bearer<'a> {
    Missing,
    Malformed,
    Token(&'a str),
}

fn bearer_token(request: &Request) -> Bearer<'_> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Bearer::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Bearer::Malformed;
    };
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Bearer::Token(token.trim())
        }
        _ => Bearer::Malformed,
    }
}

/// 401 per RFC 6750 §3: `error="invalid_token"` when a token was sent but is not usable.
fn challenge(problem: Option<&str>) -> Response {
    let mut error = unauthorized();
    let header_value = match problem {
        Some(problem) => {
            error = FhirError::new(
                error.status,
                crate::fhir::outcome::IssueCode::Login,
                problem,
            );
            format!(
                "Bearer realm=\"kiln\", error=\"invalid_token\", error_description=\"{problem}\""
            )
        }
        None => "Bearer realm=\"kiln\"".to_owned(),
    };
    let mut response = error.into_response();
    if let Ok(value) = HeaderValue::from_str(&header_value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
