//! People who sign in to Kiln's pages.

use sqlx::Row;

use crate::store::{Store, StoreResult, dispatch};

#[derive(Debug, Clone, PartialEq, Eq)]
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
            let row = sqlx::query(
                "SELECT username, password_hash, fhir_user, admin FROM auth_users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(User {
                    username: row.try_get(0)?,
                    password_hash: row.try_get(1)?,
                    fhir_user: row.try_get(2)?,
                    admin: row.try_get(3)?,
                }),
                None => None,
            })
        })
    }
}
