//! The sign-in page (`POST /auth/login`): a username and password, throttled per username
//! and source address, then a fresh session and the next step of a pending request (or the
//! page the user came from).

use std::net::SocketAddr;
use std::sync::LazyLock;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;

use super::app_card::AppCard;
use super::steps::{OTHER_USER, launch_of, next_step, pending_of, url};
use crate::audit::{Agent, Event, Kind, Origin, Outcome};
use crate::config::ServeConfig;
use crate::crypto::{hash_secret, verify_secret};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::auth::{Pending, Session};
use crate::web::error::PageResult;
use crate::web::html::{html, redirect};
use crate::web::session::{self, Browser};
use crate::web::throttle::{Attempt, Reserved, source_of};

#[derive(Template)]
#[template(path = "auth/login.html")]
pub struct LoginPage<'a> {
    pub action: &'a str,
    pub csrf_token: &'a str,
    pub pending: Option<&'a str>,
    pub return_to: Option<&'a str>,
    pub app_name: Option<&'a str>,
    /// The app of a pending authorization request (logo and links).
    pub app: Option<AppCard>,
    pub message: Option<&'a str>,
    /// Filled in for an EHR launch: only the launch's user may sign in.
    pub username: Option<&'a str>,
}

/// Verified when the username is unknown, so both failures take the same time.
static UNKNOWN_USER_HASH: LazyLock<String> = LazyLock::new(|| hash_secret("kiln-unknown-user"));

/// Pages that may send a signed-in user back to themselves after the login form.
const RETURN_PATHS: [&str; 3] = ["/auth/ehr", "/auth/apps", "/admin"];

/// What a disabled user is told, only once their password proved who they are.
const DISABLED: &str = "This account is disabled. Ask an administrator to enable it.";

/// `POST /auth/login`.
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    origin: Origin,
    jar: CookieJar,
    body: Bytes,
) -> PageResult {
    let form = Fields::parse(&body);
    let source = source_of(peer.map(|Extension(ConnectInfo(peer))| peer));
    let (state, jar, form) = (&state, &jar, &form);
    let session = session::posted(&state.store, jar, form).await?;
    let pending = match form.get("pending") {
        Some(id) => Some(pending_of(&state.store, &session, Some(id)).await?),
        None => None,
    };
    let return_to = form
        .get("return_to")
        .and_then(|path| RETURN_PATHS.iter().find(|p| **p == path).copied());
    let username = form.get("username").unwrap_or("");
    let password = form.get("password").unwrap_or("");
    let attempt = match Attempt::reserve(
        &state.store,
        "user",
        username,
        &source,
        crate::auth::now(),
    )
    .await?
    {
        Reserved::Go(attempt) => attempt,
        Reserved::Throttled(message) => {
            return refuse_login(
                state,
                (&origin, username),
                &session,
                pending.as_ref(),
                return_to,
                StatusCode::TOO_MANY_REQUESTS,
                &message,
            )
            .await;
        }
    };
    let user = state.store.user(username).await?;
    let hash = user
        .as_ref()
        .map_or(UNKNOWN_USER_HASH.as_str(), |u| u.password_hash.as_str());
    let verified = verify_secret(password, hash);
    let Some(user) = user.filter(|_| verified) else {
        let message = "Incorrect username or password.";
        return refuse_login(
            state,
            (&origin, username),
            &session,
            pending.as_ref(),
            return_to,
            StatusCode::UNAUTHORIZED,
            message,
        )
        .await;
    };
    attempt.succeeded(&state.store).await?;
    if user.disabled {
        return refuse_login(
            state,
            (&origin, username),
            &session,
            pending.as_ref(),
            return_to,
            StatusCode::FORBIDDEN,
            DISABLED,
        )
        .await;
    }
    if let Some(pending) = &pending
        && let Some(launch) = launch_of(&state.store, pending).await?
        && launch.username != user.username
    {
        return refuse_login(
            state,
            (&origin, username),
            &session,
            Some(pending),
            return_to,
            StatusCode::FORBIDDEN,
            OTHER_USER,
        )
        .await;
    }
    record_sign_in(state, &origin, &user.username, None).await?;
    // A new session id at sign-in, so an id planted before it is worth nothing after.
    // A developer signed in to the portal in this browser stays signed in.
    let browser = Browser::start(state, Some(&user.username), session.developer.as_deref()).await?;
    state.store.delete_session(&session.session_hash).await?;
    let response = match pending {
        Some(mut pending) => {
            let session_hash = &browser.session.session_hash;
            state
                .store
                .rebind_pending(&pending.pending_id, session_hash)
                .await?;
            pending.session_hash = session_hash.clone();
            next_step(state, &browser.session, &pending, None).await?
        }
        None => redirect(&url(&state.config, return_to.unwrap_or("/auth/apps"))),
    };
    Ok(browser.respond(response))
}

/// Appends a sign-in's event: success, or the failure's `message`.
pub async fn record_sign_in(
    state: &AppState,
    origin: &Origin,
    username: &str,
    failure: Option<&str>,
) -> PageResult<()> {
    let (outcome, description) = match failure {
        None => (Outcome::Success, "signed in"),
        Some(message) => (Outcome::Minor, message),
    };
    let event = Event::security(Kind::Login, outcome, Agent::user(username), origin.clone())
        .with_description(description);
    Ok(state.audit.record(event).await?)
}

/// Appends a sign-out's event.
pub async fn record_sign_out(state: &AppState, origin: Origin, username: &str) -> PageResult<()> {
    let event = Event::security(
        Kind::Logout,
        Outcome::Success,
        Agent::user(username),
        origin,
    )
    .with_description("signed out");
    Ok(state.audit.record(event).await?)
}

/// The login form again, with why the last attempt failed (recorded in the audit log).
async fn refuse_login(
    state: &AppState,
    (origin, username): (&Origin, &str),
    session: &Session,
    pending: Option<&Pending>,
    return_to: Option<&str>,
    status: StatusCode,
    message: &str,
) -> PageResult {
    record_sign_in(state, origin, username, Some(message)).await?;
    match pending {
        Some(pending) => next_step(state, session, pending, Some((status, message))).await,
        None => Ok(login_page(
            &state.config,
            session,
            None,
            return_to,
            None,
            status,
            Some(message),
        )),
    }
}

pub fn login_page(
    config: &ServeConfig,
    session: &Session,
    pending: Option<&str>,
    return_to: Option<&str>,
    app_name: Option<&str>,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    html(
        status,
        &LoginPage {
            action: &url(config, "/auth/login"),
            csrf_token: &session.csrf_token,
            pending,
            return_to,
            app_name,
            app: None,
            message,
            username: None,
        },
    )
}
