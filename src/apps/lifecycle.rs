//! The app state machine. Each operation checks the app's status, writes the change, the
//! client (at approval, suspension, reactivation, retirement) and a history event in one
//! transaction that applies only if the status is still the one checked, and returns a
//! typed outcome; a refused operation is a [`LifecycleError`] and writes nothing.
//!
//! Operations take an app id or, where an app has one, its client id. A client that
//! registers itself (RFC 7591) gets its client id at registration, disabled until the app's
//! first approval; every other app gets its client at its first approval.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::jwks_check::{self, JwksCheck};
use super::request::{AppRequest, ClientType};
use super::validate::{self, Problem};
use super::{Action, Actor, Status, policy};
use crate::audit::{
    Agent, Event as AuditEvent, Origin as AuditOrigin, Recorder, Security, Subject,
};
use crate::config::OnboardingConfig;
use crate::crypto::{hash_secret, random_token};
use crate::store::apps::{AppChange, AppRow, ClientWrite, EventRow, RevisionRow, RevisionUpdate};
use crate::store::audit::chain::AuditRow;
use crate::store::auth::Client;
use crate::store::{Store, StoreError};

/// The longest a rotated-out secret may keep working (30 days).
pub const MAX_SECRET_OVERLAP_SECS: i64 = 30 * 24 * 3600;

/// Where an app came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Portal,
    Dynamic,
    Operator,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Portal => "portal",
            Origin::Dynamic => "dynamic",
            Origin::Operator => "operator",
        }
    }
}

/// A revision's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevisionState {
    Draft,
    PendingReview,
    ChangesRequested,
    Approved,
    Rejected,
    /// Approved once, replaced by a later approved revision.
    Superseded,
}

impl RevisionState {
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionState::Draft => "draft",
            RevisionState::PendingReview => "pending_review",
            RevisionState::ChangesRequested => "changes_requested",
            RevisionState::Approved => "approved",
            RevisionState::Rejected => "rejected",
            RevisionState::Superseded => "superseded",
        }
    }

    pub fn parse(text: &str) -> Option<RevisionState> {
        [
            RevisionState::Draft,
            RevisionState::PendingReview,
            RevisionState::ChangesRequested,
            RevisionState::Approved,
            RevisionState::Rejected,
            RevisionState::Superseded,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// What was checked when a revision was submitted (stored with it for the reviewer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checks {
    pub jwks: Option<JwksCheck>,
    /// Redirect-URI and other warnings.
    pub warnings: Vec<Problem>,
}

/// Why an operation was refused.
#[derive(Debug)]
pub enum LifecycleError {
    /// No app has this app id (or client id).
    NotFound(String),
    /// The request has problems (per field).
    Invalid(Vec<Problem>),
    /// The app's status does not allow the action.
    NotAllowed {
        status: Status,
        action: Action,
    },
    /// A revision of the app is waiting for review; it cannot be edited or submitted again.
    UnderReview,
    /// There is no revision waiting for review (approve, request changes, reject).
    NothingToReview,
    /// There is no edited revision to submit.
    NothingToSubmit,
    /// The action needs a reason.
    ReasonRequired(Action),
    /// The app is not a confidential-symmetric client with a secret.
    NoSecret,
    /// Someone else changed the app at the same moment; reload and try again.
    Conflict,
    Store(StoreError),
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::NotFound(id) => write!(f, "no app {id}"),
            LifecycleError::Invalid(problems) => {
                f.write_str("the request has problems:")?;
                for problem in problems {
                    write!(f, " {}: {};", problem.field, problem.message)?;
                }
                Ok(())
            }
            LifecycleError::NotAllowed { status, action } => {
                write!(f, "an app in {status} cannot be {}", action.passive())
            }
            LifecycleError::UnderReview => {
                f.write_str("a revision of this app is waiting for review")
            }
            LifecycleError::NothingToReview => {
                f.write_str("no revision of this app is waiting for review")
            }
            LifecycleError::NothingToSubmit => {
                f.write_str("there is no edited revision of this app to submit")
            }
            LifecycleError::ReasonRequired(action) => {
                write!(
                    f,
                    "a reason is required for an app to be {}",
                    action.passive()
                )
            }
            LifecycleError::NoSecret => {
                f.write_str("only an active confidential-symmetric app has a secret to rotate")
            }
            LifecycleError::Conflict => {
                f.write_str("the app was changed at the same moment; reload and try again")
            }
            LifecycleError::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for LifecycleError {}

impl From<StoreError> for LifecycleError {
    fn from(error: StoreError) -> Self {
        LifecycleError::Store(error)
    }
}

pub type LifecycleResult<T> = Result<T, LifecycleError>;

/// A new app (a draft).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub app_id: String,
    pub revision: i64,
}

/// An edit saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub revision: i64,
    /// A new revision was started (the app was ACTIVE or sent back for changes).
    pub new_revision: bool,
}

