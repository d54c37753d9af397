//! What a sandbox deployment (`kiln serve --sandbox`) adds to the portal: the "Sandbox"
//! notice on every portal page, the sandbox's secret, and each developer's test personas —
//! a patient user and a practitioner user (EHR users, never admins) linked to a sample
//! Patient and a sample Practitioner, made on the developer's first visit.
//!
//! A persona's password is never stored: it is derived as HMAC-SHA256 of its username under
//! the sandbox secret (random, made once and kept in `kiln_settings`), so the portal can
//! show it at any time while `auth_users` keeps only its argon2id hash.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::audit::{Agent, Event, Origin, Security, Subject};
use crate::auth::pages::records;
use crate::config::ApprovalPolicy;
use crate::crypto::{hash_secret, hmac_sha256, random_token};
use crate::state::AppState;
use crate::store::auth::User;
use crate::store::developers::Developer;
use crate::store::{Store, StoreResult};
use crate::web::error::{PageError, PageResult};
use crate::web::html::Choice;

/// The `kiln_settings` key of the sandbox secret.
const SECRET_SETTING: &str = "sandbox_secret";

/// The sandbox secret: made once per database, the same for every replica.
pub async fn secret(store: &Store) -> StoreResult<Vec<u8>> {
    let value = store
        .setting_or_insert(SECRET_SETTING, &random_token())
        .await?;
    Ok(value.into_bytes())
}

/// A value derived from the sandbox secret for `purpose` and `subject`.
pub fn derive(secret: &[u8], purpose: &str, subject: &str) -> String {
    hmac_sha256(secret, &format!("{purpose}\n{subject}"))
}

/// The two kinds of persona.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Patient,
    Practitioner,
}

impl Role {
    const ALL: [Role; 2] = [Role::Patient, Role::Practitioner];

    /// The FHIR resource type it is linked to.
    pub fn resource_type(self) -> &'static str {
        match self {
            Role::Patient => "Patient",
            Role::Practitioner => "Practitioner",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Practitioner => "practitioner",
        }
    }
}

/// A developer's test persona as the portal shows it.
pub struct Persona {
    pub role: Role,
    pub username: String,
    pub password: String,
    /// `Patient/ID` or `Practitioner/ID`.
    pub fhir_user: String,
    /// The linked record, as a choice (name and reference).
    pub label: String,
    pub disabled: bool,
}

impl Persona {
    pub fn kind(&self) -> &'static str {
        self.role.resource_type()
    }

    /// The id of the linked Patient or Practitioner.
    pub fn record_id(&self) -> &str {
        self.fhir_user.split_once('/').map_or("", |(_, id)| id)
    }
}

/// A persona's username: the role and the first 12 hex digits of the account id.
pub fn username(role: Role, developer: &Developer) -> String {
    let digits: String = developer
        .account_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    format!("{}-{}", role.prefix(), digits.to_lowercase())
}

/// A persona's password: derived, so never stored; it meets the portal's password policy.
fn password(secret: &[u8], username: &str) -> String {
    let derived = derive(secret, "persona-password", username);
    format!("Kiln-{}", &derived[..16])
}

/// The developer's personas, made first when missing (a persona whose role has no record
/// on this server is left out). Only on a sandbox deployment.
pub async fn personas(
    state: &AppState,
    developer: &Developer,
    origin: &Origin,
) -> PageResult<Vec<Persona>> {
    let secret = secret(&state.store).await?;
    let mut personas = Vec::new();
    for role in Role::ALL {
        let username = username(role, developer);
        let password = password(&secret, &username);
        let user = match state.store.user(&username).await? {
            Some(user) => Some(user),
            None => create(state, developer, role, &username, &password, origin).await?,
        };
        let Some(user) = user else {
            continue;
        };
        let id = user.fhir_user.split_once('/').map_or("", |(_, id)| id);
        let record = match role {
            Role::Patient => records::patient(&state.store, id).await?,
            Role::Practitioner => records::practitioner(&state.store, id).await?,
        };
        personas.push(Persona {
            role,
            username,
            password,
            label: record.map_or_else(|| user.fhir_user.clone(), |choice| choice.label),
            fhir_user: user.fhir_user,
            disabled: user.disabled,
        });
    }
    Ok(personas)
}

