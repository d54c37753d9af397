//! `GET` and `POST /auth/authorize`: has the authorization request checked
//! (`oauth/authorize.rs`) and shows the outcome: an error page, an error redirect to the app,
//! or (recorded as pending for this browser) the first page: login, patient picker or consent.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::steps;
use crate::auth::oauth::authorize::{Outcome, check};
use crate::crypto::random_token;
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::auth::Pending;
use crate::web::error::{PageError, PageResult};
use crate::web::html::redirect;
use crate::web::session::Browser;

/// How long the user has to sign in and answer the consent page.
const PENDING_LIFETIME_SECS: i64 = 30 * 60;

pub async fn authorize_get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> PageResult {
    let form = Fields::parse(query.unwrap_or_default().as_bytes());
    authorize(&state, &jar, &form).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> PageResult {
    authorize(&state, &jar, &Fields::parse(&body)).await
}

async fn authorize(state: &AppState, jar: &CookieJar, form: &Fields) -> PageResult {
    let fhir_base = state.config.fhir_base();
    let checked = match check(&state.store, &fhir_base, form).await {
        Ok(Outcome::Proceed(checked)) => *checked,
        Ok(Outcome::ShowError(detail)) => return Err(PageError::bad_request(detail)),
        Ok(Outcome::RedirectError(refusal)) => {
            return Ok(error_redirect(
                &refusal.redirect_uri,
                refusal.error,
                &refusal.description,
                refusal.state.as_deref(),
            ));
        }
        Err(error) => return Err(PageError::internal(error)),
    };
    let browser = Browser::open(state, jar).await?;
    let pending = Pending {
        pending_id: random_token(),
        session_hash: browser.session.session_hash.clone(),
        client_id: checked.client.client_id.clone(),
        redirect_uri: checked.redirect_uri,
        scope: checked.scope.to_string(),
        state: Some(checked.state),
        code_challenge: checked.code_challenge,
        nonce: checked.nonce,
        launch_hash: checked.launch.map(|launch| launch.launch_hash),
        patient: None,
        encounter: None,
        expires_at: crate::auth::now() + PENDING_LIFETIME_SECS,
    };
    state
        .store
        .insert_pending(&pending, crate::auth::now())
        .await?;
    let page = steps::next_step(state, &browser.session, &pending, None).await?;
    Ok(browser.respond(page))
}

/// A redirect back to the app with an RFC 6749 §4.1.2.1 error.
pub fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    back_to_app(redirect_uri, &pairs)
}

/// A redirect to a registered redirect URI with `pairs` added to its query.
pub fn back_to_app(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    match reqwest::Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            redirect(url.as_str())
        }
        Err(error) => PageError::internal(error).into_response(),
    }
}