/// Credentials of an app at its approval. The secret is here only: it is stored hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub app_id: String,
    pub revision: i64,
    pub client_id: String,
    /// A new secret (first approval of a confidential-symmetric app, or a change to that
    /// type, unless a developer owns the app); shown once.
    pub client_secret: Option<String>,
}

/// What a submission came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Waiting for an admin.
    PendingReview { revision: i64, checks: Checks },
    /// Approved by the approval policy.
    Approved { approved: Approved, checks: Checks },
}

/// A rotated secret (shown once) and until when the previous one still works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub client_id: String,
    pub client_secret: String,
    pub previous_valid_until: i64,
}

/// A status change without other effects (request changes, reject, suspend, reactivate,
/// retire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transitioned {
    pub from: Status,
    pub to: Status,
    pub revision: Option<i64>,
}

/// An app with its revisions, as the operations need it.
struct Loaded {
    app: AppRow,
    status: Status,
    revisions: Vec<RevisionRow>,
}

impl Loaded {
    fn latest(&self) -> Option<(&RevisionRow, RevisionState)> {
        self.revisions.last().map(|row| {
            (
                row,
                RevisionState::parse(&row.state).unwrap_or(RevisionState::Superseded),
            )
        })
    }

    fn pending(&self) -> Option<&RevisionRow> {
        self.revisions
            .iter()
            .rev()
            .find(|row| row.state == RevisionState::PendingReview.as_str())
    }

    fn next_revision(&self) -> i64 {
        self.revisions.last().map_or(1, |row| row.revision + 1)
    }

    fn event(&self, action: Action, actor: &Actor, to: Status, now: i64) -> EventRow {
        EventRow {
            event_id: 0,
            app_id: self.app.app_id.clone(),
            action: action.as_str().into(),
            revision: None,
            replaced_revision: None,
            from_status: Some(self.status.as_str().into()),
            to_status: to.as_str().into(),
            actor: actor.stored(),
            reason: None,
            at: now,
        }
    }

    fn change(&self, to: Status, event: EventRow, now: i64) -> AppChange {
        AppChange {
            app_id: self.app.app_id.clone(),
            expected_status: self.app.status.clone(),
            status: to.as_str().into(),
            client_id: self.app.client_id.clone(),
            active_revision: self.app.active_revision,
            updated_at: now,
            new_revision: None,
            revisions: Vec::new(),
            client: None,
            event,
            audit: Vec::new(),
        }
    }

    fn refuse<T>(&self, action: Action) -> LifecycleResult<T> {
        Err(LifecycleError::NotAllowed {
            status: self.status,
            action,
        })
    }
}

/// The app with this app id, or whose client has this id.
async fn load(store: &Store, id: &str) -> LifecycleResult<Loaded> {
    let app = match store.app(id).await? {
        Some(app) => app,
        None => store
            .app_by_client(id)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(id.to_string()))?,
    };
    let status = Status::parse(&app.status).unwrap_or(Status::Retired);
    let revisions = store.app_revisions(&app.app_id).await?;
    Ok(Loaded {
        app,
        status,
        revisions,
    })
}

/// Resolves an app id or client id to the app id.
pub async fn app_id_of(store: &Store, id: &str) -> LifecycleResult<String> {
    Ok(load(store, id).await?.app.app_id)
}

