//! The developer signed in to this browser: what every portal page behind sign-in starts
//! with. A session names the developer by account id; an account that is disabled (or
//! gone) counts as signed out at once.

use axum::response::Response;
use axum_extra::extract::CookieJar;

use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::auth::Session;
use crate::store::developers::Developer;
use crate::web::error::{PageError, PageResult};
use crate::web::html::{redirect, url};
use crate::web::session;

/// A signed-in developer and the browser session (its CSRF token for the page's forms).
pub struct SignedIn {
    pub session: Session,
    pub developer: Developer,
}

/// The developer signed in to the request's session, if any.
pub async fn current(state: &AppState, jar: &CookieJar) -> PageResult<Option<SignedIn>> {
    let Some(session) = session::current(&state.store, jar).await? else {
        return Ok(None);
    };
    of_session(state, session).await
}

/// The developer of a form post: the CSRF token checked (403), then signed in (403 when
/// not).
pub async fn posted(state: &AppState, jar: &CookieJar, form: &Fields) -> PageResult<SignedIn> {
    let session = session::posted(&state.store, jar, form).await?;
    of_session(state, session)
        .await?
        .ok_or_else(|| PageError::forbidden("Sign in to the developer portal first."))
}

/// Where a page behind sign-in sends a browser that is not signed in.
pub fn to_sign_in(state: &AppState) -> Response {
    redirect(&url(&state.config, "/developer/signin"))
}

async fn of_session(state: &AppState, session: Session) -> PageResult<Option<SignedIn>> {
    let Some(account_id) = &session.developer else {
        return Ok(None);
    };
    let developer = state.store.developer(account_id).await?;
    Ok(developer
        .filter(|developer| !developer.disabled && developer.verified_at.is_some())
        .map(|developer| SignedIn { session, developer }))
}
