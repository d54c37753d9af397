//! Browser sessions of Kiln's pages: an opaque random id in a cookie (stored only as a
//! digest), who is signed in (an EHR user, a portal developer, each on its own), and the
//! CSRF token every form must send back.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};

use super::error::{PageError, PageResult};
use crate::crypto::{digest_hex, random_token, same};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::Store;
use crate::store::auth::Session;

const COOKIE: &str = "kiln_session";
const LIFETIME_SECS: i64 = 8 * 3600;

/// The browser's session, and the cookie to set when it is new.
pub struct Browser {
    pub session: Session,
    new_cookie: Option<String>,
}

impl Browser {
    /// The session of the request's cookie, or a new one.
    pub async fn open(state: &AppState, jar: &CookieJar) -> PageResult<Browser> {
        if let Some(session) = current(&state.store, jar).await? {
            return Ok(Browser {
                session,
                new_cookie: None,
            });
        }
        Browser::start(state, None, None).await
    }

    /// A fresh session (a new id), optionally already signed in as an EHR user (`username`)
    /// and as a developer (`developer`: an account id).
    pub async fn start(
        state: &AppState,
        username: Option<&str>,
        developer: Option<&str>,
    ) -> PageResult<Browser> {
        let id = random_token();
        let now = crate::fhir::instant::now_secs();
        let session = Session {
            session_hash: digest_hex(&id),
            username: username.map(str::to_owned),
            developer: developer.map(str::to_owned),
            csrf_token: random_token(),
            expires_at: now + LIFETIME_SECS,
        };
        state.store.insert_session(&session, now).await?;
        let secure = state.config.base_url.starts_with("https://");
        let cookie = Cookie::build((COOKIE, id))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(secure)
            .max_age(time::Duration::seconds(LIFETIME_SECS))
            .build();
        Ok(Browser {
            session,
            new_cookie: Some(cookie.to_string()),
        })
    }

    /// Adds the `Set-Cookie` of a new session to `response`.
    pub fn respond(&self, mut response: Response) -> Response {
        if let Some(cookie) = &self.new_cookie
            && let Ok(value) = HeaderValue::from_str(cookie)
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }
}

/// The live session named by the request's cookie, if any.
pub async fn current(store: &Store, jar: &CookieJar) -> PageResult<Option<Session>> {
    let Some(cookie) = jar.get(COOKIE) else {
        return Ok(None);
    };
    let session = store.session(&digest_hex(cookie.value())).await?;
    Ok(session.filter(|s| s.expires_at > crate::fhir::instant::now_secs()))
}

/// The session of a form post whose `csrf_token` matches it; anything else is refused (403).
pub async fn posted(store: &Store, jar: &CookieJar, form: &Fields) -> PageResult<Session> {
    let session = current(store, jar).await?.ok_or_else(PageError::csrf)?;
    match form.get("csrf_token") {
        Some(token) if same(token, &session.csrf_token) => Ok(session),
        _ => Err(PageError::csrf()),
    }
}
