//! The steps after `/auth/authorize`: sign in (throttled per username and source address),
//! choose a patient and an encounter, consent; then the grant, the authorization code and
//! the redirect back to the app.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::authorize::{back_to_app, error_redirect};
use super::consent;
use super::crypto::{digest_hex, hash_secret, random_token, same, verify_secret};
use super::pages::{
    Choice, ConsentPage, EncounterPage, LoginPage, PageError, PageResult, PickerPage, html,
    redirect,
};
use super::records;
use super::session::{self, Browser, Fields};
use crate::access::scope::{Context, Scope, ScopeSet};
use crate::app::AppState;
use crate::store::auth::{Code, Grant, Launch, Pending, Session, User};

/// Authorization codes live one minute.
const CODE_LIFETIME_SECS: i64 = 60;

/// Verified when the username is unknown, so both failures take the same time.
static UNKNOWN_USER_HASH: LazyLock<String> = LazyLock::new(|| hash_secret("kiln-unknown-user"));

const OTHER_USER: &str =
    "This launch was opened for another user. Sign in as the user who launched the app.";

/// Pages that may send a signed-in user back to themselves after the login form.
const RETURN_PATHS: [&str; 2] = ["/auth/ehr", "/auth/apps"];

pub fn url(state: &AppState, path: &str) -> String {
    format!("{}{path}", state.config.base_url.trim_end_matches('/'))
}

/// The page the pending request needs next.
pub async fn next_step(
    state: &AppState,
    session: &Session,
    pending: &Pending,
    refusal: Option<(StatusCode, &str)>,
) -> PageResult {
    let client = state
        .store
        .client(&pending.client_id)
        .await?
        .ok_or_else(|| PageError::bad_request("The app is no longer registered."))?;
    let launch = launch_of(state, pending).await?;
    let user = match signed_in(state, session, launch.as_ref()).await? {
        Some(user) if refusal.is_none() => user,
        other => {
            let (status, message) = match (refusal, &other, &launch) {
                (Some(refusal), _, _) => refusal,
                (None, None, Some(_)) if session.username.is_some() => {
                    (StatusCode::FORBIDDEN, OTHER_USER)
                }
                _ => (StatusCode::OK, ""),
            };
            return Ok(html(
                status,
                &LoginPage {
                    action: &url(state, "/auth/login"),
                    csrf_token: &session.csrf_token,
                    pending: Some(&pending.pending_id),
                    return_to: None,
                    app_name: Some(&client.name),
                    message: Some(message).filter(|m| !m.is_empty()),
                    username: launch.as_ref().map(|l| l.username.as_str()),
                },
            ));
        }
    };
    if needs_picker(&user, pending, launch.as_ref()) {
        return picker_page(state, session, pending, &client.name, "", StatusCode::OK).await;
    }
    let (patient, _) = context(&user, pending, launch.as_ref());
    if let (Some(patient), Some(encounters)) = (
        &patient,
        encounter_choices(state, &user, pending, launch.as_ref()).await?,
    ) {
        let name = &client.name;
        return encounter_page(
            state,
            session,
            pending,
            name,
            patient,
            encounters,
            StatusCode::OK,
        )
        .await;
    }
    let patient = match patient {
        Some(id) => Some(patient_label(state, &id).await?),
        None => None,
    };
    let requested = ScopeSet::parse(&pending.scope);
    Ok(html(
        StatusCode::OK,
        &ConsentPage {
            action: &url(state, "/auth/consent"),
            csrf_token: &session.csrf_token,
            pending: &pending.pending_id,
            app_name: &client.name,
            username: &user.username,
            patient,
            requested: consent::items(&requested),
            narrower: consent::items(&consent::narrower_choices(&requested)),
        },
    ))
}

async fn launch_of(state: &AppState, pending: &Pending) -> PageResult<Option<Launch>> {
    Ok(match &pending.launch_hash {
        Some(hash) => state.store.launch(hash).await?,
        None => None,
    })
}

