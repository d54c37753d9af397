//! Signing in to the developer portal (`/developer/signin`) and out
//! (`/developer/signout`): an e-mail address and password, throttled like the EHR sign-in
//! (`web::throttle`), refused until the address is verified; a new session id at sign-in.
//! Every sign-in, refused or not, and every sign-out is recorded in the audit log.

use std::net::SocketAddr;
use std::sync::LazyLock;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;

use super::checks;
use super::signed_in;
use crate::audit::{Agent, Event, Kind, Origin, Outcome, Subject};
use crate::crypto::{hash_secret, verify_secret};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::web::error::PageResult;
use crate::web::html::{html, redirect, url};
use crate::web::session::{self, Browser};
use crate::web::throttle::{Attempt, Reserved, source_of};

#[derive(Template)]
#[template(path = "portal/signin.html")]
struct SigninPage<'a> {
    csrf_token: &'a str,
    email: &'a str,
    message: Option<&'a str>,
    /// The password was right but the address is not verified: offer a new link.
    unverified: bool,
}

/// Verified when the address has no account, so both failures take the same time.
static UNKNOWN_ACCOUNT_HASH: LazyLock<String> =
    LazyLock::new(|| hash_secret("kiln-unknown-developer"));

const WRONG: &str = "Incorrect e-mail address or password.";
const UNVERIFIED: &str = "Your address is not verified yet: open the link we mailed you. \
     Lost it? Send it again.";
const DISABLED: &str = "This developer account is disabled. Contact the operator of this server.";

/// `GET /developer/signin` (a signed-in developer goes to the portal's home).
pub async fn page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    if signed_in::current(&state, &jar).await?.is_some() {
        return Ok(redirect(&url(&state.config, "/developer")));
    }
    let browser = Browser::open(&state, &jar).await?;
    let page = signin_page(&browser.session.csrf_token, "", StatusCode::OK, None, false);
    Ok(browser.respond(page))
}

fn signin_page(
    csrf_token: &str,
    email: &str,
    status: StatusCode,
    message: Option<&str>,
    unverified: bool,
) -> Response {
    html(
        status,
        &SigninPage {
            csrf_token,
            email,
            message,
            unverified,
        },
    )
}

/// `POST /developer/signin` with email and password.
pub async fn signin(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    origin: Origin,
    jar: CookieJar,
    body: Bytes,
) -> PageResult {
    let form = Fields::parse(&body);
    let session = session::posted(&state.store, &jar, &form).await?;
    let typed = form.get("email").unwrap_or("");
    let password = form.get("password").unwrap_or("");
    let refuse = async |status, message: &str, unverified, developer: Option<&str>| -> PageResult {
        let typed: String = typed.chars().take(MAX_RECORDED_CHARS).collect();
        record(&state, &origin, &typed, developer, Some(message)).await?;
        Ok(signin_page(
            &session.csrf_token,
            &typed,
            status,
            Some(message),
            unverified,
        ))
    };
    let Ok(email) = checks::email(typed) else {
        return refuse(StatusCode::UNAUTHORIZED, WRONG, false, None).await;
    };
    let source = source_of(peer.map(|Extension(ConnectInfo(peer))| peer));
    let now = crate::fhir::instant::now_secs();
    let attempt = match Attempt::reserve(&state.store, "developer", &email, &source, now).await? {
        Reserved::Go(attempt) => attempt,
        Reserved::Throttled(message) => {
            return refuse(StatusCode::TOO_MANY_REQUESTS, &message, false, None).await;
        }
    };
    let account = state.store.developer_login(&email).await?;
    let hash = account
        .as_ref()
        .map_or(UNKNOWN_ACCOUNT_HASH.as_str(), |a| a.password_hash.as_str());
    let verified = verify_secret(password, hash);
    let Some(account) = account.filter(|_| verified) else {
        return refuse(StatusCode::UNAUTHORIZED, WRONG, false, None).await;
    };
    attempt.succeeded(&state.store).await?;
    let developer = account.developer;
    if developer.disabled {
        return refuse(
            StatusCode::FORBIDDEN,
            DISABLED,
            false,
            Some(&developer.account_id),
        )
        .await;
    }
    if developer.verified_at.is_none() {
        return refuse(
            StatusCode::FORBIDDEN,
            UNVERIFIED,
            true,
            Some(&developer.account_id),
        )
        .await;
    }
    // A new session id at sign-in, so an id planted before it is worth nothing after; an
    // EHR user signed in to this browser stays signed in.
    let browser = Browser::start(
        &state,
        session.username.as_deref(),
        Some(&developer.account_id),
    )
    .await?;
    state.store.delete_session(&session.session_hash).await?;
    record(&state, &origin, &email, Some(&developer.account_id), None).await?;
    Ok(browser.respond(redirect(&url(&state.config, "/developer"))))
}

/// The most of a typed address kept in an event or shown again.
const MAX_RECORDED_CHARS: usize = 320;

/// Appends a developer's sign-in event (by the address typed; about their account when it
/// is known): success, or the failure's `message`.
async fn record(
    state: &AppState,
    origin: &Origin,
    email: &str,
    developer: Option<&str>,
    failure: Option<&str>,
) -> PageResult<()> {
    let (outcome, description) = match failure {
        None => (Outcome::Success, "developer portal: signed in"),
        Some(message) => (Outcome::Minor, message),
    };
    let mut event = Event::security(Kind::Login, outcome, Agent::user(email), origin.clone())
        .with_description(description);
    if let Some(developer) = developer {
        event = event.with_subject(Subject::developer(developer));
    }
    Ok(state.audit.record(event).await?)
}

/// `POST /developer/signout`.
pub async fn signout(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    body: Bytes,
) -> PageResult {
    let form = Fields::parse(&body);
    let session = session::posted(&state.store, &jar, &form).await?;
    state
        .store
        .set_session_developer(&session.session_hash, None)
        .await?;
    if let Some(developer) = &session.developer {
        let email = state.store.developer(developer).await?.map(|d| d.email);
        let agent = Agent::user(email.unwrap_or_else(|| developer.clone()));
        let event = Event::security(Kind::Logout, Outcome::Success, agent, origin)
            .with_subject(Subject::developer(developer.as_str()))
            .with_description("developer portal: signed out");
        state.audit.record(event).await?;
    }
    Ok(redirect(&url(&state.config, "/developer/signin")))
}
