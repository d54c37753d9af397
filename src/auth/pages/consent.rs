//! The consent page (`POST /auth/consent`): what it shows (each scope in plain language, and
//! the narrower category scopes a patient may choose instead of a whole resource type), and
//! the answer: allow (a grant, an authorization code from `oauth/code_grant.rs` and the
//! redirect back to the app) or deny.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum_extra::extract::CookieJar;

use super::app_card::AppCard;
use super::authorize::{back_to_app, error_redirect};
use super::records;
use super::steps::{
    context, encounter_choices, launch_of, needs_picker, next_step, pending_of, signed_in,
};
use crate::access::scope::{Context, Permission, ResourceScope, Scope, ScopeSet};
use crate::audit::{Agent, Event, Kind, Origin, Outcome, Security};
use crate::auth::oauth::code_grant::issue_code;
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::auth::Grant;
use crate::web::error::{PageError, PageResult};
use crate::web::session;

/// One scope checkbox on the consent page.
pub struct ScopeItem {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "auth/consent.html")]
pub struct ConsentPage<'a> {
    pub action: &'a str,
    pub csrf_token: &'a str,
    pub pending: &'a str,
    /// The app: its name, logo and links (from its approved revision).
    pub app: AppCard,
    pub username: &'a str,
    pub patient: Option<String>,
    pub requested: Vec<ScopeItem>,
    pub narrower: Vec<ScopeItem>,
}

const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const US_CORE_CONDITION_CATEGORY: &str =
    "http://hl7.org/fhir/us/core/CodeSystem/condition-category";

/// The categories offered as granular scopes: (resource type, system, code, label).
const CATEGORIES: &[(&str, &str, &str, &str)] = &[
    (
        "Observation",
        OBSERVATION_CATEGORY,
        "laboratory",
        "laboratory results",
    ),
    (
        "Observation",
        OBSERVATION_CATEGORY,
        "vital-signs",
        "vital signs",
    ),
    (
        "Observation",
        OBSERVATION_CATEGORY,
        "social-history",
        "social history",
    ),
    (
        "Observation",
        OBSERVATION_CATEGORY,
        "survey",
        "surveys and assessments",
    ),
    (
        "Observation",
        OBSERVATION_CATEGORY,
        "exam",
        "physical exam findings",
    ),
    (
        "Observation",
        OBSERVATION_CATEGORY,
        "imaging",
        "imaging results",
    ),
    (
        "Observation",
        OBSERVATION_CATEGORY,
        "procedure",
        "procedure results",
    ),
    (
        "Condition",
        CONDITION_CATEGORY,
        "problem-list-item",
        "problem list",
    ),
    (
        "Condition",
        CONDITION_CATEGORY,
        "encounter-diagnosis",
        "encounter diagnoses",
    ),
    (
        "Condition",
        US_CORE_CONDITION_CATEGORY,
        "health-concern",
        "health concerns",
    ),
];

/// The granular category scopes offered in place of whole-type scopes on Observation and
/// Condition (same context and permissions), in the order the whole-type scopes came.
pub fn narrower_choices(requested: &ScopeSet) -> ScopeSet {
    let mut offered = Vec::new();
    for asked in requested.resource_scopes() {
        let Some(resource_type) = asked.resource_type.as_deref() else {
            continue;
        };
        if asked.query.is_some() {
            continue;
        }
        for (category_type, system, code, _) in CATEGORIES {
            if *category_type != resource_type {
                continue;
            }
            let granular = ResourceScope {
                query: Some(format!("category={system}|{code}")),
                ..asked.clone()
            };
            offered.push(Scope::Resource {
                text: granular.to_string(),
                scope: granular,
            });
        }
    }
    offered
        .into_iter()
        .filter(|scope| !requested.contains(scope))
        .collect()
}

/// The checkboxes for `scopes`.
pub fn items(scopes: &ScopeSet) -> Vec<ScopeItem> {
    scopes
        .iter()
        .map(|scope| ScopeItem {
            value: scope.to_string(),
            label: describe(scope),
        })
        .collect()
}

/// One scope in plain language.
pub fn describe(scope: &Scope) -> String {
    match scope {
        Scope::Resource { scope, .. } => describe_resource(scope),
        Scope::Launch => "Open within your current session in the record".into(),
        Scope::LaunchPatient => "Know which patient's record is open".into(),
        Scope::LaunchEncounter => "Know which visit (encounter) is open".into(),
        Scope::OpenId => "Confirm your identity".into(),
        Scope::FhirUser => "Know who you are in the record (your FHIR user)".into(),
        Scope::Profile => "See your name and profile".into(),
        Scope::OfflineAccess => "Keep access when you are not using it, until you revoke it".into(),
        Scope::OnlineAccess => "Keep access while you are signed in".into(),
    }
}

