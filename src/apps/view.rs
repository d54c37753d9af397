//! What pages and commands show of apps: listings (by status, by owner, awaiting review)
//! and one app in full (its revisions with their checks, its history, its credentials'
//! public part and its activity). Serializable, so `kiln app … --json` prints them as they
//! are. Never a secret or a secret's hash.

use serde::Serialize;

use super::lifecycle::{Checks, LifecycleError, LifecycleResult, RevisionState, app_id_of};
use super::request::{AppRequest, Audience};
use super::{Action, Status};
use crate::store::apps::{AppFilter, AppListRow, EventRow, RevisionRow};
use crate::store::{Store, StoreResult};

/// An app in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppSummary {
    pub app_id: String,
    /// The name in the latest revision.
    pub name: String,
    pub status: Status,
    pub origin: String,
    pub owner: Option<String>,
    pub client_id: Option<String>,
    pub audience: Option<Audience>,
    pub latest_revision: i64,
    pub latest_state: Option<RevisionState>,
    /// A revision is waiting for review (a new app, or an edit of an active one).
    pub awaiting_review: bool,
    /// When a revision was last submitted.
    pub submitted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<AppListRow> for AppSummary {
    fn from(row: AppListRow) -> Self {
        let request: AppRequest = serde_json::from_str(&row.latest_request).unwrap_or_default();
        AppSummary {
            app_id: row.app.app_id,
            name: request.name,
            status: Status::parse(&row.app.status).unwrap_or(Status::Retired),
            origin: row.app.origin,
            owner: row.app.owner,
            client_id: row.app.client_id,
            audience: request.audience,
            latest_revision: row.latest_revision,
            latest_state: RevisionState::parse(&row.latest_state),
            awaiting_review: row.awaiting_review,
            submitted_at: row.submitted_at,
            created_at: row.app.created_at,
            updated_at: row.app.updated_at,
        }
    }
}

/// One revision with what was checked at its submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevisionView {
    pub revision: i64,
    pub state: Option<RevisionState>,
    pub request: AppRequest,
    pub checks: Option<Checks>,
    pub created_at: i64,
    pub submitted_at: Option<i64>,
    pub decided_at: Option<i64>,
}

impl From<RevisionRow> for RevisionView {
    fn from(row: RevisionRow) -> Self {
        RevisionView {
            revision: row.revision,
            state: RevisionState::parse(&row.state),
            request: serde_json::from_str(&row.request).unwrap_or_default(),
            checks: row
                .checks
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            created_at: row.created_at,
            submitted_at: row.submitted_at,
            decided_at: row.decided_at,
        }
    }
}

/// One entry of an app's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventView {
    pub action: Option<Action>,
    pub revision: Option<i64>,
    /// The approved revision an approval replaced.
    pub replaced_revision: Option<i64>,
    pub from: Option<Status>,
    pub to: Option<Status>,
    /// `developer:ID`, `admin:NAME`, `operator`, `policy` or `client` (see `Actor`).
    pub actor: String,
    pub reason: Option<String>,
    pub at: i64,
}

impl From<EventRow> for EventView {
    fn from(row: EventRow) -> Self {
        EventView {
            action: serde_json::from_value(serde_json::Value::String(row.action)).ok(),
            revision: row.revision,
            replaced_revision: row.replaced_revision,
            from: row.from_status.as_deref().and_then(Status::parse),
            to: Status::parse(&row.to_status),
            actor: row.actor,
            reason: row.reason,
            at: row.at,
        }
    }
}

/// The public part of an app's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credentials {
    pub client_id: String,
    pub client_type: String,
    /// Suspended or retired: refused everywhere.
    pub disabled: bool,
    /// A confidential-symmetric client has a secret (a developer's app has none until its
    /// owner generates one).
    pub has_secret: bool,
    /// Until when a rotated-out secret still works (if it does).
    pub previous_secret_valid_until: Option<i64>,
}

/// What an app's client has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// Access tokens issued (as long as they are kept).
    pub tokens_issued: i64,
    pub last_token_at: Option<i64>,
    /// Distinct patients over the app's live grants.
    pub connected_patients: i64,
}

/// One app in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppDetail {
    #[serde(flatten)]
    pub summary: AppSummary,
    /// The approved revision the client reflects.
    pub active_revision: Option<i64>,
    /// The revision waiting for review.
    pub pending_revision: Option<i64>,
    pub credentials: Option<Credentials>,
    pub activity: Option<Activity>,
    /// Oldest first.
    pub revisions: Vec<RevisionView>,
    /// Oldest first.
    pub history: Vec<EventView>,
}

impl AppDetail {
    /// The active revision's request (what the client does now), else the latest one.
    pub fn current_request(&self) -> Option<&AppRequest> {
        let active = self
            .active_revision
            .and_then(|n| self.revisions.iter().find(|r| r.revision == n));
        active.or(self.revisions.last()).map(|r| &r.request)
    }
}

/// Apps matching `filter`, most recently changed first.
pub async fn list(store: &Store, filter: &AppFilter<'_>) -> StoreResult<Vec<AppSummary>> {
    Ok(store
        .apps(filter)
        .await?
        .into_iter()
        .map(AppSummary::from)
        .collect())
}

/// The activity of `client_id`.
pub async fn activity(store: &Store, client_id: &str) -> StoreResult<Activity> {
    let row = store.client_activity(client_id).await?;
    Ok(Activity {
        tokens_issued: row.tokens_issued,
        last_token_at: row.last_token_at,
        connected_patients: row.connected_patients,
    })
}

/// One app (by app id or client id) in full.
pub async fn show(store: &Store, id: &str) -> LifecycleResult<AppDetail> {
    let app_id = app_id_of(store, id).await?;
    let summary = store
        .apps(&AppFilter {
            app_id: Some(&app_id),
            ..AppFilter::default()
        })
        .await?
        .into_iter()
        .next()
        .map(AppSummary::from)
        .ok_or(LifecycleError::NotFound(app_id.clone()))?;
    let app = store
        .app(&app_id)
        .await?
        .ok_or(LifecycleError::NotFound(app_id.clone()))?;
    let revisions: Vec<RevisionView> = store
        .app_revisions(&app_id)
        .await?
        .into_iter()
        .map(RevisionView::from)
        .collect();
    let history = store
        .app_events(&app_id)
        .await?
        .into_iter()
        .map(EventView::from)
        .collect();
    let (credentials, activity) = match &app.client_id {
        Some(client_id) => {
            let credentials = store.client(client_id).await?.map(|client| Credentials {
                client_id: client.client_id,
                client_type: client.client_type,
                disabled: client.disabled,
                has_secret: client.secret_hash.is_some(),
                previous_secret_valid_until: client
                    .previous_secret_expires_at
                    .filter(|_| client.previous_secret_hash.is_some()),
            });
            (credentials, Some(activity(store, client_id).await?))
        }
        None => (None, None),
    };
    let pending_revision = revisions
        .iter()
        .rev()
        .find(|r| r.state == Some(RevisionState::PendingReview))
        .map(|r| r.revision);
    Ok(AppDetail {
        summary,
        active_revision: app.active_revision,
        pending_revision,
        credentials,
        activity,
        revisions,
        history,
    })
}
