//! The portal's home, `/developer`: "My Applications" for the signed-in developer (the
//! account, sign-out, and the apps section of `templates/portal/applications.html`; on a
//! sandbox deployment also their test personas and the launch simulator); a browser that is
//! not signed in is sent to sign in.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;

use super::apps::{Listed, listed};
use super::sandbox::{self, Persona};
use super::signed_in;
use crate::audit::Origin;
use crate::state::AppState;
use crate::store::developers::Developer;
use crate::web::error::PageResult;
use crate::web::html::html;

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage<'a> {
    csrf_token: &'a str,
    developer: &'a Developer,
    /// A sandbox deployment: the personas and the simulator show.
    sandbox: bool,
    personas: Vec<Persona>,
    apps: Vec<Listed>,
}

/// `GET /developer`.
pub async fn page(State(state): State<AppState>, jar: CookieJar, origin: Origin) -> PageResult {
    let Some(signed_in) = signed_in::current(&state, &jar).await? else {
        return Ok(signed_in::to_sign_in(&state));
    };
    let sandbox = state.config.onboarding.sandbox;
    let personas = if sandbox {
        sandbox::personas(&state, &signed_in.developer, &origin).await?
    } else {
        Vec::new()
    };
    let apps = listed(&state, &signed_in.developer).await?;
    Ok(html(
        StatusCode::OK,
        &HomePage {
            csrf_token: &signed_in.session.csrf_token,
            developer: &signed_in.developer,
            sandbox,
            personas,
            apps,
        },
    ))
}
