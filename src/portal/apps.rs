//! A developer's apps: the "My Applications" list on `/developer`, the registration form
//! (`/developer/apps/new`, `/developer/apps/{app_id}/edit`: save a draft, or save and submit
//! for review), the app's page (`/developer/apps/{app_id}`: status, the request, the history
//! with the reviewers' reasons, the client id, resubmit, retire) and its credentials (the
//! first client secret generated here and shown once, rotation with an overlap), and on a
//! sandbox the one-click Postman callbacks. Everything goes through the lifecycle
//! (`crate::apps`) as `Actor::Developer`; an app another developer owns is "not found".

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::app_form::{self, Form, FormPage, POSTMAN_CALLBACKS};
use super::signed_in::{self, SignedIn};
use super::terms;
use crate::apps::lifecycle::{self, Origin, RevisionState, Submitted};
use crate::apps::request::{AppRequest, ClientType};
use crate::apps::view::{self, AppDetail};
use crate::apps::{Action, Actor, LifecycleError, Status, logo};
use crate::audit::Origin as AuditOrigin;
use crate::config::ApprovalPolicy;
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::apps::AppFilter;
use crate::store::developers::Developer;
use crate::web::error::{PageError, PageResult};
use crate::web::html::{date, html, redirect, url};

/// How long a rotated-out secret may keep working: the choices on the page.
const OVERLAPS: [(i64, &str); 4] = [
    (0, "Stop it now"),
    (3600, "1 hour"),
    (24 * 3600, "24 hours"),
    (7 * 24 * 3600, "7 days"),
];

/// One app in "My Applications".
pub struct Listed {
    pub app_id: String,
    pub name: String,
    pub logo: Option<String>,
    pub status: String,
    pub status_class: &'static str,
    /// "a new revision is waiting for review" and the like.
    pub note: Option<&'static str>,
}

/// The developer's apps, most recently changed first.
pub async fn listed(state: &AppState, developer: &Developer) -> PageResult<Vec<Listed>> {
    let rows = state
        .store
        .apps(&AppFilter {
            owner: Some(&developer.account_id),
            ..AppFilter::default()
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let request: AppRequest = serde_json::from_str(&row.latest_request).unwrap_or_default();
            let summary = view::AppSummary::from(row);
            let note = match (summary.status, summary.latest_state) {
                (Status::Active, Some(RevisionState::PendingReview)) => {
                    Some("a new revision is waiting for review")
                }
                (Status::Active, Some(RevisionState::Draft)) => Some("an edit is in progress"),
                (Status::Active, Some(RevisionState::ChangesRequested)) => {
                    Some("changes were requested to the new revision")
                }
                (Status::Active, Some(RevisionState::Rejected)) => {
                    Some("the new revision was rejected")
                }
                _ => None,
            };
            Listed {
                app_id: summary.app_id,
                name: summary.name,
                logo: request.logo,
                status: summary.status.label(),
                status_class: status_class(summary.status),
                note,
            }
        })
        .collect())
}

fn status_class(status: Status) -> &'static str {
    match status {
        Status::Active => "active",
        Status::Rejected | Status::Suspended => "rejected",
        _ => "",
    }
}

fn not_found() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "App not found",
        "There is no such app among your applications.",
    )
}

/// The app `app_id` if the developer owns it (else "not found", whoever owns it).
async fn owned(state: &AppState, developer: &Developer, app_id: &str) -> PageResult<AppDetail> {
    let app = state.store.app(app_id).await?.ok_or_else(not_found)?;
    if app.owner.as_deref() != Some(developer.account_id.as_str()) {
        return Err(not_found());
    }
    view::show(&state.store, &app.app_id).await.map_err(refusal)
}

