//! App review and management (`/admin/apps`): the queue of registration requests by status,
//! one app's page (the revision under review field by field beside the approved one, what was
//! checked at its submission, its logo, credentials, activity and history) and the
//! lifecycle's actions on it as the signed-in admin (approve, request changes, reject,
//! suspend, reactivate, retire), each offered only when the app's status allows it. The
//! state machine and its refusals are `apps::lifecycle`'s; a decision on a developer's app is
//! mailed to them (`notify`), and the mail failing never undoes it.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;

use super::guard::Admin;
use super::nav::{Card, Console, Section};
use crate::apps::jwks_check::JwksCheck;
use crate::apps::lifecycle::{self, LifecycleError};
use crate::apps::request::{AppRequest, Audience, ScopeVersion};
use crate::apps::view::{self, AppDetail, AppSummary, EventView, RevisionView};
use crate::apps::{Action, Actor, Problem, Status};
use crate::audit::Origin;
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::apps::AppFilter;
use crate::store::developers::Developer;
use crate::web::error::{PageError, PageResult};
use crate::web::html::{date, html, redirect, url};

pub const SECTION: Section = Section {
    path: "/admin/apps",
    title: "Apps",
};

/// The longest reason an admin may give (it is mailed and shown to the developer).
const MAX_REASON_CHARS: usize = 2000;

/// The queue's tabs, by their `show=` value: the apps awaiting review first (new apps and
/// edits of active ones), then each other status, then all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Awaiting,
    Status(Status),
    All,
}

impl Tab {
    fn all() -> Vec<Tab> {
        let mut tabs = vec![Tab::Awaiting];
        tabs.extend(
            Status::ALL
                .into_iter()
                .filter(|s| *s != Status::PendingReview)
                .map(Tab::Status),
        );
        tabs.push(Tab::All);
        tabs
    }

    fn key(self) -> &'static str {
        match self {
            Tab::Awaiting => "awaiting",
            Tab::Status(status) => status.as_str(),
            Tab::All => "all",
        }
    }

    fn label(self) -> String {
        match self {
            Tab::Awaiting => "Awaiting review".into(),
            Tab::Status(status) => status.label(),
            Tab::All => "All".into(),
        }
    }

    fn parse(text: &str) -> Option<Tab> {
        Tab::all().into_iter().find(|tab| tab.key() == text)
    }

    fn holds(self, app: &AppSummary) -> bool {
        match self {
            Tab::Awaiting => app.awaiting_review,
            Tab::Status(status) => app.status == status,
            Tab::All => true,
        }
    }
}

/// A tab of the queue with how many apps it holds.
struct TabLink {
    key: &'static str,
    label: String,
    count: usize,
    current: bool,
}

/// A developer account as the console names it.
struct OwnerView {
    account_id: String,
    name: String,
    email: String,
    organization: String,
}

impl From<&Developer> for OwnerView {
    fn from(developer: &Developer) -> Self {
        OwnerView {
            account_id: developer.account_id.clone(),
            name: developer.name.clone(),
            email: developer.email.clone(),
            organization: developer.organization.clone(),
        }
    }
}

/// An app as the queue lists it.
struct AppRow {
    app_id: String,
    name: String,
    /// The developer account that asked for it, when it came through the portal.
    owner: Option<OwnerView>,
    /// Where it came from: the portal, dynamic registration, the command line.
    origin: &'static str,
    audience: &'static str,
    status: Status,
    /// An edit of an app in another status than PENDING REVIEW waits for review.
    edit_awaiting: bool,
    submitted: String,
}

#[derive(Template)]
#[template(path = "admin/apps.html")]
struct AppsPage {
    console: Console,
    tabs: Vec<TabLink>,
    tab_label: String,
    apps: Vec<AppRow>,
}

/// One field of the request: this revision's value and, beside an approved revision, that
/// one's.
struct FieldRow {
    label: &'static str,
    after: String,
    before: Option<String>,
    changed: bool,
}

