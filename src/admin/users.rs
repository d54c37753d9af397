//! EHR user management (`/admin/users`): the people who sign in to Kiln's pages, each linked
//! to the Patient or Practitioner they are (their `fhirUser`). The list with a form to add a
//! user, one user's page, and its actions: change the linked FHIR user, reset the password,
//! disable or enable, grant or remove the admin role (never one's own). What each action ends
//! (sessions, grants) is the store's (`store/auth/users.rs`). Every change, and every
//! action refused, is recorded in the audit log (`user-changed`): a change's event in the
//! change's own transaction, a refusal's through the recorder.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::guard::Admin;
use super::nav::{Card, Console, Section};
use crate::audit::{Agent, Event, Kind, Origin, Outcome, Security, Subject};
use crate::crypto::hash_secret;
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::Store;
use crate::store::audit::chain::AuditRow;
use crate::store::auth::{User, UserSummary};
use crate::web::error::{PageError, PageResult};
use crate::web::html::{date, html, redirect, url};

pub const SECTION: Section = Section {
    path: "/admin/users",
    title: "Users",
};

/// Length bounds of a password set here, in characters (NIST SP 800-63B: length, not
/// composition rules).
const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 128;
const MAX_USERNAME_CHARS: usize = 64;

/// A user as the console lists them.
struct UserRow {
    username: String,
    /// `username=…`, the query of the user's page.
    query: String,
    fhir_user: Linked,
    admin: bool,
    disabled: bool,
    created: String,
}

/// A user's FHIR user and the name of the resource, when it is there.
struct Linked {
    reference: String,
    name: Option<String>,
    live: bool,
}

/// What the add-a-user form keeps when it comes back with a problem (never the password).
#[derive(Default)]
struct NewUser {
    username: String,
    fhir_user: String,
    admin: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    console: Console,
    users: Vec<UserRow>,
    message: Option<String>,
    form: NewUser,
    min_password: usize,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    console: Console,
    user: UserRow,
    /// The signed-in admin's own account: no disabling, no removing the admin role.
    is_self: bool,
    notice: Option<&'static str>,
    message: Option<String>,
    min_password: usize,
}

/// The section's card on the console's home page.
pub async fn card(state: &AppState) -> PageResult<Card> {
    let users = state.store.users().await?;
    Ok(Card {
        section: &SECTION,
        counts: vec![
            ("Users", users.len()),
            ("Administrators", users.iter().filter(|u| u.admin).count()),
            ("Disabled", users.iter().filter(|u| u.disabled).count()),
        ],
    })
}

/// `GET /admin/users`.
pub async fn list(State(state): State<AppState>, admin: Admin) -> PageResult {
    users_page(&state, &admin, StatusCode::OK, None, NewUser::default()).await
}

/// `POST /admin/users`: adds a user; the form again with what is wrong, or the new user's page.
pub async fn create(State(state): State<AppState>, origin: Origin, admin: Admin) -> PageResult {
    let new = NewUser {
        username: admin.field("username").to_string(),
        fhir_user: admin.field("fhir_user").to_string(),
        admin: admin.form.get("admin") == Some("yes"),
    };
    let password = admin.form.get("password").unwrap_or("");
    let mut problem =
        username_problem(&new.username).or_else(|| password_problem(password, &new.username));
    if problem.is_none() {
        problem = state
            .store
            .fhir_user_problem(&new.fhir_user)
            .await?
            .map(|problem| format!("FHIR user: {problem}."));
    }
    if problem.is_none() {
        let user = User {
            username: new.username.clone(),
            password_hash: hash_secret(password),
            fhir_user: new.fhir_user.clone(),
            admin: new.admin,
            disabled: false,
        };
        let role = if new.admin { "admin" } else { "user" };
        let done = format!("created (fhir user {}, role {role})", new.fhir_user);
        let audit = rows(&state, &admin, &origin, &new.username, &done);
        if state
            .store
            .insert_user(&user, crate::auth::now(), &audit)
            .await?
        {
            return Ok(redirect(&user_url(&state, &new.username, "created")));
        }
        problem = Some(format!("There is already a user named {}.", new.username));
    }
    users_page(&state, &admin, StatusCode::BAD_REQUEST, problem, new).await
}

/// `GET /admin/users/show?username=…` (with `done=` after an action).
pub async fn show(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    admin: Admin,
) -> PageResult {
    let query = Fields::parse(query.unwrap_or_default().as_bytes());
    let username = query.get("username").unwrap_or("");
    let notice = query.get("done").and_then(done_notice);
    user_page(&state, &admin, username, StatusCode::OK, notice, None).await
}

