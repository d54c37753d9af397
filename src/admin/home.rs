//! The console's home page (`/admin`): a card per section with its counts; and signing out.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;

use super::guard::Admin;
use super::nav::{Card, Console};
use crate::audit::Origin;
use crate::state::AppState;
use crate::web::error::PageResult;
use crate::web::html::{html, redirect, url};

#[derive(Template)]
#[template(path = "admin/home.html")]
struct HomePage {
    console: Console,
    cards: Vec<Card>,
}

/// `GET /admin`.
pub async fn page(State(state): State<AppState>, admin: Admin) -> PageResult {
    let cards = vec![
        super::users::card(&state).await?,
        super::apps::card(&state).await?,
        super::developers::card(&state).await?,
        super::audit::card(&state).await?,
    ];
    Ok(html(
        StatusCode::OK,
        &HomePage {
            console: admin.console(&state, "/admin"),
            cards,
        },
    ))
}

/// `POST /admin/logout`: ends the session; the console shows the login form again.
pub async fn logout(State(state): State<AppState>, origin: Origin, admin: Admin) -> PageResult {
    crate::auth::pages::login::record_sign_out(&state, origin, &admin.user.username).await?;
    state
        .store
        .delete_session(&admin.session.session_hash)
        .await?;
    Ok(redirect(&url(&state.config, "/admin")))
}
