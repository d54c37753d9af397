//! Creating a developer account (`/developer/signup`) and verifying its address
//! (`/developer/verify`, `/developer/verify/resend`). A sign-up with an address that already
//! has an account gets the same answer as a new one (no account enumeration); the address's
//! owner is told by mail instead.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::checks;
use super::mail::{self, Message};
use super::notice::{check_your_mail, notice};
use crate::crypto::{digest_hex, hash_secret};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::developers::Developer;
use crate::web::error::{PageError, PageResult};
use crate::web::html::html;
use crate::web::session::{self, Browser};

#[derive(Template)]
#[template(path = "portal/signup.html")]
struct SignupPage<'a> {
    csrf_token: &'a str,
    name: &'a str,
    organization: &'a str,
    email: &'a str,
    errors: SignupErrors,
}

/// Why a field was refused, shown next to it.
#[derive(Default)]
struct SignupErrors {
    name: Option<String>,
    organization: Option<String>,
    email: Option<String>,
    password: Option<String>,
    confirm: Option<String>,
}

impl SignupErrors {
    fn any(&self) -> bool {
        self.name.is_some()
            || self.organization.is_some()
            || self.email.is_some()
            || self.password.is_some()
            || self.confirm.is_some()
    }
}

const SIGNED_UP: &str = "We sent a link to the address you gave. Open it within 24 hours to \
     verify your address, then sign in. No mail? Check your spam folder, or sign in to have \
     the link sent again.";

/// `GET /developer/signup`.
pub async fn signup_page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let browser = Browser::open(&state, &jar).await?;
    let page = html(
        StatusCode::OK,
        &SignupPage {
            csrf_token: &browser.session.csrf_token,
            name: "",
            organization: "",
            email: "",
            errors: SignupErrors::default(),
        },
    );
    Ok(browser.respond(page))
}

/// `POST /developer/signup` with name, organization, email, password and confirm.
pub async fn signup(State(state): State<AppState>, jar: CookieJar, body: Bytes) -> PageResult {
    let form = Fields::parse(&body);
    let session = session::posted(&state.store, &jar, &form).await?;
    let field = |name: &str| form.get(name).unwrap_or("");
    let mut errors = SignupErrors::default();
    let name = match checks::text(field("name"), "name") {
        Ok(Some(name)) => Some(name),
        Ok(None) => {
            errors.name = Some("Enter your name.".into());
            None
        }
        Err(error) => {
            errors.name = Some(error);
            None
        }
    };
    let organization = checks::text(field("organization"), "organization")
        .map_err(|error| errors.organization = Some(error))
        .ok()
        .map(Option::unwrap_or_default);
    let email = checks::email(field("email"))
        .map_err(|error| errors.email = Some(error.into()))
        .ok();
    let (policy, mismatch) = checks::new_password_problems(field("password"), field("confirm"));
    errors.password = policy;
    errors.confirm = mismatch.map(str::to_owned);
    let (Some(name), Some(organization), Some(email), false) =
        (name, organization, email, errors.any())
    else {
        let page = SignupPage {
            csrf_token: &session.csrf_token,
            name: field("name"),
            organization: field("organization"),
            email: field("email"),
            errors,
        };
        return Ok(html(StatusCode::BAD_REQUEST, &page));
    };
    // Hashed whether or not the address is new, so both answers take the same time.
    let password_hash = hash_secret(field("password"));
    let developer = Developer {
        account_id: uuid::Uuid::new_v4().to_string(),
        email,
        name,
        organization,
        verified_at: None,
        disabled: false,
        created_at: crate::fhir::instant::now_secs(),
    };
    if state
        .store
        .insert_developer(&developer, &password_hash)
        .await?
    {
        mail::send(&state, &developer, Message::Verify).await?;
    } else if let Some(existing) = state.store.developer_login(&developer.email).await? {
        let existing = existing.developer;
        match (existing.disabled, existing.verified_at) {
            (true, _) => {}
            // A second sign-up before verifying (perhaps the first mail was lost): a new link.
            (false, None) => mail::send(&state, &existing, Message::Verify).await?,
            (false, Some(_)) => mail::send(&state, &existing, Message::AlreadyRegistered).await?,
        }
    }
    Ok(check_your_mail(SIGNED_UP))
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    pub token: String,
}

/// A link that is unknown, used or expired.
pub fn dead_link(what: &str) -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        format!("The link is unknown, was used already, or has expired. {what}"),
    )
}

/// `GET /developer/verify?token=…`: the link mailed at sign-up.
pub async fn verify(State(state): State<AppState>, Query(query): Query<LinkQuery>) -> PageResult {
    let now = crate::fhir::instant::now_secs();
    match state
        .store
        .use_verify_link(&digest_hex(&query.token), now)
        .await?
    {
        Some(_) => Ok(notice(
            "Address verified",
            "Your developer account is ready. Sign in to register your apps.",
            Some(("/developer/signin", "Sign in")),
        )),
        None => Err(dead_link(
            "Sign in with your address and password to have a new link sent.",
        )),
    }
}

/// `POST /developer/verify/resend` with email: a new verification link, if the address has
/// an account that is not verified yet; the same answer otherwise.
pub async fn resend(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> PageResult<Response> {
    let form = Fields::parse(&body);
    session::posted(&state.store, &jar, &form).await?;
    if let Ok(email) = checks::email(form.get("email").unwrap_or(""))
        && let Some(account) = state.store.developer_login(&email).await?
        && !account.developer.disabled
        && account.developer.verified_at.is_none()
    {
        mail::send(&state, &account.developer, Message::Verify).await?;
    }
    Ok(check_your_mail(
        "If this address has an account that is not verified yet, we sent it a new link. \
         Open it within 24 hours.",
    ))
}
