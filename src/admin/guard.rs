//! The one door of the admin console: [`Admin`], the extractor every admin handler takes, so
//! none can forget the check. A GET needs a signed-in admin (signed out: Kiln's login form,
//! returning to `/admin`); a POST also needs the session's CSRF token in its form. A signed-in
//! user who is not an admin gets 403 on every page and action.

use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::nav::{Console, SECTIONS};
use crate::auth::pages::login::login_page;
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::auth::{Session, User};
use crate::web::error::{PageError, PageResult};
use crate::web::html::url;
use crate::web::session::{self, Browser};

/// The largest form an admin page posts.
const MAX_FORM_BYTES: usize = 64 * 1024;

const NOT_ADMIN: &str = "The admin console is for Kiln administrators. Sign in as an \
                         administrator, or ask one to give you the admin role.";

/// A signed-in administrator, and on a POST the form they sent (its CSRF token checked); the
/// handler's last extractor.
pub struct Admin {
    pub user: User,
    pub session: Session,
    /// The posted form; empty on a GET.
    pub form: Fields,
}

impl FromRequest<AppState> for Admin {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Admin, Response> {
        admit(request, state)
            .await
            .map_err(IntoResponse::into_response)?
    }
}

/// The admin of a request; else the login form (`Ok(Err(…))`), or why not (`Err`).
async fn admit(request: Request, state: &AppState) -> PageResult<Result<Admin, Response>> {
    let (parts, body) = request.into_parts();
    let jar = CookieJar::from_headers(&parts.headers);
    match parts.method {
        Method::GET | Method::HEAD => {
            let browser = Browser::open(state, &jar).await?;
            Ok(match admin_of(state, &browser.session).await? {
                Some(user) => Ok(Admin {
                    user,
                    session: browser.session,
                    form: Fields(Vec::new()),
                }),
                None => {
                    let page = login_page(
                        &state.config,
                        &browser.session,
                        None,
                        Some("/admin"),
                        None,
                        StatusCode::OK,
                        None,
                    );
                    Err(browser.respond(page))
                }
            })
        }
        Method::POST => {
            let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
                .await
                .map_err(|_| PageError::bad_request("This form is too large."))?;
            let form = Fields::parse(&bytes);
            let session = session::posted(&state.store, &jar, &form).await?;
            let user = admin_of(state, &session)
                .await?
                .ok_or_else(|| PageError::forbidden(NOT_ADMIN))?;
            Ok(Ok(Admin {
                user,
                session,
                form,
            }))
        }
        _ => Ok(Err(StatusCode::METHOD_NOT_ALLOWED.into_response())),
    }
}

/// The session's user when they are an admin; `None` when nobody (or a user since removed) is
/// signed in; 403 for anyone else. Disabled users have no session (`Store::session`).
async fn admin_of(state: &AppState, session: &Session) -> PageResult<Option<User>> {
    let Some(username) = &session.username else {
        return Ok(None);
    };
    match state.store.user(username).await? {
        Some(user) if user.admin && !user.disabled => Ok(Some(user)),
        Some(_) => Err(PageError::forbidden(NOT_ADMIN)),
        None => Ok(None),
    }
}

impl Admin {
    /// What every console page shows around its section: the navigation (with `current`, the
    /// path of the page's section, marked), who is signed in and the sign-out form.
    pub fn console(&self, state: &AppState, current: &'static str) -> Console {
        Console {
            base: url(&state.config, ""),
            csrf_token: self.session.csrf_token.clone(),
            username: self.user.username.clone(),
            sections: SECTIONS,
            current,
        }
    }

    /// A field of the posted form, trimmed (`""` when absent).
    pub fn field(&self, name: &str) -> &str {
        self.form.get(name).unwrap_or("").trim()
    }
}