/// Where a transition's audit events go, and where the request asking for it came from: its
/// source address and `X-Request-ID` (none at the command line). An approval the policy
/// makes at submission carries the submitting request's origin.
pub struct Audit<'a> {
    pub recorder: &'a Recorder,
    pub origin: AuditOrigin,
}

impl<'a> Audit<'a> {
    /// The transitions of a request from `origin`.
    pub fn new(recorder: &'a Recorder, origin: AuditOrigin) -> Audit<'a> {
        Audit { recorder, origin }
    }

    /// The transitions of a command (`kiln app …`): no network origin.
    pub fn cli(recorder: &'a Recorder) -> Audit<'a> {
        Audit::new(recorder, AuditOrigin::default())
    }
}

/// The audit event of a transition (an `app-lifecycle` security alert about the app, by
/// the actor recorded in `event`, from the request's origin), none when auditing is off.
fn audit_rows(audit: &Audit<'_>, event: &EventRow, client_id: Option<&str>) -> Vec<AuditRow> {
    let agent = match Actor::parse(&event.actor) {
        Some(Actor::Admin(name)) => Agent::user(name),
        Some(Actor::Operator) => Agent::cli(),
        Some(Actor::Client) => client_id.map(Agent::client).unwrap_or_default(),
        _ => Agent::user(event.actor.as_str()),
    };
    let mut description = format!(
        "{} {}: {} -> {}",
        event.action,
        event.app_id,
        event.from_status.as_deref().unwrap_or("new"),
        event.to_status
    );
    if let Some(revision) = event.revision {
        description.push_str(&format!(", revision {revision}"));
    }
    if let Some(client_id) = client_id {
        description.push_str(&format!(", client {client_id}"));
    }
    if let Some(reason) = &event.reason {
        description.push_str(&format!(", reason: {reason}"));
    }
    let event = AuditEvent::alert(
        Security::AppLifecycle,
        agent,
        audit.origin.clone(),
        Subject::app(event.app_id.as_str()),
        description,
    );
    audit.recorder.row(&event).into_iter().collect()
}

async fn apply(store: &Store, audit: &Audit<'_>, mut change: AppChange) -> LifecycleResult<()> {
    change.audit = audit_rows(audit, &change.event, change.client_id.as_deref());
    if store.change_app(&change).await? {
        Ok(())
    } else {
        Err(LifecycleError::Conflict)
    }
}

fn request_json(request: &AppRequest) -> String {
    serde_json::to_string(request).unwrap_or_default()
}

fn stored_request(row: &RevisionRow) -> AppRequest {
    serde_json::from_str(&row.request).unwrap_or_default()
}

fn required_reason(action: Action, reason: Option<&str>) -> LifecycleResult<Option<String>> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if action.needs_reason() && reason.is_none() {
        return Err(LifecycleError::ReasonRequired(action));
    }
    Ok(reason.map(str::to_string))
}

/// Creates a draft app. `owner` is the developer account id (portal apps).
pub async fn create(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    owner: Option<&str>,
    origin: Origin,
    request: &AppRequest,
    now: i64,
) -> LifecycleResult<Created> {
    create_app(store, audit, actor, (owner, origin), request, None, now).await
}

/// [`create`] (`(owner, origin)` of the app), with the digest of an RFC 7592 registration
/// access token.
async fn create_app(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    (owner, origin): (Option<&str>, Origin),
    request: &AppRequest,
    registration_token_hash: Option<String>,
    now: i64,
) -> LifecycleResult<Created> {
    let problems = validate::draft(request);
    if !problems.is_empty() {
        return Err(LifecycleError::Invalid(problems));
    }
    let app_id = uuid::Uuid::new_v4().to_string();
    let app = AppRow {
        app_id: app_id.clone(),
        owner: owner.map(str::to_string),
        origin: origin.as_str().into(),
        status: Status::Draft.as_str().into(),
        client_id: None,
        active_revision: None,
        registration_token_hash,
        created_at: now,
        updated_at: now,
    };
    let revision = RevisionRow {
        app_id: app_id.clone(),
        revision: 1,
        state: RevisionState::Draft.as_str().into(),
        request: request_json(request),
        checks: None,
        created_at: now,
        submitted_at: None,
        decided_at: None,
    };
    let event = EventRow {
        event_id: 0,
        app_id: app_id.clone(),
        action: Action::Create.as_str().into(),
        revision: Some(1),
        replaced_revision: None,
        from_status: None,
        to_status: Status::Draft.as_str().into(),
        actor: actor.stored(),
        reason: None,
        at: now,
    };
    let rows = audit_rows(audit, &event, None);
    store.insert_app(&app, &revision, &event, &rows).await?;
    Ok(Created {
        app_id,
        revision: 1,
    })
}

/// Creates an app and submits it at once (an operator's `kiln app create`, origin
/// `operator`): nothing is stored unless the request passes every check.
pub async fn register(
    store: &Store,
    audit: &Audit<'_>,
    settings: &OnboardingConfig,
    actor: &Actor,
    owner: Option<&str>,
    request: &AppRequest,
    now: i64,
) -> LifecycleResult<(Created, Submitted)> {
    check_submission(store, request, settings.sandbox).await?;
    let created = create(store, audit, actor, owner, Origin::Operator, request, now).await?;
    let submitted = submit(store, audit, settings, actor, &created.app_id, now).await?;
    Ok((created, submitted))
}

/// A client registered through RFC 7591 dynamic registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub app_id: String,
    /// Assigned at registration (RFC 7591 answers with it at once); the client is refused
    /// until the app is approved.
    pub client_id: String,
    /// A confidential-symmetric client's secret, shown this once (stored hashed).
    pub client_secret: Option<String>,
    pub submitted: Submitted,
}

