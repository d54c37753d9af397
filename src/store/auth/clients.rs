//! Registered apps.

use crate::store::BeginWrite;
use crate::store::audit::chain::AuditRow;
use crate::store::auth::revocation::{Announce, Signal};
use crate::store::{Store, StoreResult, Tx, dispatch};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// `public`, `confidential-symmetric` or `confidential-asymmetric`.
    pub client_type: String,
    pub secret_hash: Option<String>,
    #[sqlx(try_from = "JsonText")]
    pub redirect_uris: Vec<String>,
    pub launch_uri: Option<String>,
    pub scope: String,
    #[sqlx(try_from = "JsonText")]
    pub grant_types: Vec<String>,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub created_at: i64,
    /// The app (`apps` row) this client belongs to; `None` for `kiln client add` clients.
    pub app_id: Option<String>,
    /// A suspended or retired app's client: refused everywhere (see [`Client::usable`]).
    pub disabled: bool,
    /// The secret replaced by a rotation, still accepted until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
}

impl Client {
    /// The one rule of whether a registered client may act (authorize, get or use tokens):
    /// it is not disabled. The token lookup (`Store::token`) applies the same rule in SQL.
    pub fn usable(&self) -> bool {
        !self.disabled
    }
}

pub(crate) const COLUMNS: &str = "client_id, name, client_type, secret_hash, redirect_uris, launch_uri, \
                       scope, grant_types, jwks, jwks_uri, created_at, app_id, disabled, \
                       previous_secret_hash, previous_secret_expires_at";

/// A list column: a JSON array of strings as text; text that is no such array reads as an
/// empty list.
#[derive(sqlx::Type)]
#[sqlx(transparent)]
struct JsonText(String);

impl From<JsonText> for Vec<String> {
    fn from(JsonText(text): JsonText) -> Self {
        serde_json::from_str(&text).unwrap_or_default()
    }
}

/// Inserts `client` (every column) on `executor`.
macro_rules! insert_client {
    ($executor:expr, $client:expr) => {{
        let client: &$crate::store::auth::Client = $client;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO auth_clients ({}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            $crate::store::auth::clients::COLUMNS
        )))
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(&client.client_type)
        .bind(&client.secret_hash)
        .bind(serde_json::to_string(&client.redirect_uris).unwrap_or_default())
        .bind(&client.launch_uri)
        .bind(&client.scope)
        .bind(serde_json::to_string(&client.grant_types).unwrap_or_default())
        .bind(&client.jwks)
        .bind(&client.jwks_uri)
        .bind(client.created_at)
        .bind(&client.app_id)
        .bind(client.disabled)
        .bind(&client.previous_secret_hash)
        .bind(client.previous_secret_expires_at)
        .execute($executor)
        .await
    }};
}
pub(crate) use insert_client;

/// Replaces what an approved revision decides (name, type, secret, URIs, scope, grants,
/// keys, and whether it is enabled: a dynamically registered client is created disabled and
/// enabled at its first approval) of the client `client.client_id` on `executor`; the rest
/// stays.
macro_rules! update_client {
    ($executor:expr, $client:expr) => {{
        let client: &$crate::store::auth::Client = $client;
        sqlx::query(
            "UPDATE auth_clients SET name = $1, client_type = $2, secret_hash = $3, \
             redirect_uris = $4, launch_uri = $5, scope = $6, grant_types = $7, jwks = $8, \
             jwks_uri = $9, previous_secret_hash = $10, previous_secret_expires_at = $11, \
             disabled = $12 WHERE client_id = $13",
        )
        .bind(&client.name)
        .bind(&client.client_type)
        .bind(&client.secret_hash)
        .bind(serde_json::to_string(&client.redirect_uris).unwrap_or_default())
        .bind(&client.launch_uri)
        .bind(&client.scope)
        .bind(serde_json::to_string(&client.grant_types).unwrap_or_default())
        .bind(&client.jwks)
        .bind(&client.jwks_uri)
        .bind(&client.previous_secret_hash)
        .bind(client.previous_secret_expires_at)
        .bind(client.disabled)
        .bind(&client.client_id)
        .execute($executor)
        .await
    }};
}
pub(crate) use update_client;

impl Store {
    /// Registers `client`, with the `audit` events recording it.
    pub async fn insert_client(&self, client: &Client, audit: &[AuditRow]) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            insert_client!(&mut *tx, client)?;
            Tx::from(tx).commit_audited(audit).await?;
        });
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM auth_clients WHERE client_id = $1"
            )))
            .bind(client_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    pub async fn clients(&self) -> StoreResult<Vec<Client>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM auth_clients ORDER BY created_at, client_id"
            )))
            .fetch_all(pool)
            .await?)
        })
    }

    /// Removes a client and revokes every grant it held, with the `audit` events recording
    /// it; `false` when there was none.
    pub async fn remove_client(&self, client_id: &str, audit: &[AuditRow]) -> StoreResult<bool> {
        let signal = Signal::new();
        let removed = dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE auth_grants SET revoked = $1 WHERE client_id = $2")
                .bind(true)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
            let removed = sqlx::query("DELETE FROM auth_clients WHERE client_id = $1")
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.announce(&signal).await?;
            Tx::from(tx).commit_audited(if removed > 0 { audit } else { &[] }).await?;
            Ok(removed > 0)
        });
        signal.delivered(self).await;
        removed
    }

    /// Replaces a confidential-symmetric client's secret hash; `false` when there is no such
    /// client of that type. The old secret stops working at once. The `audit` events
    /// recording it are appended in its transaction.
    pub async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE auth_clients SET secret_hash = $1 \
                 WHERE client_id = $2 AND client_type = 'confidential-symmetric'",
            )
            .bind(secret_hash)
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            Tx::from(tx).commit_audited(if changed > 0 { audit } else { &[] }).await?;
            Ok(changed > 0)
        })
    }
}
