//! `GET` and `POST /auth/authorize`: checks an authorization request (RFC 6749 §4.1.1 with
//! SMART's `aud`, PKCE and `launch`), records it as pending for this browser and shows the
//! first page (login, patient picker or consent).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::html::{PageError, redirect};
use super::session::{Browser, Fields};
use super::steps;
use crate::app::AppState;
use crate::auth::crypto::{digest_hex, is_s256_challenge, random_token};
use crate::auth::scope::{Scope, ScopeSet};
use crate::store::auth::{Client, Launch, Pending};

/// How long the user has to sign in and answer the consent page.
const PENDING_LIFETIME_SECS: i64 = 30 * 60;

/// Parameters that must not be repeated (RFC 6749 §3.1).
const SINGLE: [&str; 10] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "launch",
    "nonce",
];

pub async fn authorize_get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let form = Fields::parse(query.unwrap_or_default().as_bytes());
    authorize(&state, &jar, &form).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Response {
    authorize(&state, &jar, &Fields::parse(&body)).await
}

/// A request that passed every check.
struct Checked {
    client: Client,
    redirect_uri: String,
    scope: ScopeSet,
    state: String,
    code_challenge: String,
    nonce: Option<String>,
    launch: Option<Launch>,
}

async fn authorize(state: &AppState, jar: &CookieJar, form: &Fields) -> Response {
    let checked = match check(state, form).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let result = async {
        let browser = Browser::open(state, jar).await?;
        let pending = Pending {
            pending_id: random_token(),
            session_hash: browser.session.session_hash.clone(),
            client_id: checked.client.client_id.clone(),
            redirect_uri: checked.redirect_uri,
            scope: checked.scope.to_string(),
            state: Some(checked.state),
            code_challenge: checked.code_challenge,
            nonce: checked.nonce,
            launch_hash: checked.launch.map(|launch| launch.launch_hash),
            patient: None,
            encounter: None,
            expires_at: crate::auth::now() + PENDING_LIFETIME_SECS,
        };
        state
            .store
            .insert_pending(&pending, crate::auth::now())
            .await?;
        let page = steps::next_step(state, &browser.session, &pending, None).await?;
        Ok::<_, PageError>(browser.respond(page))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Checks the request; a refusal is an HTML page while the client or redirect URI is not
/// known, and a redirect to the app with `error` afterwards.
async fn check(state: &AppState, form: &Fields) -> Result<Checked, Response> {
    let page = |detail: &str| PageError::bad_request(detail).into_response();
    let internal = |error| PageError::internal(error).into_response();
    if form.count("client_id") > 1 || form.count("redirect_uri") > 1 {
        return Err(page(
            "client_id and redirect_uri may each be sent only once.",
        ));
    }
    let client_id = form
        .get("client_id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| page("The request has no client_id."))?;
    let client = state
        .store
        .client(client_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| page("The app is not registered with Kiln (unknown client_id)."))?;
    let redirect_uri = match form.get("redirect_uri") {
        Some(uri) => client
            .redirect_uris
            .iter()
            .find(|registered| *registered == uri)
            .cloned()
            .ok_or_else(|| page("The redirect_uri is not registered for this app."))?,
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(page("The request has no redirect_uri.")),
    };

    let app_state = form.get("state").filter(|s| !s.is_empty());
    let refuse = |error: &str, description: &str| {
        error_redirect(&redirect_uri, error, description, app_state)
    };
    if let Some(name) = SINGLE.iter().find(|name| form.count(name) > 1) {
        return Err(refuse(
            "invalid_request",
            &format!("{name} was sent more than once"),
        ));
    }
    match form.get("response_type") {
        Some("code") => {}
        None | Some("") => return Err(refuse("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(refuse(
            "unauthorized_client",
            "this app is not registered for the authorization_code grant",
        ));
    }
    let Some(app_state) = app_state else {
        return Err(refuse("invalid_request", "state is required"));
    };
    let fhir_base = state.config.fhir_base();
    match form.get("aud") {
        Some(aud) if aud.trim_end_matches('/') == fhir_base => {}
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                &format!("aud must be this server's FHIR base URL, {fhir_base}"),
            ));
        }
        None => return Err(refuse("invalid_request", "aud is required")),
    }
    match form.get("code_challenge_method") {
        Some("S256") => {}
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        None => {
            return Err(refuse(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
    }
    let code_challenge = form
        .get("code_challenge")
        .filter(|challenge| is_s256_challenge(challenge))
        .ok_or_else(|| {
            refuse(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 (43 characters)",
            )
        })?;
    let requested = ScopeSet::parse(form.get("scope").unwrap_or(""));
    if requested.is_empty() {
        return Err(refuse("invalid_scope", "no known scope was requested"));
    }
    let scope = requested.within(&ScopeSet::parse(&client.scope));
    if scope.is_empty() {
        return Err(refuse(
            "invalid_scope",
            "none of the requested scopes is allowed for this app",
        ));
    }
    let launch = match form.get("launch").filter(|l| !l.is_empty()) {
        Some(raw) => {
            let launch = state
                .store
                .launch(&digest_hex(raw))
                .await
                .map_err(internal)?
                .filter(|launch| {
                    launch.client_id == client.client_id
                        && launch.expires_at > crate::auth::now()
                        && !launch.used
                });
            let Some(launch) = launch else {
                return Err(refuse(
                    "invalid_request",
                    "the launch is unknown, expired, already used or for another app",
                ));
            };
            // Only one request can flip `used`, so a launch serves a single authorization.
            if !state
                .store
                .use_launch(&launch.launch_hash)
                .await
                .map_err(internal)?
            {
                return Err(refuse("invalid_request", "the launch was already used"));
            }
            Some(launch)
        }
        None if requested.contains(&Scope::Launch) => {
            return Err(refuse(
                "invalid_request",
                "the launch scope needs the launch parameter of an EHR launch",
            ));
        }
        None => None,
    };
    Ok(Checked {
        redirect_uri: redirect_uri.clone(),
        client,
        scope,
        state: app_state.to_string(),
        code_challenge: code_challenge.to_string(),
        nonce: form
            .get("nonce")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        launch,
    })
}

/// A redirect back to the app with an RFC 6749 §4.1.2.1 error.
pub fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    back_to_app(redirect_uri, &pairs)
}

/// A redirect to a registered redirect URI with `pairs` added to its query.
pub fn back_to_app(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    match reqwest::Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            redirect(url.as_str())
        }
        Err(error) => PageError::internal(error).into_response(),
    }
}
