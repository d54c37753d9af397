//! The authorization_code and refresh_token grants, driven by the `oauth2` crate: each code
//! comes from a real EHR launch through Kiln's pages (see `common::smart`).

use oauth2::basic::{BasicErrorResponse, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AuthorizationCode, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
};

use crate::backend_tests;
use crate::common::smart::{
    Answers, App, HttpError, NONCE, SmartClient, SmartToken, authorize_code, send,
};
use crate::common::*;

backend_tests!(
    code_exchange_and_replay,
    refresh_rotation_and_reuse,
    public_client_refreshes_with_the_refresh_token_alone
);

const REDIRECT: &str = "https://app.example/cb";
const SCOPE: &str = "launch launch/patient patient/*.rs openid fhirUser offline_access";

type Refusal = RequestTokenError<HttpError, BasicErrorResponse>;

fn oauth_client(server: &Server, id: &str, secret: Option<&str>) -> SmartClient {
    App {
        client_id: id.into(),
        secret: secret.map(str::to_string),
        redirect_uri: REDIRECT.into(),
    }
    .oauth(server)
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
        "--launch-uri",
        "https://app.example/launch",
        "--scope",
        SCOPE,
    ])
}

/// An EHR launch for alice (Patient/p1) in encounter e1, through the authorize pages;
/// returns the raw code and its verifier.
async fn authorize(server: &Server, client_id: &str, scope: &str) -> (String, PkceCodeVerifier) {
    let launch = server.kiln(&[
        "launch",
        "create",
        "--client-id",
        client_id,
        "--user",
        "alice",
        "--patient",
        "p1",
        "--encounter",
        "e1",
    ]);
    let app = App {
        client_id: client_id.into(),
        secret: None,
        redirect_uri: REDIRECT.into(),
    };
    authorize_code(
        server,
        &app,
        scope,
        launch["launch"].as_str(),
        &Answers::allow("alice", "pw-1"),
    )
    .await
    .unwrap()
}

/// A secured server with Patient p1, Encounter e1 and the user alice (Patient/p1).
async fn server_with_alice(backend: Backend) -> Option<Server> {
    let server = Server::start_secured(backend, &[]).await?;
    let records = [
        json!({"resourceType": "Patient", "id": "p1"}),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/p1"}}),
    ];
    server.import(&records);
    server.kiln(&[
        "user",
        "add",
        "--username",
        "alice",
        "--password",
        "pw-1",
        "--fhir-user",
        "Patient/p1",
    ]);
    Some(server)
}