/// The developer's persona of `role`, made first when missing.
pub async fn persona(
    state: &AppState,
    developer: &Developer,
    role: Role,
    origin: &Origin,
) -> PageResult<Option<Persona>> {
    Ok(personas(state, developer, origin)
        .await?
        .into_iter()
        .find(|persona| persona.role == role))
}

/// Adds the persona user, linked to the record the round-robin gives this developer;
/// `None` when the server has no record of that kind.
async fn create(
    state: &AppState,
    developer: &Developer,
    role: Role,
    username: &str,
    password: &str,
    origin: &Origin,
) -> PageResult<Option<User>> {
    let Some(record) = assigned(state, developer, role).await? else {
        return Ok(None);
    };
    let user = User {
        username: username.to_string(),
        password_hash: hash_secret(password),
        fhir_user: format!("{}/{}", role.resource_type(), record),
        admin: false,
        disabled: false,
    };
    let created = persona_event(
        developer,
        origin,
        username,
        format!("sandbox persona created, linked to {}", user.fhir_user),
    );
    let audit: Vec<_> = state.audit.row(&created).into_iter().collect();
    // Two first visits at once: one adds the user (and records it), the other finds it.
    state
        .store
        .insert_user(&user, crate::auth::now(), &audit)
        .await?;
    Ok(state.store.user(username).await?)
}

/// A change the sandbox made to `developer`'s persona user `username` (created, or linked
/// to another record): an EHR-user change by the developer, from `origin`.
pub fn persona_event(
    developer: &Developer,
    origin: &Origin,
    username: &str,
    description: String,
) -> Event {
    Event::alert(
        Security::UserChanged,
        Agent::user(developer.email.as_str()),
        origin.clone(),
        Subject::user(username),
        format!("{description} (developer {})", developer.account_id),
    )
}

/// The record a new persona is linked to: the developers, oldest account first, take the
/// records (ordered by id) in turn, so developers get different ones while there are enough.
async fn assigned(
    state: &AppState,
    developer: &Developer,
    role: Role,
) -> PageResult<Option<String>> {
    let mut records: Vec<Choice> = match role {
        Role::Patient => records::find_patients(state, "").await?,
        Role::Practitioner => records::find_practitioners(state, "").await?,
    };
    if records.is_empty() {
        return Ok(None);
    }
    records.sort_by(|a, b| a.id.cmp(&b.id));
    let developers = state.store.developers().await?;
    let turn = developers
        .iter()
        .filter(|other| {
            (other.created_at, &other.account_id) < (developer.created_at, &developer.account_id)
        })
        .count();
    Ok(Some(records[turn % records.len()].id.clone()))
}

/// The notice on every portal page of a sandbox deployment, put at the top of the page's
/// main content; it says how submitted apps are approved under the policy in force.
fn notice(policy: ApprovalPolicy) -> String {
    let approval = match policy {
        ApprovalPolicy::All => "apps are approved as soon as they are submitted",
        ApprovalPolicy::PatientRead => {
            "apps asking only to read a patient's data are approved as soon as they are \
             submitted, and the others are reviewed by this server's administrators"
        }
        ApprovalPolicy::Review => "apps are reviewed by this server's administrators",
    };
    format!(
        "<p class=\"sandbox-notice\" role=\"note\"><strong>Sandbox.</strong> This is a \
         sandbox deployment for developers: {approval}, loopback redirect URIs are allowed, \
         and the patients are sample data.</p>"
    )
}

/// Where the notice goes: right after the layout's `<main>` tag.
const MAIN_TAG: &str = "<main id=\"main\">";

/// Middleware of the portal's routes: on a sandbox deployment, adds the sandbox notice to
/// every HTML page.
pub async fn add_notice(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if !state.config.onboarding.sandbox || !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return PageError::internal("cannot read the page").into_response();
    };
    let page = String::from_utf8_lossy(&bytes);
    let notice = notice(state.config.onboarding.policy());
    let page = page.replacen(MAIN_TAG, &format!("{MAIN_TAG}\n{notice}"), 1);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(page))
}
