//! Kiln's signing keys, shared by every replica through the database.

use crate::store::BeginWrite;
use crate::store::audit::chain::AuditRow;
use crate::store::{Store, StoreResult, Tx, dispatch};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    /// PKCS#8 PEM.
    pub private_pem: String,
    /// The public JWK (JSON).
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl Store {
    /// Every key not retired before `retired_after`, newest first.
    pub async fn signing_keys(&self, retired_after: i64) -> StoreResult<Vec<SigningKeyRow>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT kid, alg, private_pem, public_jwk, created_at, retired_at \
                 FROM auth_signing_keys WHERE retired_at IS NULL OR retired_at > $1 \
                 ORDER BY created_at DESC, kid",
            )
            .bind(retired_after)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The kid of the key that signs now (the active key of `alg`), if any.
    pub async fn active_signing_kid(&self, alg: &str) -> StoreResult<Option<String>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT kid FROM auth_signing_keys WHERE alg = $1 AND retired_at IS NULL \
                 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(alg)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Makes `key` the active key of its algorithm: older active keys of that algorithm are
    /// retired at `key.created_at` (they stay published until their tokens expire). The
    /// `audit` events recording it are appended in its transaction.
    pub async fn rotate_signing_key(
        &self,
        key: &SigningKeyRow,
        audit: &[AuditRow],
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE auth_signing_keys SET retired_at = $1 WHERE alg = $2 AND retired_at IS NULL",
            )
            .bind(key.created_at)
            .bind(&key.alg)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO auth_signing_keys (kid, alg, private_pem, public_jwk, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_pem)
            .bind(&key.public_jwk)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
            Tx::from(tx).commit_audited(audit).await?;
        });
        Ok(())
    }

    /// Stores the first key of its algorithm unless another replica got there first.
    pub async fn insert_first_signing_key(&self, key: &SigningKeyRow) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO auth_signing_keys (kid, alg, private_pem, public_jwk, created_at) \
                 SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS \
                 (SELECT 1 FROM auth_signing_keys WHERE alg = $6 AND retired_at IS NULL)",
            )
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_pem)
            .bind(&key.public_jwk)
            .bind(key.created_at)
            .bind(&key.alg)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