/// A revision in the app's list of revisions.
struct RevisionLine {
    revision: i64,
    state: String,
    created: String,
    submitted: String,
    decided: String,
}

/// An entry of the history.
struct EventLine {
    at: String,
    actor: String,
    action: &'static str,
    from: Option<Status>,
    to: Option<Status>,
    revision: Option<i64>,
    reason: Option<String>,
}

/// Which actions the app's status allows now.
#[derive(Default)]
struct Actions {
    /// Approve, request changes, reject: a revision is waiting for review.
    review: bool,
    suspend: bool,
    reactivate: bool,
    retire: bool,
}

#[derive(Template)]
#[template(path = "admin/app.html")]
struct AppPage {
    console: Console,
    app: AppRow,
    notice: Option<&'static str>,
    /// The last decision could not be mailed to the developer.
    mail_failed: bool,
    message: Option<String>,
    client_id: Option<String>,
    client_type: String,
    client_disabled: bool,
    previous_secret_until: Option<String>,
    tokens_issued: i64,
    last_token: String,
    connected_patients: i64,
    /// The revision shown: the one waiting for review, else the latest.
    shown: Option<RevisionLine>,
    /// The shown revision waits for review.
    shown_pending: bool,
    /// The approved revision it is compared with (when it is another one).
    compared: Option<i64>,
    fields: Vec<FieldRow>,
    changed: Vec<&'static str>,
    logo: Option<String>,
    compared_logo: Option<String>,
    /// Whether the shown revision was submitted (its checks ran).
    checked: bool,
    jwks: Option<JwksCheck>,
    warnings: Vec<Problem>,
    revisions: Vec<RevisionLine>,
    history: Vec<EventLine>,
    actions: Actions,
    /// The app is ACTIVE and the revision under review is an edit of it.
    edit_of_active: bool,
    max_reason: usize,
}

/// The section's card on the console's home page.
pub async fn card(state: &AppState) -> PageResult<Card> {
    let apps = view::list(&state.store, &AppFilter::default()).await?;
    let count = |status: Status| apps.iter().filter(|a| a.status == status).count();
    Ok(Card {
        section: &SECTION,
        counts: vec![
            (
                "Awaiting review",
                apps.iter().filter(|a| a.awaiting_review).count(),
            ),
            ("Active", count(Status::Active)),
            ("Suspended", count(Status::Suspended)),
        ],
    })
}

/// `GET /admin/apps?show=…`: the apps of one tab (awaiting review by default, oldest
/// submission first; the others most recently changed first).
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    admin: Admin,
) -> PageResult {
    let query = Fields::parse(query.unwrap_or_default().as_bytes());
    let tab = match query.get("show") {
        None | Some("") => Tab::Awaiting,
        Some(text) => Tab::parse(text).ok_or_else(|| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "No such list",
                "There is no such list of apps.",
            )
        })?,
    };
    let apps = view::list(&state.store, &AppFilter::default()).await?;
    let owners = owners(&state).await?;
    let tabs = Tab::all()
        .into_iter()
        .map(|t| TabLink {
            key: t.key(),
            label: t.label(),
            count: apps.iter().filter(|a| t.holds(a)).count(),
            current: t == tab,
        })
        .collect();
    let mut shown: Vec<&AppSummary> = apps.iter().filter(|a| tab.holds(a)).collect();
    match tab {
        Tab::Awaiting => shown.sort_by_key(|a| (a.submitted_at, a.created_at)),
        Tab::All => shown.sort_by_key(|a| !a.awaiting_review),
        Tab::Status(_) => {}
    }
    let apps = shown.into_iter().map(|a| row(a, &owners)).collect();
    Ok(html(
        StatusCode::OK,
        &AppsPage {
            console: admin.console(&state, SECTION.path),
            tabs,
            tab_label: tab.label(),
            apps,
        },
    ))
}

