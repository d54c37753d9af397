//! The sign-in page (`POST /auth/login`): a username and password, throttled per username
//! and source address, then a fresh session and the next step of a pending request (or the
//! page the user came from).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;

use super::steps::{OTHER_USER, launch_of, next_step, pending_of, url};
use crate::config::ServeConfig;
use crate::crypto::{hash_secret, verify_secret};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::auth::{Pending, Session};
use crate::web::error::PageResult;
use crate::web::html::{html, redirect};
use crate::web::session::{self, Browser};

#[derive(Template)]
#[template(path = "auth/login.html")]
pub struct LoginPage<'a> {
    pub action: &'a str,
    pub csrf_token: &'a str,
    pub pending: Option<&'a str>,
    pub return_to: Option<&'a str>,
    pub app_name: Option<&'a str>,
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

/// Failed sign-ins of one username from one source address within [`LOGIN_WINDOW`] after
/// which that username's sign-in from that source waits for the window to end (OWASP:
/// throttle password guessing per account). Per source, so guessing from one address does
/// not lock the user out everywhere else.
const MAX_LOGIN_FAILURES: i64 = 5;
/// Failed sign-ins from one source address, whatever the usernames, within [`LOGIN_WINDOW`]
/// after which sign-in from that source waits (one password sprayed over many usernames).
const MAX_SOURCE_FAILURES: i64 = 25;
/// Seconds of the window failed sign-ins are counted in.
const LOGIN_WINDOW: i64 = 15 * 60;

/// The source a sign-in is counted against: the socket peer's address (no proxy header is
/// trusted), an IPv6 peer by its /64 network, which one host can hop around freely.
fn source_of(peer: Option<SocketAddr>) -> String {
    match peer.map(|peer| peer.ip().to_canonical()) {
        Some(IpAddr::V6(ip)) => {
            let network = u128::from(ip) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(network))
        }
        Some(IpAddr::V4(ip)) => ip.to_string(),
        None => "unknown".to_string(),
    }
}

/// `POST /auth/login`.
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
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
    let user_key = format!(
        "user {source} {}",
        username.chars().take(256).collect::<String>()
    );
    let source_key = format!("source {source}");
    let now = crate::auth::now();
    let window_after = now - LOGIN_WINDOW;
    // Each attempt is reserved before its password is checked, so concurrent guesses get
    // no more checks than the limit; refused before any check, guessing gains nothing.
    let refusal = |started: i64, message: &str| {
        let minutes = (started + LOGIN_WINDOW - now + 59) / 60;
        format!("{message} Try again in {minutes} minute(s).")
    };
    let attempts = state
        .store
        .reserve_login_attempt(&user_key, now, window_after, MAX_LOGIN_FAILURES)
        .await?;
    let throttled = if attempts.count > MAX_LOGIN_FAILURES {
        Some(refusal(
            attempts.window_start,
            "Too many failed sign-ins for this username.",
        ))
    } else {
        let from_source = state
            .store
            .reserve_login_attempt(&source_key, now, window_after, MAX_SOURCE_FAILURES)
            .await?;
        if from_source.count > MAX_SOURCE_FAILURES {
            state.store.release_login_attempt(&user_key).await?;
            Some(refusal(
                from_source.window_start,
                "Too many failed sign-ins from your network.",
            ))
        } else {
            None
        }
    };
    if let Some(message) = throttled {
        return refuse_login(
            state,
            &session,
            pending.as_ref(),
            return_to,
            StatusCode::TOO_MANY_REQUESTS,
            &message,
        )
        .await;
    }
    let user = state.store.user(username).await?;
    let hash = user
        .as_ref()
        .map_or(UNKNOWN_USER_HASH.as_str(), |u| u.password_hash.as_str());
    let verified = verify_secret(password, hash);
    let Some(user) = user.filter(|_| verified) else {
        let message = "Incorrect username or password.";
        return refuse_login(
            state,
            &session,
            pending.as_ref(),
            return_to,
            StatusCode::UNAUTHORIZED,
            message,
        )
        .await;
    };
    state.store.clear_login_attempts(&user_key).await?;
    state.store.release_login_attempt(&source_key).await?;
    if user.disabled {
        return refuse_login(
            state,
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
            &session,
            Some(pending),
            return_to,
            StatusCode::FORBIDDEN,
            OTHER_USER,
        )
        .await;
    }
    // A new session id at sign-in, so an id planted before it is worth nothing after.
    let browser = Browser::start(state, Some(&user.username)).await?;
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

/// The login form again, with why the last attempt failed.
async fn refuse_login(
    state: &AppState,
    session: &Session,
    pending: Option<&Pending>,
    return_to: Option<&str>,
    status: StatusCode,
    message: &str,
) -> PageResult {
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
            message,
            username: None,
        },
    )
}
