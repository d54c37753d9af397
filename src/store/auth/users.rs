//! People who sign in to Kiln's pages.

use crate::store::{Store, StoreResult, dispatch};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub username: String,
    pub password_hash: String,
    /// `Patient/ID` or `Practitioner/ID`.
    pub fhir_user: String,
    pub admin: bool,
}

impl Store {
    /// Adds a user, or replaces the password, FHIR user and role of an existing one.
    pub async fn upsert_user(&self, user: &User, now: i64) -> StoreResult<()> {
        dispatch!(self, pool => {
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
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn user(&self, username: &str) -> StoreResult<Option<User>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT username, password_hash, fhir_user, admin FROM auth_users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?)
        })
    }
}

/// A user as `kiln user list` shows it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserSummary {
    pub username: String,
    pub fhir_user: String,
    pub admin: bool,
    pub created_at: i64,
}

impl Store {
    pub async fn users(&self) -> StoreResult<Vec<UserSummary>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT username, fhir_user, admin, created_at FROM auth_users ORDER BY username",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// Replaces a user's password and ends their browser sessions (the apps they allowed keep
    /// their grants); `false` when there is no such user.
    pub async fn set_password(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
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
            tx.commit().await?;
            Ok(changed > 0)
        })
    }

    /// Removes a user: every grant they gave is revoked (so their apps' tokens stop working at
    /// once), and their browser sessions and pending launches go; `false` when there was none.
    pub async fn remove_user(&self, username: &str) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE auth_grants SET revoked = $1 WHERE username = $2")
                .bind(true)
                .bind(username)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM auth_sessions WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM auth_launches WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            let removed = sqlx::query("DELETE FROM auth_users WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(removed > 0)
        })
    }
}
