//! Signing in: a new session id replaces the old one (no session fixation), and the
//! authorize request in progress moves with it.

use crate::store::{Store, StoreResult, dispatch};

impl Store {
    pub async fn delete_session(&self, session_hash: &str) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("DELETE FROM auth_sessions WHERE session_hash = $1")
                .bind(session_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Binds a pending authorize request to another session.
    pub async fn rebind_pending(&self, pending_id: &str, session_hash: &str) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("UPDATE auth_pending SET session_hash = $1 WHERE pending_id = $2")
                .bind(session_hash)
                .bind(pending_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
