//! The authorization_code and refresh_token grants, driven by the `oauth2` crate. Until the
//! authorize pages exist, each test writes the grant and code the authorize endpoint would
//! store, through Kiln's own store, and exchanges the raw code.

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use kiln::auth::crypto::digest_hex;
use kiln::store::Store;
use kiln::store::auth::{Code, Grant};

use crate::backend_tests;
use crate::common::*;

backend_tests!(code_exchange_and_replay, refresh_rotation_and_reuse);

const REDIRECT: &str = "https://app.example/cb";
const SCOPE: &str = "launch/patient patient/*.rs openid fhirUser offline_access";

/// The SMART fields of a token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Smart {
    patient: Option<String>,
    encounter: Option<String>,
    need_patient_banner: Option<bool>,
    smart_style_url: Option<String>,
    #[serde(rename = "fhirContext")]
    fhir_context: Option<Value>,
    id_token: Option<String>,
}

impl ExtraTokenFields for Smart {}

type Tokens = StandardTokenResponse<Smart, BasicTokenType>;
/// A client before its token endpoint is set.
type NewClient = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;
type SmartClient = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;
type Refusal = RequestTokenError<reqwest::Error, BasicErrorResponse>;

/// oauth2's HTTP over our reqwest.
async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut answer = axum::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(answer.body(body).expect("response"))
}

