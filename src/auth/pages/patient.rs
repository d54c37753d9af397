//! The patient picker (`GET` and `POST /auth/patient`): a practitioner's standalone launch
//! that asks for `launch/patient` searches patients by name and chooses one.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;

use super::records;
use super::steps::{launch_of, needs_picker, next_step, pending_of, signed_in, url};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::auth::{Pending, Session};
use crate::web::error::{PageError, PageResult};
use crate::web::html::{Choice, html};
use crate::web::session;

#[derive(Template)]
#[template(path = "auth/picker.html")]
pub struct PickerPage<'a> {
    pub action: &'a str,
    pub csrf_token: &'a str,
    pub pending: &'a str,
    pub app_name: &'a str,
    pub query: &'a str,
    pub patients: Vec<Choice>,
}

/// `GET /auth/patient?pending=…&name=…`: the patient picker with a name search.
pub async fn picker(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> PageResult {
    let form = Fields::parse(query.unwrap_or_default().as_bytes());
    let session = session::current(&state.store, &jar).await?.ok_or_else(|| {
        PageError::bad_request("Your session has expired. Start again from the app.")
    })?;
    let pending = pending_of(&state.store, &session, form.get("pending")).await?;
    let launch = launch_of(&state.store, &pending).await?;
    match signed_in(&state.store, &session, launch.as_ref()).await? {
        Some(user) if needs_picker(&user, &pending, launch.as_ref()) => {
            let client = state.store.client(&pending.client_id).await?;
            let name = client.map(|c| c.name).unwrap_or_default();
            let query = form.get("name").unwrap_or("");
            picker_page(&state, &session, &pending, &name, query, StatusCode::OK).await
        }
        _ => next_step(&state, &session, &pending, None).await,
    }
}

/// `POST /auth/patient`: the practitioner's choice of patient.
pub async fn choose_patient(
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
    if !needs_picker(&user, &pending, launch.as_ref()) {
        return next_step(&state, &session, &pending, None).await;
    }
    let chosen = match form.get("patient") {
        Some(id) => records::patient(&state.store, id).await?,
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

pub async fn picker_page(
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
            action: &url(&state.config, "/auth/patient"),
            csrf_token: &session.csrf_token,
            pending: &pending.pending_id,
            app_name,
            query,
            patients,
        },
    ))
}
