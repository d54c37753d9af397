//! Grants (what a user or a backend client authorized), their authorization codes and
//! tokens, and the client assertion ids already seen.

use super::revocation::{Announce, Signal};
use crate::store::BeginWrite;
use crate::store::{Store, StoreResult, dispatch};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Grant {
    pub grant_id: String,
    pub client_id: String,
    /// The signed-in user; `None` for backend services.
    pub username: Option<String>,
    pub scope: String,
    pub patient: Option<String>,
    pub encounter: Option<String>,
    pub fhir_user: Option<String>,
    pub need_patient_banner: bool,
    pub created_at: i64,
    pub revoked: bool,
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Code {
    pub code_hash: String,
    pub grant_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// Reads the stored kind; anything but `refresh` is an access token.
impl From<String> for TokenKind {
    fn from(kind: String) -> Self {
        if kind == TokenKind::Refresh.as_str() {
            TokenKind::Refresh
        } else {
            TokenKind::Access
        }
    }
}

/// A token with the grant it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRecord {
    #[sqlx(try_from = "String")]
    pub kind: TokenKind,
    #[sqlx(flatten)]
    pub grant: Grant,
    #[sqlx(rename = "token_scope")]
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used: bool,
    #[sqlx(rename = "token_revoked")]
    pub revoked: bool,
    /// Whether the grant's client is still registered and usable (not disabled: the rule
    /// of `Client::usable`).
    pub client_usable: bool,
}

const GRANT_COLUMNS: &str = "g.grant_id, g.client_id, g.username, g.scope, g.patient, g.encounter, \
                             g.fhir_user, g.need_patient_banner, g.created_at, g.revoked";

impl Store {
    pub async fn insert_grant(&self, grant: &Grant) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO auth_grants (grant_id, client_id, username, scope, patient, encounter, \
                 fhir_user, need_patient_banner, created_at, revoked) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&grant.grant_id)
            .bind(&grant.client_id)
            .bind(&grant.username)
            .bind(&grant.scope)
            .bind(&grant.patient)
            .bind(&grant.encounter)
            .bind(&grant.fhir_user)
            .bind(grant.need_patient_banner)
            .bind(grant.created_at)
            .bind(grant.revoked)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn grant(&self, grant_id: &str) -> StoreResult<Option<Grant>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {GRANT_COLUMNS} FROM auth_grants g WHERE g.grant_id = $1"
            )))
            .bind(grant_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The live grants a user gave, newest first (the connected-apps page).
    pub async fn user_grants(&self, username: &str) -> StoreResult<Vec<Grant>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {GRANT_COLUMNS} FROM auth_grants g \
                 WHERE g.username = $1 AND g.revoked = $2 ORDER BY g.created_at DESC, g.grant_id"
            )))
            .bind(username)
            .bind(false)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Revokes a grant and so every token issued under it, on every replica at once.
    pub async fn revoke_grant(&self, grant_id: &str) -> StoreResult<()> {
        let signal = Signal::new();
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE auth_grants SET revoked = $1 WHERE grant_id = $2")
                .bind(true)
                .bind(grant_id)
                .execute(&mut *tx)
                .await?;
            tx.announce(&signal).await?;
            tx.commit().await?;
        });
        signal.delivered(self).await;
        Ok(())
    }

    pub async fn insert_code(&self, code: &Code) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO auth_codes (code_hash, grant_id, redirect_uri, code_challenge, nonce, \
                 expires_at, used) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&code.code_hash)
            .bind(&code.grant_id)
            .bind(&code.redirect_uri)
            .bind(&code.code_challenge)
            .bind(&code.nonce)
            .bind(code.expires_at)
            .bind(false)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks a code used and returns it with whether it had been used before (a replay).
    pub async fn consume_code(&self, code_hash: &str) -> StoreResult<Option<(Code, bool)>> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let code: Option<Code> = sqlx::query_as(
                "SELECT code_hash, grant_id, redirect_uri, code_challenge, nonce, expires_at, used \
                 FROM auth_codes WHERE code_hash = $1",
            )
            .bind(code_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(code) = code else {
                return Ok(None);
            };
            // Only one exchange can flip `used`: concurrent replays see zero rows affected.
            let flipped = sqlx::query(
                "UPDATE auth_codes SET used = $1 WHERE code_hash = $2 AND used = $3",
            )
            .bind(true)
            .bind(code_hash)
            .bind(false)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(Some((code, flipped == 0)))
        })
    }

    pub async fn insert_token(
        &self,
        token_hash: &str,
        kind: TokenKind,
        grant_id: &str,
        scope: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO auth_tokens (token_hash, kind, grant_id, scope, issued_at, expires_at, \
                 used, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(token_hash)
            .bind(kind.as_str())
            .bind(grant_id)
            .bind(scope)
            .bind(issued_at)
            .bind(expires_at)
            .bind(false)
            .bind(false)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A token with its grant; one indexed lookup, so revocation is seen by every replica.
    pub async fn token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT t.kind, t.scope AS token_scope, t.issued_at, t.expires_at, t.used, \
                 t.revoked AS token_revoked, (c.client_id IS NOT NULL AND c.disabled = $2) AS client_usable, \
                 {GRANT_COLUMNS} \
                 FROM auth_tokens t JOIN auth_grants g ON g.grant_id = t.grant_id \
                 LEFT JOIN auth_clients c ON c.client_id = g.client_id \
                 WHERE t.token_hash = $1"
            )))
            .bind(token_hash)
            .bind(false)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Marks a refresh token used (rotated); `false` when it already was (a reuse).
    pub async fn use_refresh_token(&self, token_hash: &str) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let flipped = sqlx::query(
                "UPDATE auth_tokens SET used = $1 WHERE token_hash = $2 AND used = $3",
            )
            .bind(true)
            .bind(token_hash)
            .bind(false)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(flipped == 1)
        })
    }

    /// Revokes one token, on every replica at once.
    pub async fn revoke_token(&self, token_hash: &str) -> StoreResult<()> {
        let signal = Signal::new();
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE auth_tokens SET revoked = $1 WHERE token_hash = $2")
                .bind(true)
                .bind(token_hash)
                .execute(&mut *tx)
                .await?;
            tx.announce(&signal).await?;
            tx.commit().await?;
        });
        signal.delivered(self).await;
        Ok(())
    }

    /// Records a client assertion's `jti`; `false` if it was seen and has not expired yet.
    pub async fn record_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM auth_assertion_jtis WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO auth_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id, jti) DO NOTHING",
            )
            .bind(client_id)
            .bind(jti)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(inserted == 1)
        })
    }
}