/// Registers a client that registers itself (RFC 7591): the app is created and submitted
/// like [`register`] (actor `client`, origin `dynamic`, no owner), and its client is
/// reserved at once, with its id (and secret), but disabled; the first approval (by an
/// admin, or at once by the approval policy) enables it. `registration_token_hash` is the
/// digest of the RFC 7592 registration access token.
pub async fn register_client(
    store: &Store,
    audit: &Audit<'_>,
    settings: &OnboardingConfig,
    request: &AppRequest,
    registration_token_hash: &str,
    now: i64,
) -> LifecycleResult<Registered> {
    check_submission(store, request, settings.sandbox).await?;
    let actor = Actor::Client;
    let created = create_app(
        store,
        audit,
        &actor,
        (None, Origin::Dynamic),
        request,
        Some(registration_token_hash.to_string()),
        now,
    )
    .await?;
    let (submitted, reserved) =
        submit_with(store, audit, settings, &actor, &created.app_id, true, now).await?;
    // A new app has no client yet, so one was reserved.
    let (client_id, client_secret) = reserved.ok_or(LifecycleError::Conflict)?;
    Ok(Registered {
        app_id: created.app_id,
        client_id,
        client_secret,
        submitted,
    })
}

/// Replaces an app's request and submits it (RFC 7592 update; `kiln app update`): nothing
/// is stored unless the request passes every check. A new app goes to review again; an
/// ACTIVE app keeps its approved revision while the new one waits. The approval policy
/// applies.
pub async fn resubmit(
    store: &Store,
    audit: &Audit<'_>,
    settings: &OnboardingConfig,
    actor: &Actor,
    id: &str,
    request: &AppRequest,
    now: i64,
) -> LifecycleResult<Submitted> {
    check_submission(store, request, settings.sandbox).await?;
    save(store, audit, actor, id, request, now).await?;
    submit(store, audit, settings, actor, id, now).await
}

