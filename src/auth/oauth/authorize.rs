//! The checks of an authorization request (RFC 6749 §4.1.1 with SMART's `aud`, PKCE and
//! `launch`), as typed outcomes: an error the user sees while the app or its redirect URI is
//! not known, an error sent back to the app afterwards, or the validated request. The page
//! layer (`pages/authorize.rs`) turns the outcome into a page or a redirect.

use crate::access::scope::{Scope, ScopeSet};
use crate::crypto::{digest_hex, is_s256_challenge};
use crate::http::form::Fields;
use crate::store::auth::{Client, Launch};
use crate::store::{Store, StoreError};

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

/// What an authorization request comes to.
pub enum Outcome {
    /// The app or its redirect URI is not known: nothing may be sent to the app, the user is
    /// told why.
    ShowError(String),
    /// The app is known but the request is wrong: back to the app with the error.
    RedirectError(ErrorRedirect),
    /// Every check passed (and the EHR launch, if any, is now used).
    Proceed(Box<Checked>),
}

/// An RFC 6749 §4.1.2.1 error for the app's registered redirect URI.
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub error: &'static str,
    pub description: String,
    pub state: Option<String>,
}

/// A request that passed every check.
pub struct Checked {
    pub client: Client,
    pub redirect_uri: String,
    pub scope: ScopeSet,
    pub state: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub launch: Option<Launch>,
}

/// Why a known app's request is refused: the `error` code and its description.
type Refusal = (&'static str, String);

/// Checks the request against the registered clients, this server's FHIR base and the stored
/// EHR launches; claims the launch when everything else passed.
pub async fn check(store: &Store, fhir_base: &str, form: &Fields) -> Result<Outcome, StoreError> {
    let (client, redirect_uri) = match app_of(store, form).await? {
        Ok(app) => app,
        Err(detail) => return Ok(Outcome::ShowError(detail)),
    };
    let app_state = form.get("state").filter(|s| !s.is_empty());
    let refuse = |(error, description): Refusal| {
        Outcome::RedirectError(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            error,
            description,
            state: app_state.map(str::to_owned),
        })
    };
    let (checked, launch_scope) = match parameters(client, &redirect_uri, fhir_base, form) {
        Ok(checked) => checked,
        Err(refusal) => return Ok(refuse(refusal)),
    };
    let raw_launch = form.get("launch").filter(|l| !l.is_empty());
    match claim_launch(store, &checked.client, raw_launch, launch_scope).await? {
        Ok(launch) => Ok(Outcome::Proceed(Box::new(Checked { launch, ..checked }))),
        Err(refusal) => Ok(refuse(refusal)),
    }
}

/// The registered client and the redirect URI the request may be answered at; until both
/// are known, a refusal is for the user's eyes only.
async fn app_of(
    store: &Store,
    form: &Fields,
) -> Result<Result<(Client, String), String>, StoreError> {
    if form.count("client_id") > 1 || form.count("redirect_uri") > 1 {
        return Ok(Err(
            "client_id and redirect_uri may each be sent only once.".into(),
        ));
    }
    let Some(client_id) = form.get("client_id").filter(|id| !id.is_empty()) else {
        return Ok(Err("The request has no client_id.".into()));
    };
    let Some(client) = store.client(client_id).await? else {
        return Ok(Err(
            "The app is not registered with Kiln (unknown client_id).".into(),
        ));
    };
    if !client.usable() {
        let why = super::client_auth::unusable(store, &client).await?;
        return Ok(Err(format!("This app cannot be authorized: {why}.")));
    }
    let redirect_uri = match form.get("redirect_uri") {
        Some(uri) => match client.redirect_uris.iter().find(|r| *r == uri) {
            Some(registered) => registered.clone(),
            None => {
                return Ok(Err(
                    "The redirect_uri is not registered for this app.".into()
                ));
            }
        },
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Ok(Err("The request has no redirect_uri.".into())),
    };
    Ok(Ok((client, redirect_uri)))
}

/// The request's own parameters, for a known app; with whether it asked for the `launch`
/// scope (before narrowing to the client's registration). The launch itself is not looked up.
fn parameters(
    client: Client,
    redirect_uri: &str,
    fhir_base: &str,
    form: &Fields,
) -> Result<(Checked, bool), Refusal> {
    let refusal = |error: &'static str, description: &str| (error, description.to_string());
    if let Some(name) = SINGLE.iter().find(|name| form.count(name) > 1) {
        return Err(("invalid_request", format!("{name} was sent more than once")));
    }
    match form.get("response_type") {
        Some("code") => {}
        None | Some("") => return Err(refusal("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(refusal(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(refusal(
            "unauthorized_client",
            "this app is not registered for the authorization_code grant",
        ));
    }
    let Some(app_state) = form.get("state").filter(|s| !s.is_empty()) else {
        return Err(refusal("invalid_request", "state is required"));
    };
    match form.get("aud") {
        Some(aud) if aud.trim_end_matches('/') == fhir_base => {}
        Some(_) => {
            return Err((
                "invalid_request",
                format!("aud must be this server's FHIR base URL, {fhir_base}"),
            ));
        }
        None => return Err(refusal("invalid_request", "aud is required")),
    }
    match form.get("code_challenge_method") {
        Some("S256") => {}
        Some(_) => {
            return Err(refusal(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        None => {
            return Err(refusal(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
    }
    let code_challenge = form
        .get("code_challenge")
        .filter(|challenge| is_s256_challenge(challenge))
        .ok_or_else(|| {
            refusal(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 (43 characters)",
            )
        })?;
    let requested = ScopeSet::parse(form.get("scope").unwrap_or(""));
    if requested.is_empty() {
        return Err(refusal("invalid_scope", "no known scope was requested"));
    }
    let scope = requested.within(&ScopeSet::parse(&client.scope));
    if scope.is_empty() {
        return Err(refusal(
            "invalid_scope",
            "none of the requested scopes is allowed for this app",
        ));
    }
    let checked = Checked {
        client,
        redirect_uri: redirect_uri.to_string(),
        scope,
        state: app_state.to_string(),
        code_challenge: code_challenge.to_string(),
        nonce: form
            .get("nonce")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        launch: None,
    };
    Ok((checked, requested.contains(&Scope::Launch)))
}

/// The EHR launch the request names, claimed for this one authorization; a request with the
/// `launch` scope must name one.
async fn claim_launch(
    store: &Store,
    client: &Client,
    raw: Option<&str>,
    launch_scope: bool,
) -> Result<Result<Option<Launch>, Refusal>, StoreError> {
    let refusal = |description: &str| Err(("invalid_request", description.to_string()));
    let Some(raw) = raw else {
        return Ok(if launch_scope {
            refusal("the launch scope needs the launch parameter of an EHR launch")
        } else {
            Ok(None)
        });
    };
    let launch = store.launch(&digest_hex(raw)).await?.filter(|launch| {
        launch.client_id == client.client_id
            && launch.expires_at > crate::auth::now()
            && !launch.used
    });
    let Some(launch) = launch else {
        return Ok(refusal(
            "the launch is unknown, expired, already used or for another app",
        ));
    };
    // Only one request can flip `used`, so a launch serves a single authorization.
    if !store.use_launch(&launch.launch_hash).await? {
        return Ok(refusal("the launch was already used"));
    }
    Ok(Ok(Some(launch)))
}
