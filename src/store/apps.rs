//! Rows of the app lifecycle (migration 0011): apps, their revisions, the history of their
//! transitions, logos, and per-app activity. Plain rows and one transactional write
//! ([`AppChange`]), each with its audit events; what the states mean and which transitions are allowed is `crate::apps`.

use crate::store::BeginWrite;
use crate::store::audit::chain::AuditRow;
use crate::store::auth::Client;
use crate::store::auth::revocation::{Announce, Signal};
use crate::store::{Store, StoreResult, Tx, dispatch};

/// An app: the registration request's identity, status and credentials link.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppRow {
    pub app_id: String,
    /// Developer account id; `None` for apps an operator or a client registered.
    pub owner: Option<String>,
    /// `portal`, `dynamic` or `operator`.
    pub origin: String,
    /// `draft`, `pending_review`, `changes_requested`, `active`, `rejected`, `suspended` or
    /// `retired`.
    pub status: String,
    pub client_id: Option<String>,
    pub active_revision: Option<i64>,
    pub registration_token_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An app in a listing, with its latest revision.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppListRow {
    #[sqlx(flatten)]
    pub app: AppRow,
    pub latest_revision: i64,
    pub latest_state: String,
    /// The latest revision's request, as JSON.
    pub latest_request: String,
    /// A revision is waiting for review.
    pub awaiting_review: bool,
    /// When a revision was last submitted.
    pub submitted_at: Option<i64>,
}

/// One revision of an app's request; immutable once submitted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevisionRow {
    pub app_id: String,
    pub revision: i64,
    /// `draft`, `pending_review`, `changes_requested`, `approved`, `rejected` or `superseded`.
    pub state: String,
    /// The request, as JSON.
    pub request: String,
    /// The checks made at submission, as JSON.
    pub checks: Option<String>,
    pub created_at: i64,
    pub submitted_at: Option<i64>,
    pub decided_at: Option<i64>,
}

/// One transition of an app: who, when, why, on which revision.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    /// The ordering key (assigned by the database; ignored on insert).
    pub event_id: i64,
    pub app_id: String,
    pub action: String,
    pub revision: Option<i64>,
    /// The approved revision this one replaced (an approval of an edit).
    pub replaced_revision: Option<i64>,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub reason: Option<String>,
    pub at: i64,
}

/// A stored logo.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LogoRow {
    /// SHA-256 of `data`, hex.
    pub digest: String,
    pub content_type: String,
    pub data: Vec<u8>,
    pub created_at: i64,
}

/// What an app's client has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityRow {
    /// Access tokens issued (still stored).
    pub tokens_issued: i64,
    pub last_token_at: Option<i64>,
    /// Distinct patients over the client's unrevoked grants.
    pub connected_patients: i64,
}

/// Which apps a listing shows; every given filter must hold.
#[derive(Debug, Clone, Default)]
pub struct AppFilter<'a> {
    /// One app only.
    pub app_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub owner: Option<&'a str>,
    /// Only apps with a revision waiting for review (a new app, or an edit of an active one).
    pub awaiting_review: bool,
}

/// A revision's new state (and when it was submitted or decided).
#[derive(Debug, Clone)]
pub struct RevisionUpdate {
    pub revision: i64,
    pub state: String,
    pub request: Option<String>,
    pub checks: Option<String>,
    pub submitted_at: Option<i64>,
    pub decided_at: Option<i64>,
}

/// What a transition does to the app's client.
#[derive(Debug, Clone)]
pub enum ClientWrite {
    /// The first approval: the client is created.
    Insert(Client),
    /// A later approval: the client takes the approved revision's settings.
    Update(Client),
    /// Suspension, reactivation or retirement; disabling also revokes every grant.
    SetDisabled(bool),
}