/// A lifecycle refusal as a page.
fn refusal(error: LifecycleError) -> PageError {
    match error {
        LifecycleError::NotFound(_) => not_found(),
        LifecycleError::Store(error) => error.into(),
        other => PageError::new(
            StatusCode::CONFLICT,
            "Not possible now",
            format!("{}.", capitalize(&other.to_string())),
        ),
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn app_path(app_id: &str) -> String {
    format!("/developer/apps/{app_id}")
}

fn actor(developer: &Developer) -> Actor {
    Actor::Developer(developer.account_id.clone())
}

fn now() -> i64 {
    crate::fhir::instant::now_secs()
}

/// The resource types offered as scope checkboxes: those with US Core profiles.
fn resource_types(state: &AppState) -> Vec<String> {
    crate::docs::resources::type_names(&state.capability).0
}

/// The registration form page with `form`.
async fn form_page(
    state: &AppState,
    signed_in: &SignedIn,
    app: Option<(&str, &str)>,
    form: &Form,
    notice: Option<&str>,
    status: StatusCode,
) -> PageResult {
    let terms_html = terms::html(&state.config.portal).await?;
    let (heading, action, back) = match app {
        Some((app_id, name)) => (
            format!("Edit {name}"),
            format!("{}/edit", app_path(app_id)),
            app_path(app_id),
        ),
        None => (
            "Register a new app".to_string(),
            "/developer/apps/new".to_string(),
            String::new(),
        ),
    };
    Ok(html(
        status,
        &FormPage {
            csrf_token: &signed_in.session.csrf_token,
            heading: &heading,
            action: &action,
            back: &back,
            form,
            notice,
            terms_html: &terms_html,
            sandbox: state.config.onboarding.sandbox,
            approves_at_once: state.config.onboarding.policy() == ApprovalPolicy::All,
            max_logo_kib: logo::MAX_BYTES / 1024,
        },
    ))
}

/// `GET /developer/apps/new`.
pub async fn new_page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let Some(signed_in) = signed_in::current(&state, &jar).await? else {
        return Ok(signed_in::to_sign_in(&state));
    };
    let request = AppRequest {
        contact_name: signed_in.developer.name.clone(),
        contact_email: signed_in.developer.email.clone(),
        ..AppRequest::default()
    };
    let form = Form::new(request, &resource_types(&state), Vec::new());
    form_page(&state, &signed_in, None, &form, None, StatusCode::OK).await
}

/// `GET /developer/apps/{app_id}/edit`: the latest revision, to edit.
pub async fn edit_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(app_id): Path<String>,
) -> PageResult {
    let Some(signed_in) = signed_in::current(&state, &jar).await? else {
        return Ok(signed_in::to_sign_in(&state));
    };
    let detail = owned(&state, &signed_in.developer, &app_id).await?;
    editable(&detail)?;
    let request = latest_request(&detail);
    let name = detail.summary.name.clone();
    let form = Form::new(request, &resource_types(&state), Vec::new());
    form_page(
        &state,
        &signed_in,
        Some((&app_id, &name)),
        &form,
        None,
        StatusCode::OK,
    )
    .await
}

/// Whether the app may be edited now (not while a revision waits for review).
fn editable(detail: &AppDetail) -> PageResult<()> {
    if detail.pending_revision.is_some() {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            "Waiting for review",
            "A revision of this app is waiting for review: you can edit it again once it has \
             been reviewed.",
        ));
    }
    if !matches!(
        detail.summary.status,
        Status::Draft | Status::ChangesRequested | Status::Active
    ) {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            "Cannot be edited",
            format!(
                "An app in {} cannot be edited.",
                detail.summary.status.label()
            ),
        ));
    }
    Ok(())
}

fn latest_request(detail: &AppDetail) -> AppRequest {
    detail
        .revisions
        .last()
        .map(|revision| revision.request.clone())
        .unwrap_or_default()
}

/// `POST /developer/apps/new`.
pub async fn create(
    State(state): State<AppState>,
    jar: CookieJar,
    origin: AuditOrigin,
    request: Request,
) -> PageResult {
    let audit = lifecycle::Audit::new(&state.audit, origin);
    posted_form(&state, &audit, &jar, None, request).await
}

/// `POST /developer/apps/{app_id}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(app_id): Path<String>,
    origin: AuditOrigin,
    request: Request,
) -> PageResult {
    let audit = lifecycle::Audit::new(&state.audit, origin);
    posted_form(&state, &audit, &jar, Some(app_id), request).await
}

