//! Developer accounts (`/admin/developers`): the accounts of the developer portal with their
//! apps, and what an admin does to one: verify its address by hand (a deployment without
//! SMTP cannot mail the link), disable it (it can no longer sign in; its portal sessions end)
//! or enable it again (recorded in the audit log, `admin-action`, in the change's
//! transaction). The accounts themselves
//! are `store::developers`'.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;

use super::guard::Admin;
use super::nav::{Card, Console, Section};
use crate::apps::Status;
use crate::apps::view;
use crate::audit::{Agent, Event, Origin, Security, Subject};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::apps::AppFilter;
use crate::store::developers::Developer;
use crate::web::error::{PageError, PageResult};
use crate::web::html::{date, html, redirect, url};

pub const SECTION: Section = Section {
    path: "/admin/developers",
    title: "Developers",
};

/// An account as the console shows it.
struct DeveloperRow {
    account_id: String,
    name: String,
    organization: String,
    email: String,
    /// When the address was verified; empty: not yet.
    verified: String,
    disabled: bool,
    created: String,
    apps: usize,
}

/// One of the developer's apps.
struct OwnedApp {
    app_id: String,
    name: String,
    status: Status,
    awaiting_review: bool,
    client_id: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/developers.html")]
struct DevelopersPage {
    console: Console,
    developers: Vec<DeveloperRow>,
}

#[derive(Template)]
#[template(path = "admin/developer.html")]
struct DeveloperPage {
    console: Console,
    developer: DeveloperRow,
    apps: Vec<OwnedApp>,
    notice: Option<&'static str>,
}

/// The section's card on the console's home page.
pub async fn card(state: &AppState) -> PageResult<Card> {
    let developers = state.store.developers().await?;
    Ok(Card {
        section: &SECTION,
        counts: vec![
            ("Developers", developers.len()),
            (
                "Unverified",
                developers
                    .iter()
                    .filter(|d| d.verified_at.is_none())
                    .count(),
            ),
            (
                "Disabled accounts",
                developers.iter().filter(|d| d.disabled).count(),
            ),
        ],
    })
}

/// `GET /admin/developers`: every account, newest first.
pub async fn list(State(state): State<AppState>, admin: Admin) -> PageResult {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for app in view::list(&state.store, &AppFilter::default()).await? {
        if let Some(owner) = app.owner {
            *counts.entry(owner).or_default() += 1;
        }
    }
    let developers = state
        .store
        .developers()
        .await?
        .into_iter()
        .map(|d| {
            let apps = counts.get(&d.account_id).copied().unwrap_or(0);
            row(d, apps)
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &DevelopersPage {
            console: admin.console(&state, SECTION.path),
            developers,
        },
    ))
}

/// `GET /admin/developers/{account_id}` (with `done=` after an action): the account and its
/// apps.
pub async fn show(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    RawQuery(query): RawQuery,
    admin: Admin,
) -> PageResult {
    let developer = account(&state, &account_id).await?;
    let query = Fields::parse(query.unwrap_or_default().as_bytes());
    let apps: Vec<OwnedApp> = view::list(
        &state.store,
        &AppFilter {
            owner: Some(&developer.account_id),
            ..AppFilter::default()
        },
    )
    .await?
    .into_iter()
    .map(|app| OwnedApp {
        app_id: app.app_id,
        name: app.name,
        status: app.status,
        awaiting_review: app.awaiting_review,
        client_id: app.client_id,
    })
    .collect();
    Ok(html(
        StatusCode::OK,
        &DeveloperPage {
            console: admin.console(&state, SECTION.path),
            developer: row(developer, apps.len()),
            apps,
            notice: query.get("done").and_then(done_notice),
        },
    ))
}

/// `POST /admin/developers/{account_id}/{action}`: `verify`, `disable`, `enable`; back to
/// the account's page with a notice.
pub async fn act(
    State(state): State<AppState>,
    Path((account_id, action)): Path<(String, String)>,
    origin: Origin,
    admin: Admin,
) -> PageResult {
    let developer = account(&state, &account_id).await?;
    let store = &state.store;
    let id = &developer.account_id;
    // Appended in the change's transaction.
    let event = Event::alert(
        Security::AdminAction,
        Agent::user(admin.user.username.as_str()),
        origin,
        Subject::developer(id.as_str()),
        format!("admin console: developer account {action}"),
    );
    let audit: Vec<_> = state.audit.row(&event).into_iter().collect();
    let found = match action.as_str() {
        "verify" => {
            store
                .verify_developer(id, crate::fhir::instant::now_secs(), &audit)
                .await?
        }
        "disable" => store.set_developer_disabled(id, true, &audit).await?,
        "enable" => store.set_developer_disabled(id, false, &audit).await?,
        _ => return Err(PageError::bad_request("There is no such action.")),
    };
    if !found {
        return Err(no_such_account());
    }
    tracing::info!(admin = %admin.user.username, account = %id, action, "developer account changed");
    Ok(redirect(&url(
        &state.config,
        &format!("/admin/developers/{id}?done={action}"),
    )))
}

fn no_such_account() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "No such account",
        "There is no developer account with this id.",
    )
}

/// The account of a path's id (a UUID).
async fn account(state: &AppState, account_id: &str) -> PageResult<Developer> {
    let valid =
        uuid::Uuid::try_parse(account_id).is_ok_and(|id| id.hyphenated().to_string() == account_id);
    if !valid {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Not an account id",
            "A developer account id is a UUID, as the list of developers links it.",
        ));
    }
    state
        .store
        .developer(account_id)
        .await?
        .ok_or_else(no_such_account)
}

fn done_notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "verify" => "Address marked verified: the developer can sign in.",
        "disable" => "Account disabled: the developer cannot sign in and was signed out.",
        "enable" => "Account enabled: the developer can sign in again.",
        _ => return None,
    })
}

fn row(developer: Developer, apps: usize) -> DeveloperRow {
    DeveloperRow {
        account_id: developer.account_id,
        name: developer.name,
        organization: developer.organization,
        email: developer.email,
        verified: developer.verified_at.map(date).unwrap_or_default(),
        disabled: developer.disabled,
        created: date(developer.created_at),
        apps,
    }
}