/// Saves an edit: a draft (or a revision being prepared) is updated in place; an ACTIVE app
/// or one sent back for changes gets a new draft revision (the approved one keeps working).
pub async fn save(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    request: &AppRequest,
    now: i64,
) -> LifecycleResult<Saved> {
    let problems = validate::draft(request);
    if !problems.is_empty() {
        return Err(LifecycleError::Invalid(problems));
    }
    let loaded = load(store, id).await?;
    if !matches!(
        loaded.status,
        Status::Draft | Status::ChangesRequested | Status::Active
    ) {
        return loaded.refuse(Action::Save);
    }
    let mut event = loaded.event(Action::Save, actor, loaded.status, now);
    let mut change = loaded.change(loaded.status, event.clone(), now);
    let saved = match loaded.latest() {
        Some((_, RevisionState::PendingReview)) => return Err(LifecycleError::UnderReview),
        Some((row, RevisionState::Draft)) => {
            change.revisions.push(RevisionUpdate {
                revision: row.revision,
                state: RevisionState::Draft.as_str().into(),
                request: Some(request_json(request)),
                checks: None,
                submitted_at: None,
                decided_at: None,
            });
            Saved {
                revision: row.revision,
                new_revision: false,
            }
        }
        _ => {
            let revision = loaded.next_revision();
            change.new_revision = Some(RevisionRow {
                app_id: loaded.app.app_id.clone(),
                revision,
                state: RevisionState::Draft.as_str().into(),
                request: request_json(request),
                checks: None,
                created_at: now,
                submitted_at: None,
                decided_at: None,
            });
            Saved {
                revision,
                new_revision: true,
            }
        }
    };
    event.revision = Some(saved.revision);
    change.event = event;
    apply(store, audit, change).await?;
    Ok(saved)
}

/// The submission checks of a request, with its JWK Set fetched and checked.
async fn check_submission(
    store: &Store,
    request: &AppRequest,
    sandbox: bool,
) -> LifecycleResult<Checks> {
    let mut report = validate::submission(request, sandbox);
    if let Some(digest) = &request.logo
        && report.problems.iter().all(|p| p.field != "logo")
        && store.logo(digest).await?.is_none()
    {
        report.problems.push(Problem::new(
            "logo",
            "the logo is not stored: upload it again",
        ));
    }
    let mut jwks = None;
    if request.client_type == Some(ClientType::ConfidentialAsymmetric) {
        let uri = request.jwks_uri.trim();
        let pasted = request.jwks.trim();
        let unchecked = |field: &str| report.problems.iter().all(|p| p.field != field);
        if !uri.is_empty() && unchecked("jwks_uri") && unchecked("jwks") {
            let check = jwks_check::check_url(uri).await;
            if let Err(message) = check.verdict() {
                report.problems.push(Problem::new("jwks_uri", message));
            }
            jwks = Some(check);
        } else if !pasted.is_empty() && unchecked("jwks") {
            jwks = Some(jwks_check::check_text(pasted));
        }
    }
    if !report.problems.is_empty() {
        return Err(LifecycleError::Invalid(report.problems));
    }
    Ok(Checks {
        jwks,
        warnings: report.warnings,
    })
}

/// Submits the app's edited revision for review: every check runs (the JWK Set URL is
/// fetched); then the approval policy may approve it at once.
pub async fn submit(
    store: &Store,
    audit: &Audit<'_>,
    settings: &OnboardingConfig,
    actor: &Actor,
    id: &str,
    now: i64,
) -> LifecycleResult<Submitted> {
    Ok(submit_with(store, audit, settings, actor, id, false, now)
        .await?
        .0)
}