/// The form posted: the logo checked and stored, the request saved (created), and with
/// "Submit for review" submitted; problems come back on the form with what was typed. The
/// transitions are recorded with the request's origin (`audit`).
async fn posted_form(
    state: &AppState,
    audit: &lifecycle::Audit<'_>,
    jar: &CookieJar,
    app_id: Option<String>,
    request: Request,
) -> PageResult {
    let posted = app_form::read(state, request).await?;
    let signed_in = signed_in::posted(state, jar, &posted.fields).await?;
    let developer = &signed_in.developer;
    let detail = match &app_id {
        Some(app_id) => Some(owned(state, developer, app_id).await?),
        None => None,
    };
    let types = resource_types(state);
    let (logo, logo_problem) =
        app_form::logo_of(state, &posted.fields, posted.upload.as_ref()).await?;
    let app_request = app_form::request_of(&posted.fields, logo);
    let submitting = posted.fields.get("intent") == Some("submit");
    let named = |detail: &Option<AppDetail>| {
        detail
            .as_ref()
            .map(|d| (d.summary.app_id.clone(), d.summary.name.clone()))
    };
    let existing = named(&detail);
    let signed = &signed_in;
    let again = |problems, notice: Option<&'static str>, app: Option<(String, String)>| {
        let form = Form::new(app_request.clone(), &types, problems);
        async move {
            let app = app.as_ref().map(|(id, name)| (id.as_str(), name.as_str()));
            form_page(state, signed, app, &form, notice, StatusCode::BAD_REQUEST).await
        }
    };
    if let Some(problem) = logo_problem {
        let mut problems = vec![problem];
        problems.extend(crate::apps::validate::draft(&app_request));
        return again(problems, None, existing).await;
    }
    let actor = actor(developer);
    let saved = match &detail {
        Some(detail) => lifecycle::save(
            &state.store,
            audit,
            &actor,
            &detail.summary.app_id,
            &app_request,
            now(),
        )
        .await
        .map(|_| detail.summary.app_id.clone()),
        None => lifecycle::create(
            &state.store,
            audit,
            &actor,
            Some(&developer.account_id),
            Origin::Portal,
            &app_request,
            now(),
        )
        .await
        .map(|created| created.app_id),
    };
    let app_id = match saved {
        Ok(app_id) => app_id,
        Err(LifecycleError::Invalid(problems)) => return again(problems, None, existing).await,
        Err(error) => return Err(refusal(error)),
    };
    let path = app_path(&app_id);
    if !submitting {
        return Ok(redirect(&url(&state.config, &format!("{path}?done=saved"))));
    }
    let saved_app = Some((app_id.clone(), app_request.name.clone()));
    match lifecycle::submit(
        &state.store,
        audit,
        &state.config.onboarding,
        &actor,
        &app_id,
        now(),
    )
    .await
    {
        Ok(submitted) => Ok(redirect(&url(
            &state.config,
            &format!("{path}?done={}", submitted_done(&submitted)),
        ))),
        Err(LifecycleError::Invalid(problems)) => {
            let notice = "Your changes are saved as a draft. Fix the fields marked below, then \
                          submit again.";
            again(problems, Some(notice), saved_app).await
        }
        Err(error) => Err(refusal(error)),
    }
}

fn submitted_done(submitted: &Submitted) -> &'static str {
    match submitted {
        Submitted::PendingReview { .. } => "submitted",
        Submitted::Approved { .. } => "approved",
    }
}

/// One labelled value of a request.
pub struct Fact {
    pub label: &'static str,
    pub value: String,
}

/// A request as label/value rows (empty fields left out).
fn facts(request: &AppRequest) -> Vec<Fact> {
    let mut facts = Vec::new();
    let mut add = |label: &'static str, value: String| {
        if !value.trim().is_empty() {
            facts.push(Fact { label, value });
        }
    };
    add("Name", request.name.clone());
    add("Description", request.description.clone());
    add(
        "Audience",
        request.audience.map(|a| a.as_str()).unwrap_or("").into(),
    );
    add("Purpose", request.purpose.clone());
    add("Intended users", request.intended_users.clone());
    add("Sites or practices", request.sites.clone());
    add("Contact", request.contact_name.clone());
    add("Contact e-mail", request.contact_email.clone());
    add("App URL", request.app_url.clone());
    add("Privacy policy", request.privacy_url.clone());
    add("Terms of use", request.terms_url.clone());
    add("Sign-off URL", request.logout_url.clone());
    add(
        "Client type",
        request.client_type.map(|c| c.as_str()).unwrap_or("").into(),
    );
    add("JWK Set URL", request.jwks_uri.clone());
    add(
        "JWK Set",
        if request.jwks.is_empty() {
            String::new()
        } else {
            "pasted".into()
        },
    );
    add("Redirect URIs", request.redirect_uris.join("\n"));
    add("EHR launch URL", request.launch_url.clone());
    add(
        "Refresh tokens",
        if request.refresh_tokens { "yes" } else { "no" }.into(),
    );
    add(
        "SMART version",
        match request.scope_version {
            Some(crate::apps::request::ScopeVersion::V1) => "v1".into(),
            Some(crate::apps::request::ScopeVersion::V2) => "v2".into(),
            None => String::new(),
        },
    );
    add("Scopes", request.scope());
    add(
        "Operator's terms",
        if request.accepted_terms {
            "accepted"
        } else {
            "not accepted"
        }
        .into(),
    );
    facts
}

