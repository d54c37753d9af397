//! Registered apps.

use crate::store::{Store, StoreResult, dispatch};

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
}

const COLUMNS: &str = "client_id, name, client_type, secret_hash, redirect_uris, launch_uri, \
                       scope, grant_types, jwks, jwks_uri, created_at";

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

impl Store {
    pub async fn insert_client(&self, client: &Client) -> StoreResult<()> {
        let redirect_uris = serde_json::to_string(&client.redirect_uris).unwrap_or_default();
        let grant_types = serde_json::to_string(&client.grant_types).unwrap_or_default();
        dispatch!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO auth_clients ({COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            )))
            .bind(&client.client_id)
            .bind(&client.name)
            .bind(&client.client_type)
            .bind(&client.secret_hash)
            .bind(&redirect_uris)
            .bind(&client.launch_uri)
            .bind(&client.scope)
            .bind(&grant_types)
            .bind(&client.jwks)
            .bind(&client.jwks_uri)
            .bind(client.created_at)
            .execute(pool)
            .await?;
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

    /// Removes a client and revokes every grant it held; `false` when there was none.
    pub async fn remove_client(&self, client_id: &str) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
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
            tx.commit().await?;
            Ok(removed > 0)
        })
    }

    /// Replaces a confidential-symmetric client's secret hash; `false` when there is no such
    /// client of that type. The old secret stops working at once.
    pub async fn set_client_secret(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let changed = sqlx::query(
                "UPDATE auth_clients SET secret_hash = $1 \
                 WHERE client_id = $2 AND client_type = 'confidential-symmetric'",
            )
            .bind(secret_hash)
            .bind(client_id)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(changed > 0)
        })
    }
}