/// `GET /admin/apps/{app_id}` (with `done=` after an action).
pub async fn show(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    RawQuery(query): RawQuery,
    admin: Admin,
) -> PageResult {
    let app_id = checked_id(&app_id)?;
    let query = Fields::parse(query.unwrap_or_default().as_bytes());
    let notice = query.get("done").and_then(done_notice);
    let mail_failed = query.get("mail") == Some("failed");
    let detail = detail(&state, app_id).await?;
    app_page(
        &state,
        &admin,
        &detail,
        StatusCode::OK,
        notice,
        mail_failed,
        None,
    )
    .await
}

/// `POST /admin/apps/{app_id}/{action}` with `reason`: `approve`, `request-changes`,
/// `reject`, `suspend`, `reactivate`, `retire`. Back to the app's page with a notice, or the
/// page again (400) with the lifecycle's reason for refusing.
pub async fn act(
    State(state): State<AppState>,
    Path((app_id, action)): Path<(String, String)>,
    origin: Origin,
    admin: Admin,
) -> PageResult {
    let app_id = checked_id(&app_id)?;
    let action = match action.as_str() {
        "approve" => Action::Approve,
        "request-changes" => Action::RequestChanges,
        "reject" => Action::Reject,
        "suspend" => Action::Suspend,
        "reactivate" => Action::Reactivate,
        "retire" => Action::Retire,
        _ => return Err(PageError::bad_request("There is no such action.")),
    };
    let before = detail(&state, app_id).await?;
    let reason = Some(admin.field("reason")).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        let message = format!("The reason is too long: at most {MAX_REASON_CHARS} characters.");
        let status = StatusCode::BAD_REQUEST;
        return app_page(&state, &admin, &before, status, None, false, Some(message)).await;
    }
    let store = &state.store;
    let audit = &lifecycle::Audit::new(&state.audit, origin);
    let actor = Actor::Admin(admin.user.username.clone());
    let now = crate::fhir::instant::now_secs();
    let done = match action {
        // A confidential-symmetric app's first secret is not shown here: its developer
        // gets one in the developer portal.
        Action::Approve => lifecycle::approve(store, audit, &actor, app_id, reason, now)
            .await
            .map(|_| ()),
        Action::RequestChanges => {
            lifecycle::request_changes(store, audit, &actor, app_id, reason, now)
                .await
                .map(|_| ())
        }
        Action::Reject => lifecycle::reject(store, audit, &actor, app_id, reason, now)
            .await
            .map(|_| ()),
        Action::Suspend => lifecycle::suspend(store, audit, &actor, app_id, reason, now)
            .await
            .map(|_| ()),
        Action::Reactivate => lifecycle::reactivate(store, audit, &actor, app_id, reason, now)
            .await
            .map(|_| ()),
        _ => lifecycle::retire(store, audit, &actor, app_id, reason, now)
            .await
            .map(|_| ()),
    };
    let error = match done {
        Ok(()) => {
            let mailed = notify(&state, &before, action, reason).await;
            let mut location = format!(
                "/admin/apps/{app_id}?done={}",
                action.as_str().replace('_', "-")
            );
            if mailed == Some(false) {
                location.push_str("&mail=failed");
            }
            return Ok(redirect(&url(&state.config, &location)));
        }
        Err(error) => error,
    };
    let message = sentence(&error.to_string());
    let status = match error {
        LifecycleError::NotFound(_) => return Err(no_such_app()),
        LifecycleError::Store(error) => return Err(error.into()),
        LifecycleError::Conflict => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    let after = detail(&state, app_id).await?;
    app_page(&state, &admin, &after, status, None, false, Some(message)).await
}

/// The lifecycle's message as a sentence: capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut sentence: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

/// An app id from the path: a UUID as Kiln writes them (never a client id).
fn checked_id(text: &str) -> PageResult<&str> {
    match uuid::Uuid::try_parse(text) {
        Ok(id) if id.hyphenated().to_string() == text => Ok(text),
        _ => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Not an app id",
            "An app id is a UUID, as the list of apps links it.",
        )),
    }
}