fn describe_resource(scope: &ResourceScope) -> String {
    let verbs: Vec<&str> = [
        (Permission::Create, "create"),
        (Permission::Read, "read"),
        (Permission::Update, "update"),
        (Permission::Delete, "delete"),
        (Permission::Search, "search"),
    ]
    .iter()
    .filter(|(permission, _)| scope.permissions.contains(*permission))
    .map(|(_, verb)| *verb)
    .collect();
    let what = match scope.resource_type.as_deref() {
        Some(resource_type) => format!("{resource_type} records"),
        None => "all kinds of records".into(),
    };
    let whose = match scope.context {
        Context::Patient => "of the selected patient",
        Context::User => "that you may see",
        Context::System => "of every patient",
    };
    let mut text = format!("{} {what} {whose}", capitalize(&verbs.join(", ")));
    if let Some(query) = &scope.query {
        let label = CATEGORIES
            .iter()
            .find(|(_, system, code, _)| query == &format!("category={system}|{code}"))
            .map(|(_, _, _, label)| format!(" (only {label})"))
            .unwrap_or_else(|| format!(" (only those matching {query})"));
        text.push_str(&label);
    }
    text
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What the user granted: the submitted scopes that were asked for or offered, never wider
/// than the registration.
pub fn granted(submitted: &[&str], requested: &ScopeSet, registered: &ScopeSet) -> ScopeSet {
    let offered = narrower_choices(requested);
    let chosen: ScopeSet = submitted
        .iter()
        .filter_map(|text| Scope::parse(text))
        .filter(|scope| requested.contains(scope) || offered.contains(scope))
        .collect();
    chosen.within(registered)
}

/// `POST /auth/consent`: allow (a grant, a code, back to the app) or deny.
pub async fn consent(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    body: Bytes,
) -> PageResult {
    let form = Fields::parse(&body);
    let (state, jar, form) = (&state, &jar, &form);
    let session = session::posted(&state.store, jar, form).await?;
    let pending = pending_of(&state.store, &session, form.get("pending")).await?;
    let launch = launch_of(&state.store, &pending).await?;
    let Some(user) = signed_in(&state.store, &session, launch.as_ref()).await? else {
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
            granted(
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
    let agent = Agent {
        fhir_user: Some(user.fhir_user.clone()),
        username: Some(user.username.clone()),
        client_id: Some(client.client_id.clone()),
        token_id: None,
    };
    let (decision, description) = if granted.is_empty() {
        (Security::ConsentDenied, "no scopes granted".to_owned())
    } else {
        (Security::ConsentApproved, format!("granted {granted}"))
    };
    let event = Event::security(Kind::Security(decision), Outcome::Success, agent, origin)
        .with_description(description);
    state.audit.record(event).await?;
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
    let grant = Grant {
        grant_id: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        username: Some(user.username.clone()),
        scope: granted.to_string(),
        patient,
        encounter,
        fhir_user: Some(user.fhir_user.clone()),
        need_patient_banner: launch.is_none(),
        created_at: crate::auth::now(),
        revoked: false,
    };
    let code = issue_code(&state.store, &grant, &pending).await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(app_state) = app_state {
        pairs.push(("state", app_state));
    }
    Ok(back_to_app(&pending.redirect_uri, &pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

    #[test]
    fn offers_categories_for_whole_observation_and_condition_scopes() {
        let requested =
            ScopeSet::parse("patient/Observation.rs user/Condition.r patient/Patient.r");
        let offered = narrower_choices(&requested).to_string();
        assert!(offered.contains(LAB), "{offered}");
        assert!(offered.contains(
            "user/Condition.r?category=http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern"
        ));
        assert!(!offered.contains("Patient.r?"));
        assert_eq!(narrower_choices(&ScopeSet::parse(LAB)).to_string(), "");
    }

    #[test]
    fn granted_is_never_wider_than_asked_offered_or_registered() {
        let requested = ScopeSet::parse("patient/Observation.rs launch/patient openid");
        let registered = ScopeSet::parse("patient/*.rs launch/patient");
        let granted = granted(
            &[
                LAB,
                "launch/patient",
                "openid",
                "patient/Condition.rs",
                "user/*.cruds",
            ],
            &requested,
            &registered,
        );
        assert_eq!(granted.to_string(), format!("{LAB} launch/patient"));
    }

    #[test]
    fn describes_scopes_plainly() {
        let scopes = ScopeSet::parse(&format!("{LAB} patient/*.read offline_access"));
        let labels: Vec<String> = scopes.iter().map(describe).collect();
        assert_eq!(
            labels,
            [
                "Read, search Observation records of the selected patient (only laboratory results)",
                "Read, search all kinds of records of the selected patient",
                "Keep access when you are not using it, until you revoke it",
            ]
        );
    }
}