/// `POST /admin/users/{action}` with `username`: `fhir-user` (with `fhir_user`), `password`
/// (with `password`), `disable`, `enable`, `grant-admin`, `remove-admin`. Back to the user's
/// page, with a notice, or with what is wrong.
pub async fn act(
    State(state): State<AppState>,
    Path(action): Path<String>,
    origin: Origin,
    admin: Admin,
) -> PageResult {
    let username = admin.form.get("username").unwrap_or("");
    if state.store.user(username).await?.is_none() {
        return Err(PageError::bad_request("There is no such user."));
    }
    let is_self = username == admin.user.username;
    let store = &state.store;
    // The change's event, appended in its transaction.
    let audit = &rows(&state, &admin, &origin, username, &action);
    let problem = match action.as_str() {
        "fhir-user" => {
            let fhir_user = admin.field("fhir_user");
            match store.fhir_user_problem(fhir_user).await? {
                Some(problem) => Some(format!("FHIR user: {problem}.")),
                None => changed(store.set_fhir_user(username, fhir_user, audit).await?),
            }
        }
        "password" => {
            let password = admin.form.get("password").unwrap_or("");
            match password_problem(password, username) {
                Some(problem) => Some(problem),
                None => changed(
                    store
                        .set_password(username, &hash_secret(password), audit)
                        .await?,
                ),
            }
        }
        "disable" if is_self => Some("You cannot disable your own account.".into()),
        "disable" => changed(store.set_disabled(username, true, audit).await?),
        "enable" => changed(store.set_disabled(username, false, audit).await?),
        "grant-admin" => changed(store.set_admin(username, true, audit).await?),
        "remove-admin" if is_self => {
            Some("You cannot remove your own admin role; ask another administrator.".into())
        }
        "remove-admin" => changed(store.set_admin(username, false, audit).await?),
        _ => return Err(PageError::bad_request("There is no such action.")),
    };
    if let Some(problem) = &problem {
        let refused = event(&admin, &origin, username, Err(problem.as_str()));
        state.audit.record(refused).await?;
    }
    match problem {
        None => Ok(redirect(&user_url(&state, username, &action))),
        Some(problem) => {
            user_page(
                &state,
                &admin,
                username,
                StatusCode::BAD_REQUEST,
                None,
                Some(problem),
            )
            .await
        }
    }
}

/// The event of an admin's change to `username` (`Ok` with what was done) or of the change
/// refused (`Err` with why).
fn event(admin: &Admin, origin: &Origin, username: &str, outcome: Result<&str, &str>) -> Event {
    let (outcome, description) = match outcome {
        Ok(done) => (Outcome::Success, format!("admin console: user {done}")),
        Err(problem) => (Outcome::Minor, format!("admin console: refused: {problem}")),
    };
    Event::security(
        Kind::Security(Security::UserChanged),
        outcome,
        Agent::user(admin.user.username.as_str()),
        origin.clone(),
    )
    .with_subject(Subject::user(username))
    .with_description(description)
}

/// The stored rows of the change `done` to `username`, for the store to append in the
/// change's transaction (none when auditing is off).
fn rows(
    state: &AppState,
    admin: &Admin,
    origin: &Origin,
    username: &str,
    done: &str,
) -> Vec<AuditRow> {
    let event = event(admin, origin, username, Ok(done));
    state.audit.row(&event).into_iter().collect()
}

/// A store change's outcome as a problem: none, or the user went away meanwhile.
fn changed(found: bool) -> Option<String> {
    (!found).then(|| "There is no such user.".to_string())
}

/// What the user's page says after an action, by its name (never text from the request).
fn done_notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => "User added.",
        "fhir-user" => {
            "FHIR user changed. Their sessions ended and the apps they allowed must ask again."
        }
        "password" => "Password reset. Their sessions ended.",
        "disable" => {
            "User disabled: they cannot sign in, their sessions ended and their apps' access \
             was revoked."
        }
        "enable" => "User enabled: they can sign in again.",
        "grant-admin" => "Admin role granted.",
        "remove-admin" => "Admin role removed.",
        _ => return None,
    })
}

fn user_url(state: &AppState, username: &str, done: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("username", username)
        .append_pair("done", done)
        .finish();
    url(&state.config, &format!("/admin/users/show?{query}"))
}

fn username_problem(username: &str) -> Option<String> {
    let length = username.chars().count();
    if length == 0 || length > MAX_USERNAME_CHARS {
        return Some(format!(
            "The username must be 1 to {MAX_USERNAME_CHARS} characters long."
        ));
    }
    username
        .chars()
        .any(char::is_control)
        .then(|| "The username must not contain control characters.".into())
}

fn password_problem(password: &str, username: &str) -> Option<String> {
    let length = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Some(format!(
            "The password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long."
        ));
    }
    (!username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()))
        .then(|| "The password must not contain the username.".into())
}

async fn users_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    message: Option<String>,
    form: NewUser,
) -> PageResult {
    let mut users = Vec::new();
    for user in state.store.users().await? {
        users.push(row(&state.store, user).await?);
    }
    Ok(html(
        status,
        &UsersPage {
            console: admin.console(state, SECTION.path),
            users,
            message,
            form,
            min_password: MIN_PASSWORD_CHARS,
        },
    ))
}

async fn user_page(
    state: &AppState,
    admin: &Admin,
    username: &str,
    status: StatusCode,
    notice: Option<&'static str>,
    message: Option<String>,
) -> PageResult {
    let summary = state
        .store
        .user_summary(username)
        .await?
        .ok_or_else(|| PageError::bad_request("There is no such user."))?;
    Ok(html(
        status,
        &UserPage {
            console: admin.console(state, SECTION.path),
            is_self: username == admin.user.username,
            user: row(&state.store, summary).await?,
            notice,
            message,
            min_password: MIN_PASSWORD_CHARS,
        },
    ))
}

async fn row(store: &Store, user: UserSummary) -> PageResult<UserRow> {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("username", &user.username)
        .finish();
    Ok(UserRow {
        fhir_user: linked(store, &user.fhir_user).await?,
        query,
        admin: user.admin,
        disabled: user.disabled,
        created: date(user.created_at),
        username: user.username,
    })
}

async fn linked(store: &Store, reference: &str) -> PageResult<Linked> {
    let resource = match reference.split_once('/') {
        Some((kind, id)) if crate::fhir::id::is_valid_id(id) => store
            .read(kind, id)
            .await?
            .filter(|stored| !stored.deleted)
            .and_then(|stored| serde_json::from_slice::<Value>(&stored.body).ok()),
        _ => None,
    };
    Ok(Linked {
        reference: reference.to_string(),
        name: resource.as_ref().and_then(crate::fhir::name::display),
        live: resource.is_some(),
    })
}