fn no_such_app() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "No such app",
        "There is no app with this id.",
    )
}

async fn detail(state: &AppState, app_id: &str) -> PageResult<AppDetail> {
    match view::show(&state.store, app_id).await {
        Ok(detail) if detail.summary.app_id == app_id => Ok(detail),
        Ok(_) | Err(LifecycleError::NotFound(_)) => Err(no_such_app()),
        Err(LifecycleError::Store(error)) => Err(error.into()),
        Err(error) => Err(PageError::internal(error)),
    }
}

/// What the app's page says after an action, by its name (never text from the request).
fn done_notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "approve" => {
            "Approved: the app's client has the approved revision's settings. A client \
             secret is never shown here; the developer gets it in the developer portal."
        }
        "request-changes" => "Sent back to the developer for changes.",
        "reject" => "Rejected.",
        "suspend" => "Suspended: the app's tokens stopped working and it cannot get new ones.",
        "reactivate" => "Reactivated: the app can get tokens again.",
        "retire" => "Retired: the app's client no longer works.",
        _ => return None,
    })
}

/// Every developer account, by id.
async fn owners(state: &AppState) -> PageResult<HashMap<String, Developer>> {
    Ok(state
        .store
        .developers()
        .await?
        .into_iter()
        .map(|d| (d.account_id.clone(), d))
        .collect())
}

fn origin_label(origin: &str) -> &'static str {
    match origin {
        "portal" => "Developer portal",
        "dynamic" => "Dynamic registration",
        "operator" => "Operator (command line)",
        _ => "Unknown",
    }
}

fn audience_label(audience: Option<Audience>) -> &'static str {
    match audience {
        Some(Audience::Patient) => "Patients",
        Some(Audience::Practitioner) => "Practitioners",
        Some(Audience::Backend) => "Backend service",
        None => "Not given",
    }
}

fn row(app: &AppSummary, owners: &HashMap<String, Developer>) -> AppRow {
    AppRow {
        app_id: app.app_id.clone(),
        name: app.name.clone(),
        owner: app
            .owner
            .as_ref()
            .and_then(|id| owners.get(id))
            .map(OwnerView::from),
        origin: origin_label(&app.origin),
        audience: audience_label(app.audience),
        status: app.status,
        edit_awaiting: app.awaiting_review && app.status != Status::PendingReview,
        submitted: app.submitted_at.map(date).unwrap_or_default(),
    }
}

/// Every field of a request, labelled, as text.
fn request_fields(request: &AppRequest) -> Vec<(&'static str, String)> {
    let yes = |flag: bool| if flag { "yes" } else { "no" }.to_string();
    vec![
        ("Audience", audience_label(request.audience).into()),
        ("Purpose", request.purpose.clone()),
        ("Intended users", request.intended_users.clone()),
        ("Contact name", request.contact_name.clone()),
        ("Contact e-mail", request.contact_email.clone()),
        ("App name", request.name.clone()),
        ("Description", request.description.clone()),
        ("Logo", request.logo.clone().unwrap_or_default()),
        ("App URL", request.app_url.clone()),
        ("Privacy policy URL", request.privacy_url.clone()),
        ("Terms URL", request.terms_url.clone()),
        ("Sign-off (logout) URL", request.logout_url.clone()),
        (
            "Client type",
            request
                .client_type
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        ),
        ("JWK Set URL", request.jwks_uri.clone()),
        ("Pasted JWK Set", request.jwks.clone()),
        ("Redirect URIs", request.redirect_uris.join("\n")),
        ("EHR launch URL", request.launch_url.clone()),
        ("Refresh tokens", yes(request.refresh_tokens)),
        (
            "Scope version",
            match request.scope_version {
                Some(ScopeVersion::V1) => "SMART v1".into(),
                Some(ScopeVersion::V2) => "SMART v2".into(),
                None => String::new(),
            },
        ),
        ("Scopes", request.scopes.join("\n")),
        ("Sites or practices", request.sites.clone()),
        ("Accepted the terms", yes(request.accepted_terms)),
    ]
}

