//! The encounter picker (`POST /auth/encounter`): when a standalone launch asks for
//! `launch/encounter` and the patient has more than one encounter, the user chooses one.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;

use super::records;
use super::steps::{
    context, encounter_choices, launch_of, next_step, patient_label, pending_of, signed_in, url,
};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::auth::{Pending, Session};
use crate::web::error::PageResult;
use crate::web::html::{Choice, html};
use crate::web::session;

#[derive(Template)]
#[template(path = "auth/encounter.html")]
pub struct EncounterPage<'a> {
    pub action: &'a str,
    pub csrf_token: &'a str,
    pub pending: &'a str,
    pub app_name: &'a str,
    pub patient: &'a str,
    pub encounters: Vec<Choice>,
}

/// `POST /auth/encounter`: the user's choice among the patient's encounters.
pub async fn choose_encounter(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> PageResult {
    let form = Fields::parse(&body);
    let session = session::posted(&state.store, &jar, &form).await?;
    let mut pending = pending_of(&state.store, &session, form.get("pending")).await?;
    let launch = launch_of(&state.store, &pending).await?;
    let Some(user) = signed_in(&state.store, &session, launch.as_ref()).await? else {
        return next_step(&state, &session, &pending, None).await;
    };
    let (Some(patient), Some(encounters)) = (
        context(&user, &pending, launch.as_ref()).0,
        encounter_choices(&state, &user, &pending, launch.as_ref()).await?,
    ) else {
        return next_step(&state, &session, &pending, None).await;
    };
    let chosen = match form.get("encounter") {
        Some(id) if records::is_encounter_of(&state.store, id, &patient).await? => id,
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

pub async fn encounter_page(
    state: &AppState,
    session: &Session,
    pending: &Pending,
    app_name: &str,
    patient: &str,
    encounters: Vec<Choice>,
    status: StatusCode,
) -> PageResult {
    let patient = patient_label(&state.store, patient).await?;
    Ok(html(
        status,
        &EncounterPage {
            action: &url(&state.config, "/auth/encounter"),
            csrf_token: &session.csrf_token,
            pending: &pending.pending_id,
            app_name,
            patient: &patient,
            encounters,
        },
    ))
}
