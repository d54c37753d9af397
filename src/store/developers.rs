//! Developer accounts of the portal (migration 0012): the accounts, the single-use links
//! mailed to them (e-mail verification, password reset) and the developer signed in to a
//! browser session.

use crate::store::BeginWrite;
use crate::store::audit::chain::AuditRow;
use crate::store::auth::revocation::{Announce, Signal};
use crate::store::{Store, StoreResult, Tx, dispatch};

/// A developer account as pages and the admin console show it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Developer {
    /// A UUID.
    pub account_id: String,
    /// Lower-cased.
    pub email: String,
    pub name: String,
    pub organization: String,
    /// When the address was verified (by its link or by hand); `None`: not yet.
    pub verified_at: Option<i64>,
    pub disabled: bool,
    pub created_at: i64,
}

/// An account with its password hash, for signing in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeveloperLogin {
    #[sqlx(flatten)]
    pub developer: Developer,
    pub password_hash: String,
}

/// What a mailed link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Verify,
    Reset,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Verify => "verify",
            LinkPurpose::Reset => "reset",
        }
    }
}

const COLUMNS: &str = "account_id, email, name, organization, verified_at, disabled, created_at";

impl Store {
    /// Adds an account (`email` already lower-cased); `false` when the address is taken.
    pub async fn insert_developer(
        &self,
        developer: &Developer,
        password_hash: &str,
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let inserted = sqlx::query(
                "INSERT INTO developer_accounts (account_id, email, name, organization, \
                 password_hash, verified_at, disabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (email) DO NOTHING",
            )
            .bind(&developer.account_id)
            .bind(&developer.email)
            .bind(&developer.name)
            .bind(&developer.organization)
            .bind(password_hash)
            .bind(developer.verified_at)
            .bind(developer.disabled)
            .bind(developer.created_at)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(inserted == 1)
        })
    }

    pub async fn developer(&self, account_id: &str) -> StoreResult<Option<Developer>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM developer_accounts WHERE account_id = $1"
            )))
            .bind(account_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The account of a (lower-cased) address, with its password hash.
    pub async fn developer_login(&self, email: &str) -> StoreResult<Option<DeveloperLogin>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS}, password_hash FROM developer_accounts WHERE email = $1"
            )))
            .bind(email)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Every account, newest first (the admin console).
    pub async fn developers(&self) -> StoreResult<Vec<Developer>> {
        dispatch!(self, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM developer_accounts ORDER BY created_at DESC, email"
            )))
            .fetch_all(pool)
            .await?)
        })
    }

    /// Marks an account's address verified (its link, or an admin by hand); `false` when
    /// there is no such account. An account verified before keeps its first time. The
    /// `audit` events recording it are appended in its transaction.
    pub async fn verify_developer(
        &self,
        account_id: &str,
        now: i64,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE developer_accounts SET verified_at = COALESCE(verified_at, $1) \
                 WHERE account_id = $2",
            )
            .bind(now)
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            Tx::from(tx).commit_audited(if changed == 1 { audit } else { &[] }).await?;
            Ok(changed == 1)
        })
    }

    /// Disables an account (it can no longer sign in, and its sessions end) or enables it
    /// again, with the `audit` events recording it; `false` when there is no such account.
    pub async fn set_developer_disabled(
        &self,
        account_id: &str,
        disabled: bool,
        audit: &[AuditRow],
    ) -> StoreResult<bool> {
        let signal = Signal::new();
        let changed = dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE developer_accounts SET disabled = $1 WHERE account_id = $2",
            )
            .bind(disabled)
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if disabled {
                sqlx::query("UPDATE auth_sessions SET developer = NULL WHERE developer = $1")
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.announce(&signal).await?;
            Tx::from(tx).commit_audited(if changed == 1 { audit } else { &[] }).await?;
            Ok(changed == 1)
        });
        signal.delivered(self).await;
        changed
    }

    /// Stores a mailed link (the digest of its token), clearing links that are used or
    /// expired.
    pub async fn insert_developer_link(
        &self,
        link_hash: &str,
        account_id: &str,
        purpose: LinkPurpose,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM developer_links WHERE expires_at < $1 OR used = $2")
                .bind(now)
                .bind(true)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO developer_links (link_hash, account_id, purpose, expires_at, used) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(link_hash)
            .bind(account_id)
            .bind(purpose.as_str())
            .bind(expires_at)
            .bind(false)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The account of a link that is unused and unexpired, without using it (the page that
    /// asks for a new password).
    pub async fn developer_link(
        &self,
        link_hash: &str,
        purpose: LinkPurpose,
        now: i64,
    ) -> StoreResult<Option<String>> {
        dispatch!(self, pool => {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT account_id FROM developer_links WHERE link_hash = $1 AND purpose = $2 \
                 AND used = $3 AND expires_at > $4",
            )
            .bind(link_hash)
            .bind(purpose.as_str())
            .bind(false)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(account_id,)| account_id))
        })
    }

    /// Uses a verification link: marks it used and the account verified, in one step;
    /// the account id, or `None` when the link is unknown, used or expired.
    pub async fn use_verify_link(&self, link_hash: &str, now: i64) -> StoreResult<Option<String>> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row: Option<(String,)> = sqlx::query_as(
                "UPDATE developer_links SET used = $1 WHERE link_hash = $2 AND purpose = $3 \
                 AND used = $4 AND expires_at > $5 RETURNING account_id",
            )
            .bind(true)
            .bind(link_hash)
            .bind(LinkPurpose::Verify.as_str())
            .bind(false)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((account_id,)) = &row {
                sqlx::query(
                    "UPDATE developer_accounts SET verified_at = COALESCE(verified_at, $1) \
                     WHERE account_id = $2",
                )
                .bind(now)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(row.map(|(account_id,)| account_id))
        })
    }

    /// Uses a reset link: marks it used, sets the new password, ends every portal session
    /// of the account and voids its other reset links, in one step; the account id, or
    /// `None` when the link is unknown, used or expired. Following the link proves the
    /// address, so an unverified account becomes verified.
    pub async fn use_reset_link(
        &self,
        link_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Option<String>> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row: Option<(String,)> = sqlx::query_as(
                "UPDATE developer_links SET used = $1 WHERE link_hash = $2 AND purpose = $3 \
                 AND used = $4 AND expires_at > $5 RETURNING account_id",
            )
            .bind(true)
            .bind(link_hash)
            .bind(LinkPurpose::Reset.as_str())
            .bind(false)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((account_id,)) = &row {
                sqlx::query(
                    "UPDATE developer_accounts SET password_hash = $1, \
                     verified_at = COALESCE(verified_at, $2) WHERE account_id = $3",
                )
                .bind(password_hash)
                .bind(now)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE developer_links SET used = $1 WHERE account_id = $2 AND purpose = $3",
                )
                .bind(true)
                .bind(account_id)
                .bind(LinkPurpose::Reset.as_str())
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE auth_sessions SET developer = NULL WHERE developer = $1")
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(row.map(|(account_id,)| account_id))
        })
    }

    /// Records which developer is signed in to a browser session (`None` signs out).
    pub async fn set_session_developer(
        &self,
        session_hash: &str,
        account_id: Option<&str>,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("UPDATE auth_sessions SET developer = $1 WHERE session_hash = $2")
                .bind(account_id)
                .bind(session_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::auth::Session;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/kiln.db", dir.path().display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        (store, dir)
    }

    fn developer(id: &str, email: &str, created_at: i64) -> Developer {
        Developer {
            account_id: id.into(),
            email: email.into(),
            name: "Dev".into(),
            organization: String::new(),
            verified_at: None,
            disabled: false,
            created_at,
        }
    }

    /// What the admin console does: list, verify by hand, disable (ending sessions).
    #[tokio::test]
    async fn admin_actions_on_accounts() {
        let (store, _dir) = store().await;
        assert!(
            store
                .insert_developer(&developer("a", "a@example.org", 1), "h")
                .await
                .unwrap()
        );
        assert!(
            store
                .insert_developer(&developer("b", "b@example.org", 2), "h")
                .await
                .unwrap()
        );
        assert!(
            !store
                .insert_developer(&developer("c", "a@example.org", 3), "h")
                .await
                .unwrap()
        );
        let listed: Vec<String> = store
            .developers()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.account_id)
            .collect();
        assert_eq!(listed, ["b", "a"]);

        assert!(store.verify_developer("a", 10, &[]).await.unwrap());
        assert!(store.verify_developer("a", 20, &[]).await.unwrap());
        assert_eq!(
            store.developer("a").await.unwrap().unwrap().verified_at,
            Some(10)
        );
        assert!(!store.verify_developer("nobody", 10, &[]).await.unwrap());

        let session = Session {
            session_hash: "s".into(),
            username: Some("alice".into()),
            developer: Some("a".into()),
            csrf_token: "t".into(),
            expires_at: i64::MAX,
        };
        store.insert_session(&session, 0).await.unwrap();
        assert!(store.set_developer_disabled("a", true, &[]).await.unwrap());
        let after = store.session("s").await.unwrap().unwrap();
        assert_eq!(after.developer, None, "the developer is signed out");
        assert_eq!(
            after.username.as_deref(),
            Some("alice"),
            "the EHR user is not"
        );
        assert!(store.developer("a").await.unwrap().unwrap().disabled);
        assert!(store.set_developer_disabled("a", false, &[]).await.unwrap());
        assert!(!store.developer("a").await.unwrap().unwrap().disabled);
        assert!(
            !store
                .set_developer_disabled("nobody", true, &[])
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn links_work_once_before_they_expire() {
        let (store, _dir) = store().await;
        store
            .insert_developer(&developer("a", "a@example.org", 1), "old")
            .await
            .unwrap();
        store
            .insert_developer_link("v", "a", LinkPurpose::Verify, 100, 0)
            .await
            .unwrap();
        store
            .insert_developer_link("r1", "a", LinkPurpose::Reset, 100, 0)
            .await
            .unwrap();
        store
            .insert_developer_link("r2", "a", LinkPurpose::Reset, 100, 0)
            .await
            .unwrap();
        // A link is good for its own purpose only, and not at or after its expiry.
        assert_eq!(store.use_reset_link("v", "new", 50).await.unwrap(), None);
        assert_eq!(
            store
                .developer_link("r1", LinkPurpose::Verify, 50)
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.use_verify_link("v", 100).await.unwrap(), None);
        assert_eq!(
            store.use_verify_link("v", 50).await.unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(store.use_verify_link("v", 50).await.unwrap(), None);
        assert_eq!(
            store.developer("a").await.unwrap().unwrap().verified_at,
            Some(50)
        );
        assert_eq!(
            store
                .developer_link("r1", LinkPurpose::Reset, 50)
                .await
                .unwrap()
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            store
                .use_reset_link("r1", "new", 50)
                .await
                .unwrap()
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            store
                .developer_login("a@example.org")
                .await
                .unwrap()
                .unwrap()
                .password_hash,
            "new"
        );
        // The account's other reset links die with the reset.
        assert_eq!(store.use_reset_link("r2", "newer", 50).await.unwrap(), None);
    }
}