fn state_label(revision: &RevisionView) -> String {
    revision
        .state
        .map(|s| s.as_str().replace('_', " ").to_ascii_uppercase())
        .unwrap_or_default()
}

fn revision_line(revision: &RevisionView) -> RevisionLine {
    RevisionLine {
        revision: revision.revision,
        state: state_label(revision),
        created: date(revision.created_at),
        submitted: revision.submitted_at.map(date).unwrap_or_default(),
        decided: revision.decided_at.map(date).unwrap_or_default(),
    }
}

fn action_label(action: Option<Action>) -> &'static str {
    action.map_or("Changed", Action::label)
}

/// Who made a change, as the history names them.
fn actor_label(stored: &str, owners: &HashMap<String, Developer>) -> String {
    match Actor::parse(stored) {
        Some(Actor::Admin(name)) => format!("admin {name}"),
        Some(Actor::Developer(id)) => match owners.get(&id) {
            Some(developer) => format!("developer {} <{}>", developer.name, developer.email),
            None => "a developer account since removed".into(),
        },
        Some(Actor::Operator) => "operator (command line)".into(),
        Some(Actor::Policy) => "the approval policy".into(),
        Some(Actor::Client) => "the client (dynamic registration)".into(),
        None => stored.to_string(),
    }
}

fn event_line(event: &EventView, owners: &HashMap<String, Developer>) -> EventLine {
    EventLine {
        at: date(event.at),
        actor: actor_label(&event.actor, owners),
        action: action_label(event.action),
        from: event.from,
        to: event.to,
        revision: event.revision,
        reason: event.reason.clone(),
    }
}

async fn app_page(
    state: &AppState,
    admin: &Admin,
    detail: &AppDetail,
    status: StatusCode,
    notice: Option<&'static str>,
    mail_failed: bool,
    message: Option<String>,
) -> PageResult {
    let owners = owners(state).await?;
    let by_number = |n: i64| detail.revisions.iter().find(|r| r.revision == n);
    let shown = detail
        .pending_revision
        .and_then(by_number)
        .or(detail.revisions.last());
    let compared = detail
        .active_revision
        .filter(|n| shown.is_some_and(|s| s.revision != *n))
        .and_then(by_number);
    let after = shown
        .map(|r| request_fields(&r.request))
        .unwrap_or_default();
    let before = compared.map(|r| request_fields(&r.request));
    let fields: Vec<FieldRow> = after
        .into_iter()
        .enumerate()
        .map(|(i, (label, value))| {
            let before = before.as_ref().map(|b| b[i].1.clone());
            FieldRow {
                label,
                changed: before.as_ref().is_some_and(|b| *b != value),
                after: value,
                before,
            }
        })
        .collect();
    let checks = shown.and_then(|r| r.checks.clone());
    let app_status = detail.summary.status;
    let awaiting = detail.pending_revision.is_some();
    let activity = detail.activity.unwrap_or(view::Activity {
        tokens_issued: 0,
        last_token_at: None,
        connected_patients: 0,
    });
    let credentials = detail.credentials.as_ref();
    Ok(html(
        status,
        &AppPage {
            console: admin.console(state, SECTION.path),
            app: row(&detail.summary, &owners),
            notice,
            mail_failed,
            message,
            client_id: credentials.map(|c| c.client_id.clone()),
            client_type: credentials
                .map(|c| c.client_type.clone())
                .unwrap_or_default(),
            client_disabled: credentials.is_some_and(|c| c.disabled),
            previous_secret_until: credentials
                .and_then(|c| c.previous_secret_valid_until.map(date)),
            tokens_issued: activity.tokens_issued,
            last_token: activity.last_token_at.map(date).unwrap_or_default(),
            connected_patients: activity.connected_patients,
            shown: shown.map(revision_line),
            shown_pending: awaiting && shown.map(|r| r.revision) == detail.pending_revision,
            compared: compared.map(|r| r.revision),
            changed: fields
                .iter()
                .filter(|f| f.changed)
                .map(|f| f.label)
                .collect(),
            fields,
            logo: shown.and_then(|r| r.request.logo.clone()),
            compared_logo: compared.and_then(|r| r.request.logo.clone()),
            checked: checks.is_some(),
            jwks: checks.as_ref().and_then(|c| c.jwks.clone()),
            warnings: checks.map(|c| c.warnings).unwrap_or_default(),
            revisions: detail.revisions.iter().map(revision_line).collect(),
            history: detail
                .history
                .iter()
                .map(|e| event_line(e, &owners))
                .collect(),
            actions: Actions {
                review: awaiting && matches!(app_status, Status::PendingReview | Status::Active),
                suspend: app_status == Status::Active,
                reactivate: app_status == Status::Suspended,
                retire: app_status != Status::Retired,
            },
            edit_of_active: awaiting && app_status == Status::Active,
            max_reason: MAX_REASON_CHARS,
        },
    ))
}