/// [`submit`]; with `reserve`, an app without a client gets one in the same transaction,
/// disabled until approved, and its id and secret come back (see [`register_client`]).
async fn submit_with(
    store: &Store,
    audit: &Audit<'_>,
    settings: &OnboardingConfig,
    actor: &Actor,
    id: &str,
    reserve: bool,
    now: i64,
) -> LifecycleResult<(Submitted, Option<(String, Option<String>)>)> {
    let loaded = load(store, id).await?;
    if !matches!(
        loaded.status,
        Status::Draft | Status::ChangesRequested | Status::Active
    ) {
        return loaded.refuse(Action::Submit);
    }
    let Some((latest, state)) = loaded.latest() else {
        return Err(LifecycleError::NothingToSubmit);
    };
    let request = stored_request(latest);
    let (revision, copy) = match state {
        RevisionState::Draft => (latest.revision, false),
        RevisionState::ChangesRequested => (loaded.next_revision(), true),
        RevisionState::PendingReview => return Err(LifecycleError::UnderReview),
        _ => return Err(LifecycleError::NothingToSubmit),
    };
    let checks = check_submission(store, &request, settings.sandbox).await?;
    let checks_json = serde_json::to_string(&checks).unwrap_or_default();
    let to = if loaded.status == Status::Active {
        Status::Active
    } else {
        Status::PendingReview
    };
    let mut event = loaded.event(Action::Submit, actor, to, now);
    event.revision = Some(revision);
    let mut change = loaded.change(to, event, now);
    if copy {
        change.new_revision = Some(RevisionRow {
            app_id: loaded.app.app_id.clone(),
            revision,
            state: RevisionState::PendingReview.as_str().into(),
            request: latest.request.clone(),
            checks: Some(checks_json),
            created_at: now,
            submitted_at: Some(now),
            decided_at: None,
        });
    } else {
        change.revisions.push(RevisionUpdate {
            revision,
            state: RevisionState::PendingReview.as_str().into(),
            request: None,
            checks: Some(checks_json),
            submitted_at: Some(now),
            decided_at: None,
        });
    }
    let mut reserved = None;
    if reserve && loaded.app.client_id.is_none() {
        let (mut client, secret) = materialize(&loaded.app, None, &request, now);
        client.disabled = true;
        change.client_id = Some(client.client_id.clone());
        reserved = Some((client.client_id.clone(), secret));
        change.client = Some(ClientWrite::Insert(client));
    }
    apply(store, audit, change).await?;
    if policy::auto_approves(settings.policy(), &request) {
        let approved = approve(store, audit, &Actor::Policy, &loaded.app.app_id, None, now).await?;
        return Ok((Submitted::Approved { approved, checks }, reserved));
    }
    Ok((Submitted::PendingReview { revision, checks }, reserved))
}

/// Approves the revision waiting for review: the app becomes ACTIVE and its client takes
/// the revision's settings (created at the first approval, with a secret for a
/// confidential-symmetric app, returned here once — except for an app a developer owns:
/// its owner generates the first secret with [`issue_secret`]).
pub async fn approve(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    now: i64,
) -> LifecycleResult<Approved> {
    let loaded = load(store, id).await?;
    if !matches!(loaded.status, Status::PendingReview | Status::Active) {
        return loaded.refuse(Action::Approve);
    }
    let Some(pending) = loaded.pending() else {
        return Err(LifecycleError::NothingToReview);
    };
    let request = stored_request(pending);
    let revision = pending.revision;
    let existing = match &loaded.app.client_id {
        Some(client_id) => store.client(client_id).await?,
        None => None,
    };
    let (client, secret) = materialize(&loaded.app, existing.as_ref(), &request, now);
    let mut event = loaded.event(Action::Approve, actor, Status::Active, now);
    event.revision = Some(revision);
    event.replaced_revision = loaded.app.active_revision;
    event.reason = required_reason(Action::Approve, reason)?;
    let mut change = loaded.change(Status::Active, event, now);
    change.client_id = Some(client.client_id.clone());
    change.active_revision = Some(revision);
    change.revisions.push(RevisionUpdate {
        revision,
        state: RevisionState::Approved.as_str().into(),
        request: None,
        checks: None,
        submitted_at: None,
        decided_at: Some(now),
    });
    if let Some(replaced) = loaded.app.active_revision {
        change.revisions.push(RevisionUpdate {
            revision: replaced,
            state: RevisionState::Superseded.as_str().into(),
            request: None,
            checks: None,
            submitted_at: None,
            decided_at: None,
        });
    }
    let client_id = client.client_id.clone();
    change.client = Some(if existing.is_some() {
        ClientWrite::Update(client)
    } else {
        ClientWrite::Insert(client)
    });
    apply(store, audit, change).await?;
    Ok(Approved {
        app_id: loaded.app.app_id.clone(),
        revision,
        client_id,
        client_secret: secret,
    })
}

