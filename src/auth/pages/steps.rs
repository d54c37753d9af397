//! Which page a pending authorization request needs next (sign in, patient picker, encounter
//! picker or consent), and what the pages of the flow share: the pending request of this
//! browser, its EHR launch, the signed-in user and the launch context the grant will carry.

use axum::http::StatusCode;

use super::app_card;
use super::consent::{self, ConsentPage};
use super::encounter::encounter_page;
use super::login::LoginPage;
use super::patient::picker_page;
use super::records;
use crate::access::scope::{Context, Scope, ScopeSet};
use crate::crypto::same;
use crate::state::AppState;
use crate::store::Store;
use crate::store::auth::{Launch, Pending, Session, User};
use crate::web::error::{PageError, PageResult};
pub use crate::web::html::url;
use crate::web::html::{Choice, html};

pub const OTHER_USER: &str =
    "This launch was opened for another user. Sign in as the user who launched the app.";

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
    let launch = launch_of(&state.store, pending).await?;
    let user = match signed_in(&state.store, session, launch.as_ref()).await? {
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
                    action: &url(&state.config, "/auth/login"),
                    csrf_token: &session.csrf_token,
                    pending: Some(&pending.pending_id),
                    return_to: None,
                    app_name: Some(&client.name),
                    app: Some(app_card::of_client(&state.store, &client).await?),
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
        Some(id) => Some(patient_label(&state.store, &id).await?),
        None => None,
    };
    let requested = ScopeSet::parse(&pending.scope);
    Ok(html(
        StatusCode::OK,
        &ConsentPage {
            action: &url(&state.config, "/auth/consent"),
            csrf_token: &session.csrf_token,
            pending: &pending.pending_id,
            app: app_card::of_client(&state.store, &client).await?,
            username: &user.username,
            patient,
            requested: consent::items(&requested),
            narrower: consent::items(&consent::narrower_choices(&requested)),
        },
    ))
}

pub async fn launch_of(store: &Store, pending: &Pending) -> PageResult<Option<Launch>> {
    Ok(match &pending.launch_hash {
        Some(hash) => store.launch(hash).await?,
        None => None,
    })
}

/// The session's user, when there is one and (for an EHR launch) it is the launch's user.
pub async fn signed_in(
    store: &Store,
    session: &Session,
    launch: Option<&Launch>,
) -> PageResult<Option<User>> {
    let Some(username) = &session.username else {
        return Ok(None);
    };
    if launch.is_some_and(|launch| &launch.username != username) {
        return Ok(None);
    }
    Ok(store.user(username).await?)
}

fn patient_user(user: &User) -> Option<&str> {
    user.fhir_user.strip_prefix("Patient/")
}

/// A practitioner's standalone launch that asks for `launch/patient` chooses a patient.
pub fn needs_picker(user: &User, pending: &Pending, launch: Option<&Launch>) -> bool {
    launch.is_none()
        && pending.patient.is_none()
        && patient_user(user).is_none()
        && ScopeSet::parse(&pending.scope).contains(&Scope::LaunchPatient)
}

/// The patient and encounter of the grant: the EHR launch's, the chosen ones, or a patient
/// user's own record.
pub fn context(
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
pub async fn encounter_choices(
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

pub async fn patient_label(store: &Store, id: &str) -> PageResult<String> {
    Ok(records::patient(store, id)
        .await?
        .map_or_else(|| format!("Patient/{id}"), |choice| choice.label))
}

/// The live pending request `id` of this session.
pub async fn pending_of(store: &Store, session: &Session, id: Option<&str>) -> PageResult<Pending> {
    let pending = match id {
        Some(id) => store.pending(id).await?,
        None => None,
    };
    pending
        .filter(|p| {
            same(&p.session_hash, &session.session_hash) && p.expires_at > crate::auth::now()
        })
        .ok_or_else(|| {
            PageError::bad_request(
                "This authorization request has expired or was started in another browser. \
                 Start again from the app.",
            )
        })
}