fn oauth_client(server: &Server, id: &str, secret: Option<&str>) -> SmartClient {
    let client = NewClient::new(ClientId::new(id.into()))
        .set_token_uri(TokenUrl::new(format!("{}/auth/token", server.base)).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    match secret {
        Some(secret) => client.set_client_secret(ClientSecret::new(secret.into())),
        None => client.set_auth_type(AuthType::RequestBody),
    }
}

fn add_client(server: &Server, kind: &str) -> Value {
    server.kiln(&[
        "client",
        "add",
        "--name",
        kind,
        "--type",
        kind,
        "--redirect-uri",
        REDIRECT,
        "--scope",
        SCOPE,
    ])
}

/// What the authorize endpoint stores after consent; returns the raw code and its verifier.
async fn authorize(
    store: &Store,
    client_id: &str,
    scope: &str,
    expires_in: i64,
) -> (String, PkceCodeVerifier) {
    let now = kiln::auth::now();
    let grant_id = uuid::Uuid::new_v4().to_string();
    store
        .insert_grant(&Grant {
            grant_id: grant_id.clone(),
            client_id: client_id.into(),
            username: Some("alice".into()),
            scope: scope.into(),
            patient: Some("p1".into()),
            encounter: Some("e1".into()),
            fhir_user: Some("Patient/p1".into()),
            need_patient_banner: true,
            created_at: now,
            revoked: false,
        })
        .await
        .unwrap();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let code = kiln::auth::crypto::random_token();
    store
        .insert_code(&Code {
            code_hash: digest_hex(&code),
            grant_id,
            redirect_uri: REDIRECT.into(),
            code_challenge: challenge.as_str().into(),
            nonce: Some("nonce-1".into()),
            expires_at: now + expires_in,
        })
        .await
        .unwrap();
    (code, verifier)
}

async fn exchange(
    server: &Server,
    client: &SmartClient,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Result<Tokens, Refusal> {
    let redirect = RedirectUrl::new(redirect.into()).unwrap();
    client
        .exchange_code(AuthorizationCode::new(code.into()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.into()))
        .set_redirect_uri(std::borrow::Cow::Owned(redirect))
        .request_async(&|request| send(&server.client, request))
        .await
}

fn refused_with(result: Result<Tokens, Refusal>, expected: BasicErrorResponseType) {
    match result {
        Err(RequestTokenError::ServerResponse(error)) => assert_eq!(*error.error(), expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

async fn active(server: &Server, id: &str, secret: &str, token: &str) -> bool {
    let body = format!("token={token}");
    let response = server
        .client
        .post(format!("{}/auth/introspect", server.base))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await["active"]
        .as_bool()
        .unwrap()
}

async fn code_exchange_and_replay(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let store = Store::connect(&server.db.url, 2).await.unwrap();
    let chart = add_client(&server, "confidential-symmetric");
    let (id, secret) = (
        chart["client_id"].as_str().unwrap(),
        chart["client_secret"].as_str().unwrap(),
    );
    let client = oauth_client(&server, id, Some(secret));

    let (code, verifier) = authorize(&store, id, SCOPE, 60).await;
    let tokens = exchange(&server, &client, &code, verifier.secret(), REDIRECT)
        .await
        .unwrap();
    assert_eq!(*tokens.token_type(), BasicTokenType::Bearer);
    assert_eq!(
        tokens.expires_in(),
        Some(std::time::Duration::from_secs(3600))
    );
    let scopes: Vec<&str> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(scopes.join(" "), SCOPE);
    let smart = tokens.extra_fields();
    assert_eq!(smart.patient.as_deref(), Some("p1"));
    assert_eq!(smart.encounter.as_deref(), Some("e1"));
    assert_eq!(smart.need_patient_banner, Some(true));
    assert_eq!(
        smart.smart_style_url.as_deref(),
        Some(format!("{}/auth/smart-style.json", server.base).as_str())
    );
    assert_eq!(
        smart.fhir_context,
        Some(json!([{"reference": "Encounter/e1"}]))
    );

    // The id_token verifies with Kiln's published key.
    let id_token = smart.id_token.as_deref().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwks: jsonwebtoken::jwk::JwkSet = server
        .client
        .get(format!("{}/auth/jwks", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[id]);
    validation.set_issuer(&[&server.fhir]);
    let claims = jsonwebtoken::decode::<Value>(
        id_token,
        &jsonwebtoken::DecodingKey::from_jwk(key).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(
        claims["fhirUser"],
        format!("{}/Patient/p1", server.fhir).as_str()
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    let access = tokens.access_token().secret().clone();
    let refresh = tokens.refresh_token().unwrap().secret().clone();
    assert!(active(&server, id, secret, &access).await);
    assert!(active(&server, id, secret, &refresh).await);
    // A replayed code is refused and what it yielded is revoked.
    refused_with(
        exchange(&server, &client, &code, verifier.secret(), REDIRECT).await,
        BasicErrorResponseType::InvalidGrant,
    );
    assert!(!active(&server, id, secret, &access).await);
    assert!(!active(&server, id, secret, &refresh).await);

    // Wrong verifier, wrong redirect URI, another client, an expired code.
    let (code, _) = authorize(&store, id, SCOPE, 60).await;
    let wrong = PkceCodeVerifier::new("x".repeat(43));
    refused_with(
        exchange(&server, &client, &code, wrong.secret(), REDIRECT).await,
        BasicErrorResponseType::InvalidGrant,
    );
    let (code, verifier) = authorize(&store, id, SCOPE, 60).await;
    refused_with(
        exchange(
            &server,
            &client,
            &code,
            verifier.secret(),
            "https://app.example/other",
        )
        .await,
        BasicErrorResponseType::InvalidGrant,
    );
    let phone = add_client(&server, "public");
    let phone_client = oauth_client(&server, phone["client_id"].as_str().unwrap(), None);
    let (code, verifier) = authorize(&store, id, SCOPE, 60).await;
    refused_with(
        exchange(&server, &phone_client, &code, verifier.secret(), REDIRECT).await,
        BasicErrorResponseType::InvalidGrant,
    );
    let (code, verifier) = authorize(&store, id, SCOPE, -1).await;
    refused_with(
        exchange(&server, &client, &code, verifier.secret(), REDIRECT).await,
        BasicErrorResponseType::InvalidGrant,
    );
    // Without offline_access or online_access there is no refresh token; without
    // fhirUser or profile no id_token.
    let (code, verifier) = authorize(&store, id, "patient/*.rs openid", 60).await;
    let tokens = exchange(&server, &client, &code, verifier.secret(), REDIRECT)
        .await
        .unwrap();
    assert!(tokens.refresh_token().is_none());
    assert!(tokens.extra_fields().id_token.is_none());
    store.close().await;
}

async fn refresh_rotation_and_reuse(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let store = Store::connect(&server.db.url, 2).await.unwrap();
    let phone = add_client(&server, "public");
    let id = phone["client_id"].as_str().unwrap();
    let client = oauth_client(&server, id, None);
    // A confidential client to ask the introspection endpoint.
    let chart = add_client(&server, "confidential-symmetric");
    let (rs_id, rs_secret) = (
        chart["client_id"].as_str().unwrap(),
        chart["client_secret"].as_str().unwrap(),
    );
    let http = |request| send(&server.client, request);

    let (code, verifier) = authorize(&store, id, SCOPE, 60).await;
    let first = exchange(&server, &client, &code, verifier.secret(), REDIRECT)
        .await
        .unwrap();
    let first_refresh = first.refresh_token().unwrap().clone();

    // Rotation, with a narrower scope for the new access token.
    let second = client
        .exchange_refresh_token(&first_refresh)
        .add_scope(Scope::new("patient/Observation.rs".into()))
        .request_async(&http)
        .await
        .unwrap();
    let scopes: Vec<&str> = second
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(scopes, ["patient/Observation.rs"]);
    assert_eq!(second.extra_fields().patient.as_deref(), Some("p1"));
    let second_refresh = second.refresh_token().unwrap().clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    assert!(!active(&server, rs_id, rs_secret, first_refresh.secret()).await);
    assert!(active(&server, rs_id, rs_secret, second_refresh.secret()).await);
    assert!(active(&server, rs_id, rs_secret, second.access_token().secret()).await);

    // A wider scope is refused, and does not use up the refresh token.
    let wider = client
        .exchange_refresh_token(&second_refresh)
        .add_scope(Scope::new("patient/*.cruds".into()))
        .request_async(&http)
        .await;
    refused_with(wider, BasicErrorResponseType::InvalidScope);
    let third = client
        .exchange_refresh_token(&second_refresh)
        .request_async(&http)
        .await
        .unwrap();
    let scopes: Vec<&str> = third.scopes().unwrap().iter().map(|s| s.as_str()).collect();
    assert_eq!(scopes.join(" "), SCOPE, "the full scope comes back");
    let third_refresh = third.refresh_token().unwrap().clone();

    // Another client cannot use it.
    let other = oauth_client(&server, rs_id, Some(rs_secret));
    refused_with(
        other
            .exchange_refresh_token(&third_refresh)
            .request_async(&http)
            .await,
        BasicErrorResponseType::InvalidGrant,
    );

    // Reusing a rotated refresh token revokes the whole chain.
    refused_with(
        client
            .exchange_refresh_token(&first_refresh)
            .request_async(&http)
            .await,
        BasicErrorResponseType::InvalidGrant,
    );
    assert!(!active(&server, rs_id, rs_secret, third.access_token().secret()).await);
    refused_with(
        client
            .exchange_refresh_token(&third_refresh)
            .request_async(&http)
            .await,
        BasicErrorResponseType::InvalidGrant,
    );

    // Revoking a refresh token revokes its grant.
    let (code, verifier) = authorize(&store, id, SCOPE, 60).await;
    let fresh = exchange(&server, &client, &code, verifier.secret(), REDIRECT)
        .await
        .unwrap();
    let body = format!(
        "token={}&client_id={id}",
        fresh.refresh_token().unwrap().secret()
    );
    let revoked = server
        .client
        .post(format!("{}/auth/revoke", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(!active(&server, rs_id, rs_secret, fresh.access_token().secret()).await);
    store.close().await;
}
