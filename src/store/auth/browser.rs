//! State of the browser side of authorization: sessions, pending authorize requests and EHR
//! launch contexts.

use crate::store::BeginWrite;
use crate::store::audit::chain::AuditRow;
use crate::store::{Store, StoreResult, Tx, dispatch};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub session_hash: String,
    /// The EHR user signed in to Kiln's authorization pages.
    pub username: Option<String>,
    /// The developer (account id) signed in to the developer portal; separate from the user.
    pub developer: Option<String>,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// An authorize request between its arrival and the redirect back to the app.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub pending_id: String,
    pub session_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub launch_hash: Option<String>,
    pub patient: Option<String>,
    /// The Encounter chosen on the encounter picker (standalone launch).
    pub encounter: Option<String>,
    pub expires_at: i64,
}

/// An EHR launch context.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Launch {
    pub launch_hash: String,
    pub client_id: String,
    pub username: String,
    pub patient: Option<String>,
    pub encounter: Option<String>,
    pub expires_at: i64,
    pub used: bool,
}

impl Store {
    pub async fn insert_session(&self, session: &Session, now: i64) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM auth_sessions WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO auth_sessions (session_hash, username, developer, csrf_token, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&session.session_hash)
            .bind(&session.username)
            .bind(&session.developer)
            .bind(&session.csrf_token)
            .bind(now)
            .bind(session.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// A browser session; none when it belongs to a disabled user (disabling ends their
    /// sessions, and one begun while that happened is worth nothing either).
    pub async fn session(&self, session_hash: &str) -> StoreResult<Option<Session>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT s.session_hash, s.username, s.developer, s.csrf_token, s.expires_at \
                 FROM auth_sessions s LEFT JOIN auth_users u ON u.username = s.username \
                 WHERE s.session_hash = $1 AND (u.disabled IS NULL OR u.disabled = $2)",
            )
            .bind(session_hash)
            .bind(false)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Records who signed in to a session (`None` signs out).
    pub async fn set_session_user(
        &self,
        session_hash: &str,
        username: Option<&str>,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("UPDATE auth_sessions SET username = $1 WHERE session_hash = $2")
                .bind(username)
                .bind(session_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn insert_pending(&self, pending: &Pending, now: i64) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM auth_pending WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO auth_pending (pending_id, session_hash, client_id, redirect_uri, scope, \
                 state, code_challenge, nonce, launch_hash, patient, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&pending.pending_id)
            .bind(&pending.session_hash)
            .bind(&pending.client_id)
            .bind(&pending.redirect_uri)
            .bind(&pending.scope)
            .bind(&pending.state)
            .bind(&pending.code_challenge)
            .bind(&pending.nonce)
            .bind(&pending.launch_hash)
            .bind(&pending.patient)
            .bind(pending.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn pending(&self, pending_id: &str) -> StoreResult<Option<Pending>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT pending_id, session_hash, client_id, redirect_uri, scope, state, \
                 code_challenge, nonce, launch_hash, patient, expires_at, encounter \
                 FROM auth_pending WHERE pending_id = $1",
            )
            .bind(pending_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    pub async fn set_pending_patient(&self, pending_id: &str, patient: &str) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("UPDATE auth_pending SET patient = $1 WHERE pending_id = $2")
                .bind(patient)
                .bind(pending_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn set_pending_encounter(
        &self,
        pending_id: &str,
        encounter: &str,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("UPDATE auth_pending SET encounter = $1 WHERE pending_id = $2")
                .bind(encounter)
                .bind(pending_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Removes a finished request; `false` if it was already gone (a double submit).
    pub async fn delete_pending(&self, pending_id: &str) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let deleted = sqlx::query("DELETE FROM auth_pending WHERE pending_id = $1")
                .bind(pending_id)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(deleted == 1)
        })
    }

    /// Stores a launch context, with the `audit` events recording it.
    pub async fn insert_launch(&self, launch: &Launch, audit: &[AuditRow]) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO auth_launches (launch_hash, client_id, username, patient, encounter, \
                 expires_at, used) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&launch.launch_hash)
            .bind(&launch.client_id)
            .bind(&launch.username)
            .bind(&launch.patient)
            .bind(&launch.encounter)
            .bind(launch.expires_at)
            .bind(launch.used)
            .execute(&mut *tx)
            .await?;
            Tx::from(tx).commit_audited(audit).await?;
        });
        Ok(())
    }

    pub async fn launch(&self, launch_hash: &str) -> StoreResult<Option<Launch>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT launch_hash, client_id, username, patient, encounter, expires_at, used \
                 FROM auth_launches WHERE launch_hash = $1",
            )
            .bind(launch_hash)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Marks a launch used; `false` if it already was.
    pub async fn use_launch(&self, launch_hash: &str) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let flipped = sqlx::query(
                "UPDATE auth_launches SET used = $1 WHERE launch_hash = $2 AND used = $3",
            )
            .bind(true)
            .bind(launch_hash)
            .bind(false)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(flipped == 1)
        })
    }
}
