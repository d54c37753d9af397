//! Server-wide settings kept in the database (`kiln_settings`).

use super::{Store, StoreResult, dispatch};

/// The base URL the last `kiln serve` on this database runs with; the command line prints
/// links with it.
pub const BASE_URL_SETTING: &str = "base_url";

impl Store {
    pub async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar("SELECT value FROM kiln_settings WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?)
        })
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO kiln_settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The value of `key`, storing `value` first when there is none: every replica ends up
    /// with the first value stored, whichever stored it.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO kiln_settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await?;
            Ok(sqlx::query_scalar("SELECT value FROM kiln_settings WHERE key = $1")
                .bind(key)
                .fetch_one(pool)
                .await?)
        })
    }
}