async fn exchange(
    server: &Server,
    client: &SmartClient,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Result<SmartToken, Refusal> {
    let redirect = RedirectUrl::new(redirect.into()).unwrap();
    client
        .exchange_code(AuthorizationCode::new(code.into()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.into()))
        .set_redirect_uri(std::borrow::Cow::Owned(redirect))
        .request_async(&|request| send(&server.client, request))
        .await
}

fn refused_with(result: Result<SmartToken, Refusal>, expected: BasicErrorResponseType) {
    match result {
        Err(RequestTokenError::ServerResponse(error)) => assert_eq!(*error.error(), expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

/// Whether an access token still reads the patient's Observations (200) or is dead (401).
async fn reads(server: &Server, token: &str) -> bool {
    let response = server
        .client
        .get(server.url("Observation?patient=p1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    match response.status().as_u16() {
        200 => true,
        401 => false,
        status => panic!("unexpected status {status}"),
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
    let Some(server) = server_with_alice(backend).await else {
        return;
    };
    let chart = add_client(&server, "confidential-symmetric");
    let (id, secret) = (
        chart["client_id"].as_str().unwrap(),
        chart["client_secret"].as_str().unwrap(),
    );
    let client = oauth_client(&server, id, Some(secret));

    let (code, verifier) = authorize(&server, id, SCOPE).await;
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
    // An EHR launch: the EHR shows the banner itself.
    assert_eq!(smart.need_patient_banner, Some(false));
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
    assert_eq!(claims["nonce"], NONCE);
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

    // Wrong verifier, wrong redirect URI, another client.
    let (code, _) = authorize(&server, id, SCOPE).await;
    let wrong = PkceCodeVerifier::new("x".repeat(43));
    refused_with(
        exchange(&server, &client, &code, wrong.secret(), REDIRECT).await,
        BasicErrorResponseType::InvalidGrant,
    );
    let (code, verifier) = authorize(&server, id, SCOPE).await;
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
    let (code, verifier) = authorize(&server, id, SCOPE).await;
    refused_with(
        exchange(&server, &phone_client, &code, verifier.secret(), REDIRECT).await,
        BasicErrorResponseType::InvalidGrant,
    );
    // Without offline_access or online_access there is no refresh token; without
    // fhirUser or profile no id_token.
    let (code, verifier) = authorize(&server, id, "launch patient/*.rs openid").await;
    let tokens = exchange(&server, &client, &code, verifier.secret(), REDIRECT)
        .await
        .unwrap();
    assert!(tokens.refresh_token().is_none());
    assert!(tokens.extra_fields().id_token.is_none());
}

async fn refresh_rotation_and_reuse(backend: Backend) {
    let Some(server) = server_with_alice(backend).await else {
        return;
    };
    let phone = add_client(&server, "public");
    let id = phone["client_id"].as_str().unwrap();
    let client = oauth_client(&server, id, None);
    // Another client, which may not use the phone's refresh tokens.
    let chart = add_client(&server, "confidential-symmetric");
    let (rs_id, rs_secret) = (
        chart["client_id"].as_str().unwrap(),
        chart["client_secret"].as_str().unwrap(),
    );
    let http = |request| send(&server.client, request);

    let (code, verifier) = authorize(&server, id, SCOPE).await;
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
    assert!(reads(&server, second.access_token().secret()).await);

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
    assert!(!reads(&server, third.access_token().secret()).await);
    refused_with(
        client
            .exchange_refresh_token(&third_refresh)
            .request_async(&http)
            .await,
        BasicErrorResponseType::InvalidGrant,
    );

    // Revoking a refresh token revokes its grant.
    let (code, verifier) = authorize(&server, id, SCOPE).await;
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
    assert!(!reads(&server, fresh.access_token().secret()).await);
}

/// A refresh request with nothing but the refresh token (`fhirclient`'s default, RFC 6749
/// §6): a public client's token names its client; a confidential client must authenticate.
async fn public_client_refreshes_with_the_refresh_token_alone(backend: Backend) {
    let Some(server) = server_with_alice(backend).await else {
        return;
    };
    let bare = async |refresh: &str| {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .finish();
        server
            .client
            .post(format!("{}/auth/token", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    };
    let phone = add_client(&server, "public");
    let id = phone["client_id"].as_str().unwrap();
    let client = oauth_client(&server, id, None);
    let (code, verifier) = authorize(&server, id, SCOPE).await;
    let first = exchange(&server, &client, &code, verifier.secret(), REDIRECT)
        .await
        .unwrap();
    let first_refresh = first.refresh_token().unwrap().secret().clone();

    let refreshed = expect_json(bare(&first_refresh).await, 200).await;
    assert_eq!(refreshed["token_type"], "Bearer");
    assert_eq!(refreshed["scope"], SCOPE);
    assert_eq!(refreshed["patient"], "p1");
    let access = refreshed["access_token"].as_str().unwrap();
    assert_ne!(access, first.access_token().secret());
    assert!(reads(&server, access).await);
    let second_refresh = refreshed["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    // Rotation and replay detection hold as with a client_id: the used token presented
    // again revokes the grant.
    let replay = expect_json(bare(&first_refresh).await, 400).await;
    assert_eq!(replay["error"], "invalid_grant", "{replay}");
    assert!(!reads(&server, access).await);
    let after_replay = expect_json(bare(second_refresh).await, 400).await;
    assert_eq!(after_replay["error"], "invalid_grant");
    let unknown = expect_json(bare("no-such-token").await, 400).await;
    assert_eq!(unknown["error"], "invalid_grant");

    // A confidential client's refresh token alone is refused; with its secret it works.
    let chart = add_client(&server, "confidential-symmetric");
    let (chart_id, chart_secret) = (
        chart["client_id"].as_str().unwrap(),
        chart["client_secret"].as_str().unwrap(),
    );
    let chart_client = oauth_client(&server, chart_id, Some(chart_secret));
    let (code, verifier) = authorize(&server, chart_id, SCOPE).await;
    let tokens = exchange(&server, &chart_client, &code, verifier.secret(), REDIRECT)
        .await
        .unwrap();
    let chart_refresh = tokens.refresh_token().unwrap();
    let response = bare(chart_refresh.secret()).await;
    assert_eq!(response.status(), 401);
    let refused = expect_json(response, 401).await;
    assert_eq!(refused["error"], "invalid_client", "{refused}");
    let http = |request| send(&server.client, request);
    let renewed = chart_client
        .exchange_refresh_token(chart_refresh)
        .request_async(&http)
        .await
        .unwrap();
    assert!(reads(&server, renewed.access_token().secret()).await);
}
