//! The connected-apps page (`management_endpoint`): a signed-in user sees the apps they
//! authorized and revokes them; revoking a grant stops its tokens at once.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;

use super::login::login_page;
use super::steps::url;
use crate::access::scope::ScopeSet;
use crate::audit::Origin;
use crate::http::form::Fields;
use crate::state::AppState;
use crate::web::error::{PageError, PageResult};
use crate::web::html::{date, html, redirect};
use crate::web::session::{self, Browser};

/// One row of the connected-apps page.
pub struct GrantRow {
    pub id: String,
    pub app: String,
    pub scopes: Vec<String>,
    pub patient: Option<String>,
    pub date: String,
}

#[derive(Template)]
#[template(path = "auth/apps.html")]
pub struct AppsPage<'a> {
    pub revoke_action: &'a str,
    pub logout_action: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub grants: Vec<GrantRow>,
}

/// `GET /auth/apps`.
pub async fn page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let browser = Browser::open(&state, &jar).await?;
    let session = &browser.session;
    let Some(username) = &session.username else {
        let page = login_page(
            &state.config,
            session,
            None,
            Some("/auth/apps"),
            None,
            StatusCode::OK,
            None,
        );
        return Ok(browser.respond(page));
    };
    let mut grants = Vec::new();
    for grant in state.store.user_grants(username).await? {
        let app = match state.store.client(&grant.client_id).await? {
            Some(client) => client.name,
            None => continue,
        };
        grants.push(GrantRow {
            id: grant.grant_id,
            app,
            scopes: ScopeSet::parse(&grant.scope)
                .iter()
                .map(ToString::to_string)
                .collect(),
            patient: grant.patient.map(|id| format!("Patient/{id}")),
            date: date(grant.created_at),
        });
    }
    let page = html(
        StatusCode::OK,
        &AppsPage {
            revoke_action: &url(&state.config, "/auth/apps/revoke"),
            logout_action: &url(&state.config, "/auth/logout"),
            csrf_token: &session.csrf_token,
            username,
            grants,
        },
    );
    Ok(browser.respond(page))
}

/// `POST /auth/apps/revoke` with `grant`.
pub async fn revoke(State(state): State<AppState>, jar: CookieJar, body: Bytes) -> PageResult {
    let form = Fields::parse(&body);
    let (state, jar, form) = (&state, &jar, &form);
    let session = session::posted(&state.store, jar, form).await?;
    let Some(username) = &session.username else {
        return Err(PageError::forbidden("Sign in to manage your apps."));
    };
    let grant = match form.get("grant") {
        Some(id) => state.store.grant(id).await?,
        None => None,
    };
    match grant {
        Some(grant) if grant.username.as_ref() == Some(username) => {
            state.store.revoke_grant(&grant.grant_id).await?;
            Ok(redirect(&url(&state.config, "/auth/apps")))
        }
        _ => Err(PageError::bad_request("No such connected app.")),
    }
}

/// `POST /auth/logout`: signs the EHR user out (a developer signed in to the portal in the
/// same browser stays signed in there).
pub async fn logout(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    body: Bytes,
) -> PageResult {
    let form = Fields::parse(&body);
    let session = session::posted(&state.store, &jar, &form).await?;
    if let Some(username) = &session.username {
        super::login::record_sign_out(&state, origin, username).await?;
    }
    state
        .store
        .set_session_user(&session.session_hash, None)
        .await?;
    Ok(redirect(&url(&state.config, "/auth/apps")))
}
