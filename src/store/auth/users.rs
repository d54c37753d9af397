//! People who sign in to Kiln's pages (EHR users): their accounts, roles, FHIR user and
//! whether they may sign in; what ends when their access does. Every change takes the audit
//! events recording it and appends them in its own transaction (none when nothing changed).

use super::revocation::{Announce, Signal};
use crate::store::BeginWrite;
use crate::store::audit::chain::AuditRow;
use crate::store::{Store, StoreResult, Tx, dispatch};

/// Ends a user's access inside transaction `$tx`: every grant they gave is revoked (their
/// apps' tokens stop at once, on every replica: `$signal` is announced), their browser
/// sessions and pending EHR launches go.
macro_rules! end_access {
    ($tx:ident, $signal:expr, $username:expr) => {
        $tx.announce($signal).await?;
        sqlx::query("UPDATE auth_grants SET revoked = $1 WHERE username = $2")
            .bind(true)
            .bind($username)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM auth_sessions WHERE username = $1")
            .bind($username)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM auth_launches WHERE username = $1")
            .bind($username)
            .execute(&mut *$tx)
            .await?;
    };
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub username: String,
    pub password_hash: String,
    /// `Patient/ID` or `Practitioner/ID`.
    pub fhir_user: String,
    pub admin: bool,
    /// A disabled user cannot sign in (migration 0013).
    pub disabled: bool,
}

impl Store {
    /// Adds a user, or replaces the password, FHIR user and role of an existing one (a
    /// disabled user stays disabled), with its `audit` events.
    pub async fn upsert_user(&self, user: &User, now: i64, audit: &[AuditRow]) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO auth_users (username, password_hash, fhir_user, admin, created_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
                 fhir_user = excluded.fhir_user, admin = excluded.admin",
            )
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(&user.fhir_user)
            .bind(user.admin)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Tx::from(tx).commit_audited(audit).await?;
        });
        Ok(())
    }

    pub async fn user(&self, username: &str) -> StoreResult<Option<User>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT username, password_hash, fhir_user, admin, disabled FROM auth_users \
                 WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?)
        })
    }
}

/// A user as `kiln user list` and the admin console show it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserSummary {
    pub username: String,
    pub fhir_user: String,
    pub admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

impl Store {
    pub async fn users(&self) -> StoreResult<Vec<UserSummary>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT username, fhir_user, admin, disabled, created_at FROM auth_users \
                 ORDER BY username",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// One user as [`Store::users`] lists them.
    pub async fn user_summary(&self, username: &str) -> StoreResult<Option<UserSummary>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT username, fhir_user, admin, disabled, created_at FROM auth_users \
                 WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Replaces a user's password and ends their browser sessions (the apps they allowed keep
    /// their grants), with its `audit` events; `false` when there is no such user.
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        let signal = Signal::new();
        let changed = dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query("UPDATE auth_users SET password_hash = $1 WHERE username = $2")
                .bind(password_hash)
                .bind(username)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM auth_sessions WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            // Its tokens stay valid; caches still drop what they hold (a user's access
            // changed).
            tx.announce(&signal).await?;
            Tx::from(tx).commit_audited(if changed > 0 { audit } else { &[] }).await?;
            Ok(changed > 0)
        });
        signal.delivered(self).await;
        changed
    }

    /// Adds a new user, with its `audit` events; `false` (and nothing changed or recorded)
    /// when the username is taken.
    pub async fn insert_user(
        &self,
        user: &User,
        now: i64,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let added = sqlx::query(
                "INSERT INTO auth_users \
                 (username, password_hash, fhir_user, admin, disabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING",
            )
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(&user.fhir_user)
            .bind(user.admin)
            .bind(user.disabled)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            Tx::from(tx).commit_audited(if added > 0 { audit } else { &[] }).await?;
            Ok(added > 0)
        })
    }

    /// Grants or removes the admin role, with its `audit` events; `false` when there is no
    /// such user.
    pub async fn set_admin(
        &self,
        username: &str,
        admin: bool,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query("UPDATE auth_users SET admin = $1 WHERE username = $2")
                .bind(admin)
                .bind(username)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Tx::from(tx).commit_audited(if changed > 0 { audit } else { &[] }).await?;
            Ok(changed > 0)
        })
    }

    /// Links a user to another FHIR user. Their access ends as in [`Store::remove_user`]: the
    /// tokens of their grants name the old FHIR user (and a patient user's patient), so they
    /// must not keep working. With its `audit` events; `false` when there is no such user.
    pub async fn set_fhir_user(
        &self,
        username: &str,
        fhir_user: &str,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        let signal = Signal::new();
        let changed = dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query("UPDATE auth_users SET fhir_user = $1 WHERE username = $2")
                .bind(fhir_user)
                .bind(username)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            end_access!(tx, &signal, username);
            Tx::from(tx).commit_audited(if changed > 0 { audit } else { &[] }).await?;
            Ok(changed > 0)
        });
        signal.delivered(self).await;
        changed
    }

    /// Disables a user (their access ends as in [`Store::remove_user`], and they cannot sign
    /// in again) or enables them (the grants revoked stay revoked: their apps ask again).
    /// With its `audit` events; `false` when there is no such user.
    pub async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        let signal = Signal::new();
        let changed = dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query("UPDATE auth_users SET disabled = $1 WHERE username = $2")
                .bind(disabled)
                .bind(username)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if disabled {
                end_access!(tx, &signal, username);
            }
            Tx::from(tx).commit_audited(if changed > 0 { audit } else { &[] }).await?;
            Ok(changed > 0)
        });
        signal.delivered(self).await;
        changed
    }

    /// Removes a user: every grant they gave is revoked (so their apps' tokens stop working at
    /// once), and their browser sessions and pending launches go. With its `audit` events;
    /// `false` when there was none.
    pub async fn remove_user(&self, username: &str, audit: &[AuditRow]) -> StoreResult<bool> {
        let signal = Signal::new();
        let changed = dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            end_access!(tx, &signal, username);
            let removed = sqlx::query("DELETE FROM auth_users WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Tx::from(tx).commit_audited(if removed > 0 { audit } else { &[] }).await?;
            Ok(removed > 0)
        });
        signal.delivered(self).await;
        changed
    }

    /// Why `fhir_user` cannot be a user's FHIR user, or `None` when it can: it must be
    /// `Patient/ID` or `Practitioner/ID` naming a stored, not deleted resource (a token would
    /// carry it, and every request the app made as that user would find nothing).
    pub async fn fhir_user_problem(&self, fhir_user: &str) -> StoreResult<Option<String>> {
        let target = fhir_user.split_once('/').filter(|(kind, id)| {
            matches!(*kind, "Patient" | "Practitioner") && crate::fhir::id::is_valid_id(id)
        });
        let Some((kind, id)) = target else {
            return Ok(Some("must be Patient/ID or Practitioner/ID".into()));
        };
        Ok((!self.is_live(kind, id).await?)
            .then(|| format!("there is no {kind}/{id} on this server (import it first)")))
    }

    /// Whether `resource_type/id` is stored and not deleted.
    pub async fn is_live(&self, resource_type: &str, id: &str) -> StoreResult<bool> {
        Ok(crate::fhir::id::is_valid_id(id)
            && self
                .read(resource_type, id)
                .await?
                .is_some_and(|stored| !stored.deleted))
    }
}
