//! Sign-in attempts counted per throttle key in a window, for throttling password guessing:
//! each attempt is reserved in one statement before its password is checked.

use crate::store::{Store, StoreResult, dispatch};

/// The count of one throttle key after a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Attempts {
    /// Attempts counted in the window, this one included; above the limit the attempt was
    /// refused and not counted again.
    #[sqlx(rename = "attempts")]
    pub count: i64,
    /// When the window started (seconds).
    pub window_start: i64,
}

impl Store {
    /// Reserves one attempt for `key`, atomically: in the current window, or as the first of
    /// a new one when the last started at or before `window_after`. A key already above
    /// `limit` stays at `limit + 1`, so refused attempts do not lengthen the count.
    pub async fn reserve_login_attempt(
        &self,
        key: &str,
        now: i64,
        window_after: i64,
        limit: i64,
    ) -> StoreResult<Attempts> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "INSERT INTO auth_login_attempts (throttle_key, attempts, window_start) \
                 VALUES ($1, 1, $2) ON CONFLICT (throttle_key) DO UPDATE SET \
                 attempts = CASE WHEN auth_login_attempts.window_start <= $3 THEN 1 \
                            WHEN auth_login_attempts.attempts > $4 \
                            THEN auth_login_attempts.attempts \
                            ELSE auth_login_attempts.attempts + 1 END, \
                 window_start = CASE WHEN auth_login_attempts.window_start <= $3 THEN $2 \
                                ELSE auth_login_attempts.window_start END \
                 RETURNING attempts, window_start",
            )
            .bind(key)
            .bind(now)
            .bind(window_after)
            .bind(limit)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Gives back one reserved attempt of `key` (the attempt was not a failure).
    pub async fn release_login_attempt(&self, key: &str) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "UPDATE auth_login_attempts SET attempts = attempts - 1 \
                 WHERE throttle_key = $1 AND attempts > 0",
            )
            .bind(key)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Forgets the attempts of `key` (after a successful sign-in).
    pub async fn clear_login_attempts(&self, key: &str) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("DELETE FROM auth_login_attempts WHERE throttle_key = $1")
                .bind(key)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