/// One history entry as the developer sees it.
pub struct HistoryRow {
    pub at: String,
    pub who: String,
    pub what: String,
    pub from: String,
    pub to: String,
    pub revision: String,
    pub reason: String,
}

fn who(actor: &str, developer: &Developer) -> String {
    match Actor::parse(actor) {
        Some(Actor::Developer(id)) if id == developer.account_id => "you".into(),
        Some(Actor::Developer(_)) => "a developer".into(),
        Some(Actor::Admin(_)) => "an administrator".into(),
        Some(Actor::Operator) => "the operator".into(),
        Some(Actor::Policy) => "the approval policy".into(),
        Some(Actor::Client) => "the app (dynamic registration)".into(),
        None => actor.to_string(),
    }
}

/// A revision shown on the app's page.
pub struct RevisionBlock {
    pub title: String,
    pub facts: Vec<Fact>,
    pub logo: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/app.html")]
struct AppPage<'a> {
    csrf_token: &'a str,
    app_id: &'a str,
    name: &'a str,
    logo: Option<String>,
    status: String,
    status_class: &'static str,
    done: Option<&'static str>,
    /// The reviewer's reason when the app (or its latest revision) was sent back or refused.
    feedback: Option<(String, String)>,
    client_id: Option<String>,
    client_type: String,
    /// A shared-secret app that is active: generate (no secret yet) or rotate.
    symmetric: bool,
    has_secret: bool,
    previous_valid_until: Option<String>,
    overlaps: &'static [(i64, &'static str)],
    current: RevisionBlock,
    /// The revision being prepared or reviewed, beside the approved one.
    next: Option<RevisionBlock>,
    history: Vec<HistoryRow>,
    can_edit: bool,
    can_submit: bool,
    can_retire: bool,
    postman: bool,
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn done_message(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "saved" => "Saved as a draft.",
        "submitted" => "Submitted for review. You will see the decision here.",
        "approved" => "Approved: the app is active.",
        "retired" => "The app is retired: its client no longer works.",
        "rotated" => "The secret was rotated.",
        "postman" => "Postman's callback URLs were added and the revision submitted.",
        _ => return None,
    })
}

fn revision_title(revision: i64, state: Option<RevisionState>) -> String {
    let state = match state {
        Some(RevisionState::Draft) => "draft, not submitted",
        Some(RevisionState::PendingReview) => "waiting for review",
        Some(RevisionState::ChangesRequested) => "changes requested",
        Some(RevisionState::Approved) => "approved, in use",
        Some(RevisionState::Rejected) => "rejected",
        Some(RevisionState::Superseded) => "replaced",
        None => "unknown",
    };
    format!("Revision {revision} ({state})")
}

