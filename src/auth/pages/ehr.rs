//! Kiln as the EHR: a signed-in practitioner finds a patient (and an encounter), picks a
//! registered app with a launch URL and launches it with a fresh launch context.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;

use super::login::login_page;
use super::records;
use super::steps::url;
use crate::audit::{Agent, Event, Origin, Security};
use crate::crypto::{digest_hex, random_token};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::Store;
use crate::store::audit::chain::AuditRow;
use crate::store::auth::{Launch, Session, User};
use crate::web::error::{PageError, PageResult};
use crate::web::html::{Choice, html, redirect};
use crate::web::session::{self, Browser};

#[derive(Template)]
#[template(path = "auth/ehr.html")]
pub struct EhrPage<'a> {
    pub action: &'a str,
    pub launch_action: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub query: &'a str,
    pub patients: Vec<Choice>,
    pub patient: Option<Choice>,
    pub encounters: Vec<Choice>,
    pub apps: Vec<Choice>,
}

/// How long a launch waits for the app to come back to `/auth/authorize`.
const LAUNCH_LIFETIME_SECS: i64 = 3600;

/// `GET /auth/ehr[?name=…][&patient=ID]`.
pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> PageResult {
    let form = Fields::parse(query.unwrap_or_default().as_bytes());
    let browser = Browser::open(&state, &jar).await?;
    let session = &browser.session;
    if session.username.is_none() {
        let page = login_page(
            &state.config,
            session,
            None,
            Some("/auth/ehr"),
            None,
            StatusCode::OK,
            None,
        );
        return Ok(browser.respond(page));
    }
    let user = practitioner(&state.store, session).await?.ok_or_else(|| {
        PageError::forbidden("Only practitioners can launch apps from Kiln's EHR page.")
    })?;
    let query = form.get("name").unwrap_or("");
    let patient = match form.get("patient") {
        Some(id) => records::patient(&state.store, id).await?,
        None => None,
    };
    let (patients, encounters) = match &patient {
        Some(chosen) => (Vec::new(), records::encounters(&state, &chosen.id).await?),
        None => (records::find_patients(&state, query).await?, Vec::new()),
    };
    let apps = state
        .store
        .clients()
        .await?
        .into_iter()
        .filter(|client| client.usable() && client.launch_uri.is_some())
        .map(|client| Choice {
            id: client.client_id,
            label: client.name,
        })
        .collect();
    let page = html(
        StatusCode::OK,
        &EhrPage {
            action: &url(&state.config, "/auth/ehr"),
            launch_action: &url(&state.config, "/auth/ehr/launch"),
            csrf_token: &session.csrf_token,
            username: &user.username,
            query,
            patients,
            patient,
            encounters,
            apps,
        },
    );
    Ok(browser.respond(page))
}

/// `POST /auth/ehr/launch`: records the launch and sends the browser to the app.
pub async fn launch(
    State(state): State<AppState>,
    jar: CookieJar,
    origin: Origin,
    body: Bytes,
) -> PageResult {
    let form = Fields::parse(&body);
    let (state, jar, form) = (&state, &jar, &form);
    let session = session::posted(&state.store, jar, form).await?;
    let Some(user) = practitioner(&state.store, &session).await? else {
        return Err(PageError::forbidden(
            "Sign in as a practitioner to launch apps.",
        ));
    };
    let client = match form.get("client_id") {
        Some(id) => state.store.client(id).await?.filter(|c| c.usable()),
        None => None,
    };
    let Some((client, launch_uri)) = client.and_then(|c| c.launch_uri.clone().map(|uri| (c, uri)))
    else {
        return Err(PageError::bad_request(
            "Choose a registered app with a launch URL.",
        ));
    };
    let patient = match form.get("patient") {
        Some(id) => records::patient(&state.store, id).await?,
        None => None,
    };
    let Some(patient) = patient else {
        return Err(PageError::bad_request("Choose a patient."));
    };
    let encounter = form.get("encounter").filter(|e| !e.is_empty());
    if let Some(encounter) = encounter
        && !records::is_encounter_of(&state.store, encounter, &patient.id).await?
    {
        return Err(PageError::bad_request(
            "The encounter does not belong to this patient.",
        ));
    }
    let made = Event::launch(
        Security::LaunchCreated,
        Agent::user(&user.username),
        origin,
        &client.client_id,
        &user.username,
        &patient.id,
        encounter,
    );
    let launch = record_launch(
        state,
        &client.client_id,
        &user.username,
        &patient.id,
        encounter,
        &made,
    )
    .await?;
    Ok(redirect(&launch_target(state, &launch_uri, Some(&launch))?))
}

/// Records an EHR launch of app `client_id` by user `username` with `patient` (and
/// `encounter`) in context, and its audit event `made` in the same transaction; returns the
/// launch id, good for one authorization within the hour. Kiln's EHR page and the developer
/// portal's launch simulator launch with it.
pub async fn record_launch(
    state: &AppState,
    client_id: &str,
    username: &str,
    patient: &str,
    encounter: Option<&str>,
    made: &Event,
) -> PageResult<String> {
    let launch = random_token();
    let audit: Vec<AuditRow> = state.audit.row(made).into_iter().collect();
    state
        .store
        .insert_launch(
            &Launch {
                launch_hash: digest_hex(&launch),
                client_id: client_id.to_string(),
                username: username.to_string(),
                patient: Some(patient.to_string()),
                encounter: encounter.map(str::to_owned),
                expires_at: crate::auth::now() + LAUNCH_LIFETIME_SECS,
                used: false,
            },
            &audit,
        )
        .await?;
    Ok(launch)
}

/// An app's launch URL with `iss` (this server's FHIR base) and, for an EHR launch,
/// `launch` added to its query.
pub fn launch_target(
    state: &AppState,
    launch_uri: &str,
    launch: Option<&str>,
) -> PageResult<String> {
    let mut target = reqwest::Url::parse(launch_uri).map_err(PageError::internal)?;
    target
        .query_pairs_mut()
        .append_pair("iss", &state.config.fhir_base());
    if let Some(launch) = launch {
        target.query_pairs_mut().append_pair("launch", launch);
    }
    Ok(target.into())
}

/// The session's user when it is a practitioner (patients cannot launch apps for others).
async fn practitioner(store: &Store, session: &Session) -> PageResult<Option<User>> {
    let Some(username) = &session.username else {
        return Ok(None);
    };
    let user = store.user(username).await?;
    Ok(user.filter(|u| u.fhir_user.starts_with("Practitioner/")))
}