/// The session's user, when there is one and (for an EHR launch) it is the launch's user.
async fn signed_in(
    state: &AppState,
    session: &Session,
    launch: Option<&Launch>,
) -> PageResult<Option<User>> {
    let Some(username) = &session.username else {
        return Ok(None);
    };
    if launch.is_some_and(|launch| &launch.username != username) {
        return Ok(None);
    }
    Ok(state.store.user(username).await?)
}

fn patient_user(user: &User) -> Option<&str> {
    user.fhir_user.strip_prefix("Patient/")
}

/// A practitioner's standalone launch that asks for `launch/patient` chooses a patient.
fn needs_picker(user: &User, pending: &Pending, launch: Option<&Launch>) -> bool {
    launch.is_none()
        && pending.patient.is_none()
        && patient_user(user).is_none()
        && ScopeSet::parse(&pending.scope).contains(&Scope::LaunchPatient)
}

/// The patient and encounter of the grant: the EHR launch's, the chosen ones, or a patient
/// user's own record.
fn context(
    user: &User,
    pending: &Pending,
    launch: Option<&Launch>,
) -> (Option<String>, Option<String>) {
    if let Some(launch) = launch {
        return (launch.patient.clone(), launch.encounter.clone());
    }
    if let Some(patient) = &pending.patient {
        return (Some(patient.clone()), pending.encounter.clone());
    }
    let scopes = ScopeSet::parse(&pending.scope);
    let wants_patient =
        scopes.contains(&Scope::LaunchPatient) || scopes.has_context(Context::Patient);
    match patient_user(user) {
        Some(own) if wants_patient => (Some(own.to_string()), pending.encounter.clone()),
        _ => (None, None),
    }
}

/// The encounters to choose from when a standalone launch asks for `launch/encounter`, the
/// patient is known, no encounter is chosen yet and the patient has more than one: the user
/// picks the context the app gets instead of Kiln guessing. `None` when there is no choice.
async fn encounter_choices(
    state: &AppState,
    user: &User,
    pending: &Pending,
    launch: Option<&Launch>,
) -> PageResult<Option<Vec<Choice>>> {
    if launch.is_some()
        || pending.encounter.is_some()
        || !ScopeSet::parse(&pending.scope).contains(&Scope::LaunchEncounter)
    {
        return Ok(None);
    }
    let Some(patient) = context(user, pending, launch).0 else {
        return Ok(None);
    };
    let encounters = records::encounters(state, &patient).await?;
    Ok(Some(encounters).filter(|encounters| encounters.len() > 1))
}

async fn encounter_page(
    state: &AppState,
    session: &Session,
    pending: &Pending,
    app_name: &str,
    patient: &str,
    encounters: Vec<Choice>,
    status: StatusCode,
) -> PageResult {
    let patient = patient_label(state, patient).await?;
    Ok(html(
        status,
        &EncounterPage {
            action: &url(state, "/auth/encounter"),
            csrf_token: &session.csrf_token,
            pending: &pending.pending_id,
            app_name,
            patient: &patient,
            encounters,
        },
    ))
}

async fn patient_label(state: &AppState, id: &str) -> PageResult<String> {
    Ok(records::patient(state, id)
        .await?
        .map_or_else(|| format!("Patient/{id}"), |choice| choice.label))
}

pub fn login_page(
    state: &AppState,
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
            action: &url(state, "/auth/login"),
            csrf_token: &session.csrf_token,
            pending,
            return_to,
            app_name,
            message,
            username: None,
        },
    )
}

async fn picker_page(
    state: &AppState,
    session: &Session,
    pending: &Pending,
    app_name: &str,
    query: &str,
    status: StatusCode,
) -> PageResult {
    let patients = records::find_patients(state, query).await?;
    Ok(html(
        status,
        &PickerPage {
            action: &url(state, "/auth/patient"),
            csrf_token: &session.csrf_token,
            pending: &pending.pending_id,
            app_name,
            query,
            patients,
        },
    ))
}