/// Mails the developer who owns the app what an admin decided (approve, request changes,
/// reject, suspend), with a link to the app in the portal. `None` when there is no one to
/// tell; `Some(false)` when the mail could not be sent (logged; the decision stands).
async fn notify(
    state: &AppState,
    before: &AppDetail,
    action: Action,
    reason: Option<&str>,
) -> Option<bool> {
    if !matches!(
        action,
        Action::Approve | Action::RequestChanges | Action::Reject | Action::Suspend
    ) {
        return None;
    }
    let owner = before.summary.owner.as_deref()?;
    let developer = match state.store.developer(owner).await {
        Ok(Some(developer)) => developer,
        Ok(None) => return None,
        Err(error) => {
            tracing::error!(%error, app = %before.summary.app_id, "app decision not mailed");
            return Some(false);
        }
    };
    let name: String = before
        .summary
        .name
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let edit = before.summary.status == Status::Active;
    let (subject, what) = match action {
        Action::Approve if edit => (
            format!("The changes to your app {name} are approved"),
            "The changes you submitted to your app were approved and are now in effect."
                .to_string(),
        ),
        Action::Approve => (
            format!("Your app {name} is approved"),
            "Your app was approved: it is ACTIVE. Its client id and credentials are in the \
             developer portal."
                .to_string(),
        ),
        Action::RequestChanges => (
            format!("Changes requested for your app {name}"),
            format!(
                "An administrator reviewed {} and asks for changes before approving it. Edit \
                 and submit it again in the developer portal.",
                if edit {
                    "the changes you submitted to your app (the approved version keeps working)"
                } else {
                    "your app"
                }
            ),
        ),
        Action::Reject => (
            format!("Your app {name} was not approved"),
            if edit {
                "The changes you submitted to your app were rejected; the approved version \
                 keeps working."
                    .to_string()
            } else {
                "Your app was rejected.".to_string()
            },
        ),
        _ => (
            format!("Your app {name} is suspended"),
            "Your app was suspended: its access tokens stopped working and it cannot get new \
             ones."
                .to_string(),
        ),
    };
    let reason = reason
        .map(|r| format!("\n\nReason given:\n\n{r}"))
        .unwrap_or_default();
    let body = format!(
        "Hello {developer},\n\n{what}{reason}\n\nYour app \"{name}\" on {base}:\n{link}\n",
        developer = developer.name,
        base = state.config.base_url,
        link = url(
            &state.config,
            &format!("/developer/apps/{}", before.summary.app_id)
        ),
    );
    match state.mailer.send(&developer.email, &subject, &body).await {
        Ok(()) => Some(true),
        Err(error) => {
            tracing::error!(%error, app = %before.summary.app_id, "app decision not mailed");
            Some(false)
        }
    }
}