/// `GET /developer/apps/{app_id}`.
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(app_id): Path<String>,
    Query(done): Query<Done>,
) -> PageResult {
    let Some(signed_in) = signed_in::current(&state, &jar).await? else {
        return Ok(signed_in::to_sign_in(&state));
    };
    let developer = &signed_in.developer;
    let detail = owned(&state, developer, &app_id).await?;
    let status = detail.summary.status;
    let active = detail
        .active_revision
        .and_then(|n| detail.revisions.iter().find(|r| r.revision == n));
    let latest = detail.revisions.last();
    let shown = active.or(latest);
    let block = |revision: &view::RevisionView| RevisionBlock {
        title: revision_title(revision.revision, revision.state),
        facts: facts(&revision.request),
        logo: revision.request.logo.clone(),
    };
    let current = shown.map(block).unwrap_or(RevisionBlock {
        title: String::new(),
        facts: Vec::new(),
        logo: None,
    });
    let next = match (active, latest) {
        (Some(active), Some(latest)) if latest.revision != active.revision => Some(block(latest)),
        _ => None,
    };
    let latest_state = latest.and_then(|r| r.state);
    let feedback = detail
        .history
        .iter()
        .rev()
        .find(|event| {
            matches!(
                event.action,
                Some(Action::RequestChanges | Action::Reject | Action::Suspend)
            )
        })
        .filter(|_| {
            matches!(
                status,
                Status::ChangesRequested | Status::Rejected | Status::Suspended
            ) || matches!(
                latest_state,
                Some(RevisionState::ChangesRequested | RevisionState::Rejected)
            )
        })
        .map(|event| {
            let what = event.action.map_or("Suspended", Action::label);
            (what.to_string(), event.reason.clone().unwrap_or_default())
        });
    let history = detail
        .history
        .iter()
        .map(|event| HistoryRow {
            at: date(event.at),
            who: who(&event.actor, developer),
            what: event.action.map_or("Changed", Action::label).to_string(),
            from: event.from.map(Status::label).unwrap_or_default(),
            to: event.to.map(Status::label).unwrap_or_default(),
            revision: event.revision.map(|n| n.to_string()).unwrap_or_default(),
            reason: event.reason.clone().unwrap_or_default(),
        })
        .collect();
    let credentials = detail.credentials.as_ref();
    let symmetric = status == Status::Active
        && credentials.is_some_and(|c| c.client_type == ClientType::ConfidentialSymmetric.as_str());
    let can_edit = editable(&detail).is_ok();
    let page = AppPage {
        csrf_token: &signed_in.session.csrf_token,
        app_id: &detail.summary.app_id,
        name: &detail.summary.name,
        logo: shown.and_then(|r| r.request.logo.clone()),
        status: status.label(),
        status_class: status_class(status),
        done: done_message(done.done.as_deref()),
        feedback,
        client_id: credentials
            .filter(|_| matches!(status, Status::Active | Status::Suspended))
            .map(|c| c.client_id.clone()),
        client_type: credentials
            .map(|c| c.client_type.clone())
            .unwrap_or_default(),
        symmetric,
        has_secret: credentials.is_some_and(|c| c.has_secret),
        previous_valid_until: credentials
            .and_then(|c| c.previous_secret_valid_until)
            .filter(|until| *until > now())
            .map(date),
        overlaps: &OVERLAPS,
        current,
        next,
        history,
        can_edit,
        can_submit: can_edit
            && matches!(
                latest_state,
                Some(RevisionState::Draft | RevisionState::ChangesRequested)
            ),
        can_retire: status != Status::Retired,
        postman: state.config.onboarding.sandbox
            && can_edit
            && status != Status::Draft
            && !latest.is_some_and(|r| {
                POSTMAN_CALLBACKS
                    .iter()
                    .all(|uri| r.request.redirect_uris.iter().any(|u| u == uri))
            }),
    };
    Ok(html(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "portal/app_secret.html")]
struct SecretPage<'a> {
    app_id: &'a str,
    name: &'a str,
    client_id: &'a str,
    client_secret: &'a str,
    /// When a rotated-out secret stops working (rotation only).
    previous_until: Option<String>,
}

