//! Failed sign-ins per username, counted in a window, for throttling password guessing.

use sqlx::Row;

use crate::store::{Store, StoreResult, dispatch};

impl Store {
    /// Failed sign-ins of `username` in the window that started after `window_after`
    /// (seconds), and when that window started.
    pub async fn login_failures(
        &self,
        username: &str,
        window_after: i64,
    ) -> StoreResult<Option<(i64, i64)>> {
        dispatch!(self, pool => {
            let row = sqlx::query(
                "SELECT failures, window_start FROM auth_login_failures \
                 WHERE username = $1 AND window_start > $2",
            )
            .bind(username)
            .bind(window_after)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
                None => None,
            })
        })
    }

    /// Counts a failed sign-in: in the current window, or as the first of a new one when the
    /// last started at or before `window_after`.
    pub async fn add_login_failure(
        &self,
        username: &str,
        now: i64,
        window_after: i64,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO auth_login_failures (username, failures, window_start) \
                 VALUES ($1, 1, $2) ON CONFLICT (username) DO UPDATE SET \
                 failures = CASE WHEN auth_login_failures.window_start > $3 \
                            THEN auth_login_failures.failures + 1 ELSE 1 END, \
                 window_start = CASE WHEN auth_login_failures.window_start > $3 \
                                THEN auth_login_failures.window_start ELSE $2 END",
            )
            .bind(username)
            .bind(now)
            .bind(window_after)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Forgets the failures of `username` (after a successful sign-in).
    pub async fn clear_login_failures(&self, username: &str) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("DELETE FROM auth_login_failures WHERE username = $1")
                .bind(username)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
