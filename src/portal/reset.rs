//! Password reset of a developer account: the request by address (`/developer/reset`,
//! answered the same whether or not the address has an account), then the mailed
//! single-use link (1 hour) to a new password (`/developer/reset/new`), which ends every
//! portal sign-in of the account.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;

use super::account::{LinkQuery, dead_link};
use super::checks;
use super::mail::{self, Message};
use super::notice::{check_your_mail, notice};
use crate::crypto::{digest_hex, hash_secret};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::developers::LinkPurpose;
use crate::web::error::PageResult;
use crate::web::html::html;
use crate::web::session::{self, Browser};

#[derive(Template)]
#[template(path = "portal/reset_request.html")]
struct RequestPage<'a> {
    csrf_token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "portal/reset.html")]
struct NewPasswordPage<'a> {
    csrf_token: &'a str,
    token: &'a str,
    email: &'a str,
    password_error: Option<String>,
    confirm_error: Option<&'a str>,
}

const DEAD: &str = "Ask for a new link on the password reset page.";

/// `GET /developer/reset`.
pub async fn request_page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let browser = Browser::open(&state, &jar).await?;
    let page = RequestPage {
        csrf_token: &browser.session.csrf_token,
        email: "",
        error: None,
    };
    Ok(browser.respond(html(StatusCode::OK, &page)))
}

/// `POST /developer/reset` with email.
pub async fn request(State(state): State<AppState>, jar: CookieJar, body: Bytes) -> PageResult {
    let form = Fields::parse(&body);
    let session = session::posted(&state.store, &jar, &form).await?;
    let typed = form.get("email").unwrap_or("");
    let email = match checks::email(typed) {
        Ok(email) => email,
        Err(error) => {
            let page = RequestPage {
                csrf_token: &session.csrf_token,
                email: typed,
                error: Some(error),
            };
            return Ok(html(StatusCode::BAD_REQUEST, &page));
        }
    };
    if let Some(account) = state.store.developer_login(&email).await?
        && !account.developer.disabled
    {
        mail::send(&state, &account.developer, Message::Reset).await?;
    }
    Ok(check_your_mail(
        "If this address has a developer account, we sent it a link to choose a new password. \
         Open it within an hour; it works once.",
    ))
}

/// `GET /developer/reset/new?token=…`: the form for a new password, if the link is good.
pub async fn new_password_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<LinkQuery>,
) -> PageResult {
    let now = crate::fhir::instant::now_secs();
    let link = state
        .store
        .developer_link(&digest_hex(&query.token), LinkPurpose::Reset, now)
        .await?;
    let account = match link {
        Some(account_id) => state.store.developer(&account_id).await?,
        None => None,
    };
    let Some(developer) = account else {
        return Err(dead_link(DEAD));
    };
    let browser = Browser::open(&state, &jar).await?;
    let page = NewPasswordPage {
        csrf_token: &browser.session.csrf_token,
        token: &query.token,
        email: &developer.email,
        password_error: None,
        confirm_error: None,
    };
    Ok(browser.respond(html(StatusCode::OK, &page)))
}

/// `POST /developer/reset/new` with token, password and confirm.
pub async fn new_password(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> PageResult {
    let form = Fields::parse(&body);
    let session = session::posted(&state.store, &jar, &form).await?;
    let token = form.get("token").unwrap_or("");
    let link_hash = digest_hex(token);
    let now = crate::fhir::instant::now_secs();
    let password = form.get("password").unwrap_or("");
    let (policy, mismatch) =
        checks::new_password_problems(password, form.get("confirm").unwrap_or(""));
    if policy.is_some() || mismatch.is_some() {
        let link = state
            .store
            .developer_link(&link_hash, LinkPurpose::Reset, now)
            .await?;
        let account = match link {
            Some(account_id) => state.store.developer(&account_id).await?,
            None => None,
        };
        let Some(developer) = account else {
            return Err(dead_link(DEAD));
        };
        let page = NewPasswordPage {
            csrf_token: &session.csrf_token,
            token,
            email: &developer.email,
            password_error: policy,
            confirm_error: mismatch,
        };
        return Ok(html(StatusCode::BAD_REQUEST, &page));
    }
    match state
        .store
        .use_reset_link(&link_hash, &hash_secret(password), now)
        .await?
    {
        Some(_) => Ok(notice(
            "Password changed",
            "Your new password is set, and every other sign-in of your account has ended.",
            Some(("/developer/signin", "Sign in")),
        )),
        None => Err(dead_link(DEAD)),
    }
}
