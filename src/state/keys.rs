//! Kiln's signing keys: an RS256 key made on first start and kept in the database (so every
//! replica signs with the same key), published in the JWKS with retired keys kept until
//! the tokens they signed have expired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use tokio::sync::RwLock;

use crate::fhir::instant::now_secs;
use crate::store::audit::chain::AuditRow;
use crate::store::auth::SigningKeyRow;
use crate::store::{Store, StoreError};

/// How long a replica keeps its copy of the key table (retired keys drop out of the JWKS
/// when it is read again); a rotation is noticed at once (see [`KeyRing::current`]).
const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// The keys of one moment: the one that signs and every one that verifies.
pub struct KeySet {
    signing_kid: String,
    signing_key: EncodingKey,
    pub jwks: JwkSet,
}

impl KeySet {
    /// A signed JWT (RS256) of `claims`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing_key)
    }
}

/// The key set, reloaded from the database now and then so rotations reach every replica.
pub struct KeyRing {
    store: Store,
    /// Retired keys stay published this long (the longest lifetime of what they signed).
    retention_secs: i64,
    cached: RwLock<Option<(Instant, Arc<KeySet>)>>,
}

#[derive(Debug)]
pub enum KeyError {
    Store(StoreError),
    Crypto(String),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Store(error) => write!(f, "{error}"),
            KeyError::Crypto(error) => write!(f, "signing key: {error}"),
        }
    }
}

impl std::error::Error for KeyError {}

impl From<StoreError> for KeyError {
    fn from(error: StoreError) -> Self {
        KeyError::Store(error)
    }
}

impl KeyRing {
    pub fn new(store: Store, retention_secs: i64) -> KeyRing {
        KeyRing {
            store,
            retention_secs,
            cached: RwLock::new(None),
        }
    }

    /// Creates the first key if the database has none yet.
    pub async fn ensure_key(&self) -> Result<(), KeyError> {
        let now = now_secs();
        if self.store.signing_keys(now).await?.is_empty() {
            self.store.insert_first_signing_key(&new_key(now)?).await?;
        }
        Ok(())
    }

    /// Makes a fresh key the signing key; the previous one stays published until the
    /// tokens it signed have expired. `audit` gives the audit events recording the rotation
    /// to the new key's kid; they are appended in its transaction.
    pub async fn rotate(
        &self,
        audit: impl FnOnce(&str) -> Vec<AuditRow>,
    ) -> Result<String, KeyError> {
        let key = new_key(now_secs())?;
        self.store
            .rotate_signing_key(&key, &audit(&key.kid))
            .await?;
        *self.cached.write().await = None;
        Ok(key.kid)
    }

    /// The keys as they are now. Another replica (or `kiln keys rotate`) may have rotated:
    /// the active kid is read each time (one indexed row; keys are used when tokens are
    /// issued and the JWKS is served, never on the per-request token check), so every
    /// replica signs with and publishes a new key from the moment it is stored.
    pub async fn current(&self) -> Result<Arc<KeySet>, KeyError> {
        let active = self.store.active_signing_kid("RS256").await?;
        if let Some((loaded, keys)) = self.cached.read().await.as_ref()
            && loaded.elapsed() < RELOAD_EVERY
            && active.as_deref() == Some(keys.signing_kid.as_str())
        {
            return Ok(keys.clone());
        }
        let keys = Arc::new(self.load().await?);
        *self.cached.write().await = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    async fn load(&self) -> Result<KeySet, KeyError> {
        let rows = self
            .store
            .signing_keys(now_secs() - self.retention_secs)
            .await?;
        let signing = match rows.iter().find(|row| row.retired_at.is_none()) {
            Some(row) => row,
            None => return Err(KeyError::Crypto("no active signing key".into())),
        };
        let signing_key = EncodingKey::from_rsa_pem(signing.private_pem.as_bytes())
            .map_err(|error| KeyError::Crypto(error.to_string()))?;
        let keys = rows
            .iter()
            .filter_map(|row| serde_json::from_str::<Jwk>(&row.public_jwk).ok())
            .collect();
        Ok(KeySet {
            signing_kid: signing.kid.clone(),
            signing_key,
            jwks: JwkSet { keys },
        })
    }
}

/// A new RSA-2048 key for RS256, with its public JWK (kid = RFC 7638 thumbprint).
fn new_key(now: i64) -> Result<SigningKeyRow, KeyError> {
    let crypto = |error: &dyn std::fmt::Display| KeyError::Crypto(error.to_string());
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| crypto(&e))?;
    let der = pair.as_der().map_err(|e| crypto(&e))?;
    let private_pem = pem("PRIVATE KEY", der.as_ref());
    let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes()).map_err(|e| crypto(&e))?;
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).map_err(|e| crypto(&e))?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| crypto(&e))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let public_jwk = serde_json::to_string(&jwk).map_err(|e| crypto(&e))?;
    Ok(SigningKeyRow {
        kid,
        alg: "RS256".into(),
        private_pem,
        public_jwk,
        created_at: now,
        retired_at: None,
    })
}

/// PEM armour around DER (jsonwebtoken reads RSA keys as PKCS#8 PEM, not DER).
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap_or_default());
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}
