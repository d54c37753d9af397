//! Backend services for tests: app keys (RS384, ES384), a JWK Set served on loopback,
//! signed client assertions, and access tokens from the client-credentials grant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::{Server, Value, expect_json, json};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A key pair of the app: signs assertions, publishes its public JWK.
pub struct AppKey {
    pub alg: Algorithm,
    pub kid: String,
    pub key: EncodingKey,
    pub jwk: Jwk,
}

impl AppKey {
    pub fn rs384(kid: &str) -> AppKey {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = STANDARD.encode(pair.as_der().unwrap().as_ref());
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{der}\n-----END PRIVATE KEY-----\n");
        Self::new(
            Algorithm::RS384,
            kid,
            EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
    }

    pub fn es384(kid: &str) -> AppKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        Self::new(
            Algorithm::ES384,
            kid,
            EncodingKey::from_ec_der(der.as_ref()),
        )
    }

    pub fn new(alg: Algorithm, kid: &str, key: EncodingKey) -> AppKey {
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        AppKey {
            alg,
            kid: kid.to_string(),
            key,
            jwk,
        }
    }

    /// An assertion with these header changes and claims.
    pub fn sign(&self, header: impl FnOnce(&mut Header), claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        header(&mut h);
        jsonwebtoken::encode(&h, claims, &self.key).unwrap()
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid assertion claims for `client_id` at `server`'s token endpoint.
pub fn claims(server: &Server, client_id: &str) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{}/auth/token", server.base),
        "exp": now() + 240,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// A JWK Set served on loopback, with a count of how often it was fetched.
pub struct JwksServer {
    pub url: String,
    pub keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(keys: Vec<Jwk>) -> JwksServer {
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let set = JwkSet {
                    keys: served.lock().unwrap().clone(),
                };
                counted.fetch_add(1, Ordering::SeqCst);
                async move { ([("cache-control", "public, max-age=300")], axum::Json(set)) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        JwksServer { url, keys, fetches }
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A registered backend service with an RS384 key published at a loopback JWKS URL.
pub struct BackendService {
    pub client_id: String,
    pub key: AppKey,
    _jwks: JwksServer,
}

impl BackendService {
    /// Registers a client allowed `scope`.
    pub async fn register(server: &Server, scope: &str) -> BackendService {
        let key = AppKey::rs384("rsa-1");
        let jwks = JwksServer::start(vec![key.jwk.clone()]).await;
        let client = server.kiln(&[
            "client",
            "add",
            "--name",
            "Bulk",
            "--type",
            "confidential-asymmetric",
            "--jwks-uri",
            &jwks.url,
            "--grant-type",
            "client-credentials",
            "--scope",
            scope,
        ]);
        BackendService {
            client_id: client["client_id"].as_str().unwrap().to_string(),
            key,
            _jwks: jwks,
        }
    }

    /// An access token for `scope`, from a signed RS384 assertion.
    pub async fn token(&self, server: &Server, scope: &str) -> String {
        let assertion = self.key.sign(|_| {}, &claims(server, &self.client_id));
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ])
            .finish();
        let response = server
            .client
            .post(format!("{}/auth/token", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let body = expect_json(response, 200).await;
        body["access_token"].as_str().unwrap().to_string()
    }
}