/// The client an approved request makes (or updates `existing` to), with a new secret when
/// the app needs one it has not got.
fn materialize(
    app: &AppRow,
    existing: Option<&Client>,
    request: &AppRequest,
    now: i64,
) -> (Client, Option<String>) {
    let client_type = request.client_type.unwrap_or(ClientType::Public);
    let symmetric = client_type == ClientType::ConfidentialSymmetric;
    let kept_secret = existing
        .filter(|client| client.client_type == ClientType::ConfidentialSymmetric.as_str())
        .and_then(|client| client.secret_hash.clone());
    // A developer's app gets no secret here: the developer is not at the approval, so
    // they generate the first one on the app's page (`issue_secret`), where it is shown.
    let secret = (symmetric && kept_secret.is_none() && app.owner.is_none()).then(random_token);
    let secret_hash = if symmetric {
        kept_secret.or_else(|| secret.as_deref().map(hash_secret))
    } else {
        None
    };
    let keep_previous = symmetric && secret.is_none();
    let client = Client {
        // Hex, so an id never starts with `-` (which a command line would take for a flag).
        client_id: existing.map_or_else(
            || uuid::Uuid::new_v4().simple().to_string(),
            |client| client.client_id.clone(),
        ),
        name: request.name.trim().to_string(),
        client_type: client_type.as_str().into(),
        secret_hash,
        redirect_uris: request.redirect_uris.clone(),
        launch_uri: AppRequest::given(&request.launch_url),
        scope: request.scope(),
        grant_types: request.grant_types(),
        jwks: AppRequest::given(&request.jwks),
        jwks_uri: AppRequest::given(&request.jwks_uri),
        created_at: existing.map_or(now, |client| client.created_at),
        app_id: Some(app.app_id.clone()),
        // A client reserved at dynamic registration is enabled at the app's first approval.
        disabled: existing.is_some_and(|client| client.disabled) && app.active_revision.is_some(),
        previous_secret_hash: existing
            .filter(|_| keep_previous)
            .and_then(|client| client.previous_secret_hash.clone()),
        previous_secret_expires_at: existing
            .filter(|_| keep_previous)
            .and_then(|client| client.previous_secret_expires_at),
    };
    (client, secret)
}

/// Sends the revision waiting for review back to the developer (a reason is required). A
/// new app goes to CHANGES REQUESTED; an ACTIVE app stays active with its approved revision.
pub async fn request_changes(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    now: i64,
) -> LifecycleResult<Transitioned> {
    decide(store, audit, actor, id, reason, now, Action::RequestChanges).await
}

/// Rejects the revision waiting for review (a reason is required). A new app is REJECTED
/// for good; an ACTIVE app stays active with its approved revision.
pub async fn reject(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    now: i64,
) -> LifecycleResult<Transitioned> {
    decide(store, audit, actor, id, reason, now, Action::Reject).await
}

async fn decide(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    now: i64,
    action: Action,
) -> LifecycleResult<Transitioned> {
    let reason = required_reason(action, reason)?;
    let loaded = load(store, id).await?;
    let (to, state) = match (loaded.status, action) {
        (Status::PendingReview, Action::RequestChanges) => {
            (Status::ChangesRequested, RevisionState::ChangesRequested)
        }
        (Status::PendingReview, _) => (Status::Rejected, RevisionState::Rejected),
        (Status::Active, Action::RequestChanges) => {
            (Status::Active, RevisionState::ChangesRequested)
        }
        (Status::Active, _) => (Status::Active, RevisionState::Rejected),
        _ => return loaded.refuse(action),
    };
    let Some(pending) = loaded.pending() else {
        return Err(LifecycleError::NothingToReview);
    };
    let revision = pending.revision;
    let mut event = loaded.event(action, actor, to, now);
    event.revision = Some(revision);
    event.reason = reason;
    let mut change = loaded.change(to, event, now);
    change.revisions.push(RevisionUpdate {
        revision,
        state: state.as_str().into(),
        request: None,
        checks: None,
        submitted_at: None,
        decided_at: Some(now),
    });
    apply(store, audit, change).await?;
    Ok(Transitioned {
        from: loaded.status,
        to,
        revision: Some(revision),
    })
}

/// Suspends an ACTIVE app (a reason is required): its client is disabled and every grant it
/// holds is revoked in the same transaction, so its tokens stop at once on every replica.
pub async fn suspend(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    now: i64,
) -> LifecycleResult<Transitioned> {
    switch(store, audit, actor, id, reason, now, Action::Suspend).await
}

/// Reactivates a SUSPENDED app: its client works again (tokens revoked at suspension stay
/// revoked).
pub async fn reactivate(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    now: i64,
) -> LifecycleResult<Transitioned> {
    switch(store, audit, actor, id, reason, now, Action::Reactivate).await
}