/// The live pending request `id` of this session.
async fn pending_of(state: &AppState, session: &Session, id: Option<&str>) -> PageResult<Pending> {
    let pending = match id {
        Some(id) => state.store.pending(id).await?,
        None => None,
    };
    pending
        .filter(|p| same(&p.session_hash, &session.session_hash) && p.expires_at > super::now())
        .ok_or_else(|| {
            PageError::bad_request(
                "This authorization request has expired or was started in another browser. \
                 Start again from the app.",
            )
        })
}

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
) -> Response {
    let form = Fields::parse(&body);
    let source = source_of(peer.map(|Extension(ConnectInfo(peer))| peer));
    login_inner(&state, &jar, &form, &source)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn login_inner(state: &AppState, jar: &CookieJar, form: &Fields, source: &str) -> PageResult {
    let session = session::posted(state, jar, form).await?;
    let pending = match form.get("pending") {
        Some(id) => Some(pending_of(state, &session, Some(id)).await?),
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
    if let Some(pending) = &pending
        && let Some(launch) = launch_of(state, pending).await?
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
        None => redirect(&url(state, return_to.unwrap_or("/auth/apps"))),
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
            state,
            session,
            None,
            return_to,
            None,
            status,
            Some(message),
        )),
    }
}

/// `GET /auth/patient?pending=…&name=…`: the patient picker with a name search.
pub async fn picker(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let form = Fields::parse(query.unwrap_or_default().as_bytes());
    async {
        let session = session::current(&state, &jar).await?.ok_or_else(|| {
            PageError::bad_request("Your session has expired. Start again from the app.")
        })?;
        let pending = pending_of(&state, &session, form.get("pending")).await?;
        let launch = launch_of(&state, &pending).await?;
        match signed_in(&state, &session, launch.as_ref()).await? {
            Some(user) if needs_picker(&user, &pending, launch.as_ref()) => {
                let client = state.store.client(&pending.client_id).await?;
                let name = client.map(|c| c.name).unwrap_or_default();
                let query = form.get("name").unwrap_or("");
                picker_page(&state, &session, &pending, &name, query, StatusCode::OK).await
            }
            _ => next_step(&state, &session, &pending, None).await,
        }
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /auth/patient`: the practitioner's choice of patient.
pub async fn choose_patient(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Response {
    let form = Fields::parse(&body);
    async {
        let session = session::posted(&state, &jar, &form).await?;
        let mut pending = pending_of(&state, &session, form.get("pending")).await?;
        let launch = launch_of(&state, &pending).await?;
        let Some(user) = signed_in(&state, &session, launch.as_ref()).await? else {
            return next_step(&state, &session, &pending, None).await;
        };
        if !needs_picker(&user, &pending, launch.as_ref()) {
            return next_step(&state, &session, &pending, None).await;
        }
        let chosen = match form.get("patient") {
            Some(id) => records::patient(&state, id).await?,
            None => None,
        };
        let Some(chosen) = chosen else {
            let client = state.store.client(&pending.client_id).await?;
            let name = client.map(|c| c.name).unwrap_or_default();
            return picker_page(
                &state,
                &session,
                &pending,
                &name,
                "",
                StatusCode::BAD_REQUEST,
            )
            .await;
        };
        state
            .store
            .set_pending_patient(&pending.pending_id, &chosen.id)
            .await?;
        pending.patient = Some(chosen.id);
        next_step(&state, &session, &pending, None).await
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /auth/encounter`: the user's choice among the patient's encounters.
pub async fn choose_encounter(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Response {
    let form = Fields::parse(&body);
    async {
        let session = session::posted(&state, &jar, &form).await?;
        let mut pending = pending_of(&state, &session, form.get("pending")).await?;
        let launch = launch_of(&state, &pending).await?;
        let Some(user) = signed_in(&state, &session, launch.as_ref()).await? else {
            return next_step(&state, &session, &pending, None).await;
        };
        let (Some(patient), Some(encounters)) = (
            context(&user, &pending, launch.as_ref()).0,
            encounter_choices(&state, &user, &pending, launch.as_ref()).await?,
        ) else {
            return next_step(&state, &session, &pending, None).await;
        };
        let chosen = match form.get("encounter") {
            Some(id) if records::is_encounter_of(&state, id, &patient).await? => id,
            _ => {
                let client = state.store.client(&pending.client_id).await?;
                let name = client.map(|c| c.name).unwrap_or_default();
                let status = StatusCode::BAD_REQUEST;
                return encounter_page(
                    &state, &session, &pending, &name, &patient, encounters, status,
                )
                .await;
            }
        };
        state
            .store
            .set_pending_encounter(&pending.pending_id, chosen)
            .await?;
        pending.encounter = Some(chosen.to_string());
        next_step(&state, &session, &pending, None).await
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /auth/consent`: allow (a grant, a code, back to the app) or deny.
pub async fn consent(State(state): State<AppState>, jar: CookieJar, body: Bytes) -> Response {
    let form = Fields::parse(&body);
    consent_inner(&state, &jar, &form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn consent_inner(state: &AppState, jar: &CookieJar, form: &Fields) -> PageResult {
    let session = session::posted(state, jar, form).await?;
    let pending = pending_of(state, &session, form.get("pending")).await?;
    let launch = launch_of(state, &pending).await?;
    let Some(user) = signed_in(state, &session, launch.as_ref()).await? else {
        return next_step(state, &session, &pending, None).await;
    };
    if needs_picker(&user, &pending, launch.as_ref())
        || encounter_choices(state, &user, &pending, launch.as_ref())
            .await?
            .is_some()
    {
        return next_step(state, &session, &pending, None).await;
    }
    let Some(client) = state.store.client(&pending.client_id).await? else {
        return Err(PageError::bad_request("The app is no longer registered."));
    };
    let app_state = pending.state.as_deref();
    let granted = match form.get("decision") {
        Some("allow") => {
            let submitted: Vec<&str> = form.all("scope").collect();
            consent::granted(
                &submitted,
                &ScopeSet::parse(&pending.scope),
                &ScopeSet::parse(&client.scope),
            )
        }
        Some("deny") => ScopeSet::default(),
        _ => return Err(PageError::bad_request("Choose Allow or Deny.")),
    };
    // Deleting the request first makes a double submit produce nothing twice.
    if !state.store.delete_pending(&pending.pending_id).await? {
        return Err(PageError::bad_request(
            "This request was already answered. Start again from the app.",
        ));
    }
    if granted.is_empty() {
        let description = match form.get("decision") {
            Some("deny") => "the user denied access",
            _ => "the user granted none of the requested scopes",
        };
        return Ok(error_redirect(
            &pending.redirect_uri,
            "access_denied",
            description,
            app_state,
        ));
    }
    let (patient, mut encounter) = context(&user, &pending, launch.as_ref());
    // A standalone launch gets the encounter chosen on the picker, or the patient's only
    // one, and only when the user granted `launch/encounter`.
    if launch.is_none() {
        if !granted.contains(&Scope::LaunchEncounter) {
            encounter = None;
        } else if let (None, Some(patient)) = (&encounter, &patient) {
            encounter = records::latest_encounter(state, patient).await?;
        }
    }
    let now = super::now();
    let grant = Grant {
        grant_id: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        username: Some(user.username.clone()),
        scope: granted.to_string(),
        patient,
        encounter,
        fhir_user: Some(user.fhir_user.clone()),
        need_patient_banner: launch.is_none(),
        created_at: now,
        revoked: false,
    };
    state.store.insert_grant(&grant).await?;
    let code = random_token();
    state
        .store
        .insert_code(&Code {
            code_hash: digest_hex(&code),
            grant_id: grant.grant_id,
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            nonce: pending.nonce.clone(),
            expires_at: now + CODE_LIFETIME_SECS,
        })
        .await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(app_state) = app_state {
        pairs.push(("state", app_state));
    }
    Ok(back_to_app(&pending.redirect_uri, &pairs))
}