/// Everything one transition writes, in one transaction. It applies only if the app is
/// still in `expected_status` (compare-and-swap), so two admins acting at once cannot both
/// succeed.
#[derive(Debug, Clone)]
pub struct AppChange {
    pub app_id: String,
    pub expected_status: String,
    pub status: String,
    pub client_id: Option<String>,
    pub active_revision: Option<i64>,
    pub updated_at: i64,
    pub new_revision: Option<RevisionRow>,
    pub revisions: Vec<RevisionUpdate>,
    pub client: Option<ClientWrite>,
    pub event: EventRow,
    /// The audit events of the transition, appended in its transaction.
    pub audit: Vec<AuditRow>,
}

const APP_COLUMNS: &str = "app_id, owner, origin, status, client_id, active_revision, \
                           registration_token_hash, created_at, updated_at";
const REVISION_COLUMNS: &str =
    "app_id, revision, state, request, checks, created_at, submitted_at, decided_at";
const EVENT_COLUMNS: &str = "event_id, app_id, action, revision, replaced_revision, \
                             from_status, to_status, actor, reason, at";

macro_rules! insert_revision {
    ($executor:expr, $row:expr) => {{
        let row: &RevisionRow = $row;
        sqlx::query(
            "INSERT INTO app_revisions (app_id, revision, state, request, checks, created_at, \
             submitted_at, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.app_id)
        .bind(row.revision)
        .bind(&row.state)
        .bind(&row.request)
        .bind(&row.checks)
        .bind(row.created_at)
        .bind(row.submitted_at)
        .bind(row.decided_at)
        .execute($executor)
        .await
    }};
}

macro_rules! insert_event {
    ($executor:expr, $row:expr) => {{
        let row: &EventRow = $row;
        sqlx::query(
            "INSERT INTO app_events (app_id, action, revision, replaced_revision, from_status, \
             to_status, actor, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&row.app_id)
        .bind(&row.action)
        .bind(row.revision)
        .bind(row.replaced_revision)
        .bind(&row.from_status)
        .bind(&row.to_status)
        .bind(&row.actor)
        .bind(&row.reason)
        .bind(row.at)
        .execute($executor)
        .await
    }};
}

impl Store {
    /// Creates an app with its first revision and the event recording it (and its audit
    /// events).
    pub async fn insert_app(
        &self,
        app: &AppRow,
        revision: &RevisionRow,
        event: &EventRow,
        audit: &[AuditRow],
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )))
            .bind(&app.app_id)
            .bind(&app.owner)
            .bind(&app.origin)
            .bind(&app.status)
            .bind(&app.client_id)
            .bind(app.active_revision)
            .bind(&app.registration_token_hash)
            .bind(app.created_at)
            .bind(app.updated_at)
            .execute(&mut *tx)
            .await?;
            insert_revision!(&mut *tx, revision)?;
            insert_event!(&mut *tx, event)?;
            Tx::from(tx).commit_audited(audit).await?;
        });
        Ok(())
    }

    pub async fn app(&self, app_id: &str) -> StoreResult<Option<AppRow>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {APP_COLUMNS} FROM apps WHERE app_id = $1"
            )))
            .bind(app_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The app whose client is `client_id`.
    pub async fn app_by_client(&self, client_id: &str) -> StoreResult<Option<AppRow>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1"
            )))
            .bind(client_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Sets (or, with `None`, clears) an app's RFC 7592 registration access token digest.
    pub async fn set_registration_token(
        &self,
        app_id: &str,
        token_hash: Option<&str>,
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let changed = sqlx::query(
                "UPDATE apps SET registration_token_hash = $1 WHERE app_id = $2",
            )
            .bind(token_hash)
            .bind(app_id)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(changed == 1)
        })
    }

    /// The app whose registration access token has this digest.
    pub async fn app_by_registration_token(&self, token_hash: &str) -> StoreResult<Option<AppRow>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {APP_COLUMNS} FROM apps WHERE registration_token_hash = $1"
            )))
            .bind(token_hash)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Apps matching `filter` with their latest revision, most recently changed first.
    pub async fn apps(&self, filter: &AppFilter<'_>) -> StoreResult<Vec<AppListRow>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT a.app_id, a.owner, a.origin, a.status, a.client_id, a.active_revision, \
                 a.registration_token_hash, a.created_at, a.updated_at, \
                 r.revision AS latest_revision, r.state AS latest_state, \
                 r.request AS latest_request, \
                 EXISTS (SELECT 1 FROM app_revisions p WHERE p.app_id = a.app_id \
                         AND p.state = 'pending_review') AS awaiting_review, \
                 (SELECT MAX(s.submitted_at) FROM app_revisions s \
                  WHERE s.app_id = a.app_id) AS submitted_at \
                 FROM apps a JOIN app_revisions r ON r.app_id = a.app_id \
                 AND r.revision = (SELECT MAX(m.revision) FROM app_revisions m \
                                   WHERE m.app_id = a.app_id) \
                 WHERE ($1 IS NULL OR a.status = $1) AND ($2 IS NULL OR a.owner = $2) \
                 AND ($3 = $4 OR EXISTS (SELECT 1 FROM app_revisions q \
                      WHERE q.app_id = a.app_id AND q.state = 'pending_review')) \
                 AND ($5 IS NULL OR a.app_id = $5) \
                 ORDER BY a.updated_at DESC, a.app_id",
            )
            .bind(filter.status)
            .bind(filter.owner)
            .bind(filter.awaiting_review)
            .bind(false)
            .bind(filter.app_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Every revision of an app, oldest first.
    pub async fn app_revisions(&self, app_id: &str) -> StoreResult<Vec<RevisionRow>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {REVISION_COLUMNS} FROM app_revisions WHERE app_id = $1 ORDER BY revision"
            )))
            .bind(app_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// An app's history, oldest first.
    pub async fn app_events(&self, app_id: &str) -> StoreResult<Vec<EventRow>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {EVENT_COLUMNS} FROM app_events WHERE app_id = $1 ORDER BY event_id"
            )))
            .bind(app_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Applies one transition (see [`AppChange`]); `false`, with nothing written, when the
    /// app is no longer in `expected_status`.
    pub async fn change_app(&self, change: &AppChange) -> StoreResult<bool> {
        let signal = Signal::new();
        let applied = dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let swapped = sqlx::query(
                "UPDATE apps SET status = $1, client_id = $2, active_revision = $3, \
                 updated_at = $4 WHERE app_id = $5 AND status = $6",
            )
            .bind(&change.status)
            .bind(&change.client_id)
            .bind(change.active_revision)
            .bind(change.updated_at)
            .bind(&change.app_id)
            .bind(&change.expected_status)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if swapped != 1 {
                return Ok(false);
            }
            if let Some(row) = &change.new_revision {
                insert_revision!(&mut *tx, row)?;
            }
            for update in &change.revisions {
                sqlx::query(
                    "UPDATE app_revisions SET state = $1, \
                     request = COALESCE($2, request), checks = COALESCE($3, checks), \
                     submitted_at = COALESCE($4, submitted_at), \
                     decided_at = COALESCE($5, decided_at) \
                     WHERE app_id = $6 AND revision = $7",
                )
                .bind(&update.state)
                .bind(&update.request)
                .bind(&update.checks)
                .bind(update.submitted_at)
                .bind(update.decided_at)
                .bind(&change.app_id)
                .bind(update.revision)
                .execute(&mut *tx)
                .await?;
            }
            match &change.client {
                Some(ClientWrite::Insert(client)) => {
                    crate::store::auth::clients::insert_client!(&mut *tx, client)?;
                }
                Some(ClientWrite::Update(client)) => {
                    crate::store::auth::clients::update_client!(&mut *tx, client)?;
                }
                Some(ClientWrite::SetDisabled(disabled)) => {
                    sqlx::query("UPDATE auth_clients SET disabled = $1 WHERE app_id = $2")
                        .bind(*disabled)
                        .bind(&change.app_id)
                        .execute(&mut *tx)
                        .await?;
                    if *disabled {
                        sqlx::query(
                            "UPDATE auth_grants SET revoked = $1 WHERE client_id IN \
                             (SELECT client_id FROM auth_clients WHERE app_id = $2)",
                        )
                        .bind(true)
                        .bind(&change.app_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                None => {}
            }
            insert_event!(&mut *tx, &change.event)?;
            // A client changed or disabled (an app suspended or retired) ends or narrows
            // what its tokens may do.
            if matches!(
                change.client,
                Some(ClientWrite::Update(_) | ClientWrite::SetDisabled(_))
            ) {
                tx.announce(&signal).await?;
            }
            Tx::from(tx).commit_audited(&change.audit).await?;
            Ok(true)
        });
        signal.delivered(self).await;
        applied
    }

    /// Gives a client a new secret; the current one stays valid until `previous_expires_at`
    /// (one earlier previous secret is dropped). Recorded as `event`. `false` when the
    /// client is not a usable confidential-symmetric client.
    pub async fn rotate_client_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
        previous_expires_at: i64,
        event: &EventRow,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE auth_clients SET previous_secret_hash = secret_hash, \
                 previous_secret_expires_at = $1, secret_hash = $2 \
                 WHERE client_id = $3 AND client_type = 'confidential-symmetric' \
                 AND disabled = $4",
            )
            .bind(previous_expires_at)
            .bind(secret_hash)
            .bind(client_id)
            .bind(false)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                return Ok(false);
            }
            insert_event!(&mut *tx, event)?;
            Tx::from(tx).commit_audited(audit).await?;
            Ok(true)
        })
    }

    /// Gives a confidential-symmetric client its first secret (one that has none), recorded
    /// as `event`. `false` when the client already has a secret or is not a usable
    /// confidential-symmetric client.
    pub async fn issue_client_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
        event: &EventRow,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE auth_clients SET secret_hash = $1, previous_secret_hash = NULL, \
                 previous_secret_expires_at = NULL \
                 WHERE client_id = $2 AND client_type = 'confidential-symmetric' \
                 AND disabled = $3 AND secret_hash IS NULL",
            )
            .bind(secret_hash)
            .bind(client_id)
            .bind(false)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                return Ok(false);
            }
            insert_event!(&mut *tx, event)?;
            Tx::from(tx).commit_audited(audit).await?;
            Ok(true)
        })
    }

    /// Stores a logo (a logo already stored under the digest is kept).
    pub async fn put_logo(&self, logo: &LogoRow) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO app_logos (digest, content_type, data, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING",
            )
            .bind(&logo.digest)
            .bind(&logo.content_type)
            .bind(&logo.data)
            .bind(logo.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn logo(&self, digest: &str) -> StoreResult<Option<LogoRow>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT digest, content_type, data, created_at FROM app_logos WHERE digest = $1",
            )
            .bind(digest)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Tokens issued to `client_id`, the latest issue time, and the distinct patients of
    /// its live grants.
    pub async fn client_activity(&self, client_id: &str) -> StoreResult<ActivityRow> {
        dispatch!(self, pool => {
            let (tokens_issued, last_token_at): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MAX(t.issued_at) FROM auth_tokens t \
                 JOIN auth_grants g ON g.grant_id = t.grant_id \
                 WHERE g.client_id = $1 AND t.kind = 'access'",
            )
            .bind(client_id)
            .fetch_one(pool)
            .await?;
            let connected_patients: i64 = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT patient) FROM auth_grants \
                 WHERE client_id = $1 AND revoked = $2 AND patient IS NOT NULL",
            )
            .bind(client_id)
            .bind(false)
            .fetch_one(pool)
            .await?;
            Ok(ActivityRow {
                tokens_issued,
                last_token_at,
                connected_patients,
            })
        })
    }
}