/// Retires an app for good: its client is disabled and its grants revoked.
pub async fn retire(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    now: i64,
) -> LifecycleResult<Transitioned> {
    switch(store, audit, actor, id, reason, now, Action::Retire).await
}

async fn switch(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    now: i64,
    action: Action,
) -> LifecycleResult<Transitioned> {
    let reason = required_reason(action, reason)?;
    let loaded = load(store, id).await?;
    let (to, disabled) = match (loaded.status, action) {
        (Status::Active, Action::Suspend) => (Status::Suspended, true),
        (Status::Suspended, Action::Reactivate) => (Status::Active, false),
        (status, Action::Retire) if status != Status::Retired => (Status::Retired, true),
        _ => return loaded.refuse(action),
    };
    let mut event = loaded.event(action, actor, to, now);
    event.revision = loaded.app.active_revision;
    event.reason = reason;
    let mut change = loaded.change(to, event, now);
    if loaded.app.client_id.is_some() {
        change.client = Some(ClientWrite::SetDisabled(disabled));
    }
    apply(store, audit, change).await?;
    Ok(Transitioned {
        from: loaded.status,
        to,
        revision: loaded.app.active_revision,
    })
}

/// Gives an ACTIVE confidential-symmetric app a new secret (returned once); the previous
/// one keeps working for `keep_old_for` seconds (at most [`MAX_SECRET_OVERLAP_SECS`]; 0
/// ends it at once).
pub async fn rotate_secret(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    keep_old_for: i64,
    now: i64,
) -> LifecycleResult<Rotated> {
    if !(0..=MAX_SECRET_OVERLAP_SECS).contains(&keep_old_for) {
        return Err(LifecycleError::Invalid(vec![Problem::new(
            "keep_old_for",
            format!("between 0 and {MAX_SECRET_OVERLAP_SECS} seconds"),
        )]));
    }
    let loaded = load(store, id).await?;
    if loaded.status != Status::Active {
        return loaded.refuse(Action::RotateSecret);
    }
    let Some(client_id) = loaded.app.client_id.clone() else {
        return Err(LifecycleError::NoSecret);
    };
    let secret = random_token();
    let previous_valid_until = now + keep_old_for;
    let mut event = loaded.event(Action::RotateSecret, actor, Status::Active, now);
    event.revision = loaded.app.active_revision;
    event.reason = Some(format!(
        "the previous secret works until {previous_valid_until} (seconds since the epoch)"
    ));
    if !store
        .rotate_client_secret(
            &client_id,
            &hash_secret(&secret),
            previous_valid_until,
            &event,
            &audit_rows(audit, &event, Some(&client_id)),
        )
        .await?
    {
        return Err(LifecycleError::NoSecret);
    }
    Ok(Rotated {
        client_id,
        client_secret: secret,
        previous_valid_until,
    })
}

/// A first secret (shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub client_id: String,
    pub client_secret: String,
}

/// Gives an ACTIVE confidential-symmetric app that has no secret yet (a developer's app,
/// approved without one) its first secret, returned once. Refused with
/// [`LifecycleError::NoSecret`] when the app has a secret already (rotate it instead).
pub async fn issue_secret(
    store: &Store,
    audit: &Audit<'_>,
    actor: &Actor,
    id: &str,
    now: i64,
) -> LifecycleResult<Issued> {
    let loaded = load(store, id).await?;
    if loaded.status != Status::Active {
        return loaded.refuse(Action::IssueSecret);
    }
    let Some(client_id) = loaded.app.client_id.clone() else {
        return Err(LifecycleError::NoSecret);
    };
    let secret = random_token();
    let mut event = loaded.event(Action::IssueSecret, actor, Status::Active, now);
    event.revision = loaded.app.active_revision;
    if !store
        .issue_client_secret(
            &client_id,
            &hash_secret(&secret),
            &event,
            &audit_rows(audit, &event, Some(&client_id)),
        )
        .await?
    {
        return Err(LifecycleError::NoSecret);
    }
    Ok(Issued {
        client_id,
        client_secret: secret,
    })
}