/// `POST /developer/apps/{app_id}/{action}`: `submit` (resubmit the edited or sent-back
/// revision), `secret` (the first secret), `rotate` (with `keep_old_for` seconds), `retire`,
/// `postman` (sandbox: add Postman's callbacks and submit).
pub async fn act(
    State(state): State<AppState>,
    jar: CookieJar,
    Path((app_id, action)): Path<(String, String)>,
    origin: AuditOrigin,
    body: Bytes,
) -> PageResult {
    let audit = lifecycle::Audit::new(&state.audit, origin);
    let form = Fields::parse(&body);
    let signed_in = signed_in::posted(&state, &jar, &form).await?;
    let developer = &signed_in.developer;
    let detail = owned(&state, developer, &app_id).await?;
    let app_id = detail.summary.app_id.clone();
    let actor = actor(developer);
    let path = app_path(&app_id);
    let back = |done: &str| {
        Ok(redirect(&url(
            &state.config,
            &format!("{path}?done={done}"),
        )))
    };
    match action.as_str() {
        "submit" => {
            match lifecycle::submit(
                &state.store,
                &audit,
                &state.config.onboarding,
                &actor,
                &app_id,
                now(),
            )
            .await
            {
                Ok(submitted) => back(submitted_done(&submitted)),
                Err(LifecycleError::Invalid(problems)) => {
                    let form =
                        Form::new(latest_request(&detail), &resource_types(&state), problems);
                    let notice = "The request is not complete yet: fix the fields marked below, \
                                  then submit.";
                    let app = Some((app_id.as_str(), detail.summary.name.as_str()));
                    form_page(
                        &state,
                        &signed_in,
                        app,
                        &form,
                        Some(notice),
                        StatusCode::BAD_REQUEST,
                    )
                    .await
                }
                Err(error) => Err(refusal(error)),
            }
        }
        "secret" => {
            let issued = lifecycle::issue_secret(&state.store, &audit, &actor, &app_id, now())
                .await
                .map_err(|error| match error {
                    LifecycleError::NoSecret => PageError::new(
                        StatusCode::CONFLICT,
                        "Secret already generated",
                        "This app has a client secret already; it is shown only once. Rotate \
                         it to get a new one.",
                    ),
                    other => refusal(other),
                })?;
            Ok(html(
                StatusCode::OK,
                &SecretPage {
                    app_id: &app_id,
                    name: &detail.summary.name,
                    client_id: &issued.client_id,
                    client_secret: &issued.client_secret,
                    previous_until: None,
                },
            ))
        }
        "rotate" => {
            let keep_old_for = form
                .get("keep_old_for")
                .and_then(|text| text.parse::<i64>().ok())
                .filter(|secs| OVERLAPS.iter().any(|(choice, _)| choice == secs))
                .ok_or_else(|| {
                    PageError::bad_request("Choose how long the old secret keeps working.")
                })?;
            let rotated = lifecycle::rotate_secret(
                &state.store,
                &audit,
                &actor,
                &app_id,
                keep_old_for,
                now(),
            )
            .await
            .map_err(refusal)?;
            Ok(html(
                StatusCode::OK,
                &SecretPage {
                    app_id: &app_id,
                    name: &detail.summary.name,
                    client_id: &rotated.client_id,
                    client_secret: &rotated.client_secret,
                    previous_until: Some(date(rotated.previous_valid_until)),
                },
            ))
        }
        "retire" => {
            if form.get("confirm") != Some("yes") {
                return Err(PageError::bad_request(
                    "Tick the box to confirm that the app is to be retired for good.",
                ));
            }
            lifecycle::retire(
                &state.store,
                &audit,
                &actor,
                &app_id,
                form.get("reason"),
                now(),
            )
            .await
            .map_err(refusal)?;
            back("retired")
        }
        "postman" if state.config.onboarding.sandbox => {
            editable(&detail)?;
            let mut request = latest_request(&detail);
            for uri in POSTMAN_CALLBACKS {
                if !request.redirect_uris.iter().any(|u| u == uri) {
                    request.redirect_uris.push(uri.to_string());
                }
            }
            lifecycle::save(&state.store, &audit, &actor, &app_id, &request, now())
                .await
                .map_err(refusal)?;
            match lifecycle::submit(
                &state.store,
                &audit,
                &state.config.onboarding,
                &actor,
                &app_id,
                now(),
            )
            .await
            {
                Ok(_) => back("postman"),
                Err(LifecycleError::Invalid(problems)) => {
                    let form = Form::new(request, &resource_types(&state), problems);
                    let notice = "Postman's callback URLs were added to a draft, but the request \
                                  is not complete yet: fix the fields marked below, then submit.";
                    let app = Some((app_id.as_str(), detail.summary.name.as_str()));
                    form_page(
                        &state,
                        &signed_in,
                        app,
                        &form,
                        Some(notice),
                        StatusCode::BAD_REQUEST,
                    )
                    .await
                }
                Err(error) => Err(refusal(error)),
            }
        }
        _ => Err(not_found()),
    }
}
