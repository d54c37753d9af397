//! RFC 7591 dynamic client registration and RFC 7592 management against a live server: off
//! unless enabled, advertised when on, registrations following the approval policy (a
//! production client waits in PENDING REVIEW and is refused until approved), secrets shown
//! once, key-pair clients, every refusal as an OAuth error, and the registration access
//! token reading, replacing and deleting the registration.

use crate::backend_tests;
use crate::common::backend::*;
use crate::common::smart::{self, Answers};
use crate::common::*;

backend_tests!(
    off_by_default,
    reviewed_public_client_from_registration_to_deletion,
    confidential_clients_and_approval_policies,
    refused_registrations
);

const REDIRECT: &str = "https://chart.acme-health.com/callback";
const SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs";
const ENABLED: &[&str] = &["--dynamic-registration"];

/// RFC 7591 metadata of a public patient app.
fn public_client() -> Value {
    json!({
        "client_name": "Chart Viewer",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": SCOPE,
        "client_uri": "https://chart.acme-health.com",
        "policy_uri": "https://chart.acme-health.com/privacy",
        "launch_uri": "https://chart.acme-health.com/launch",
        "contacts": ["ada@acme-health.com"],
        "software_id": "chart-viewer",
        "logo_uri": "https://chart.acme-health.com/logo.png",
        "an_extension_kiln_does_not_know": {"x": 1},
    })
}

async fn register(server: &Server, metadata: &Value) -> reqwest::Response {
    server
        .client
        .post(format!("{}/auth/register", server.base))
        .header("content-type", "application/json")
        .body(metadata.to_string())
        .send()
        .await
        .unwrap()
}

/// Registers and expects 201.
async fn registered(server: &Server, metadata: &Value) -> Value {
    let response = register(server, metadata).await;
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "registration answers are not cached"
    );
    expect_json(response, 201).await
}

/// Expects an OAuth error with this status and code; returns its description.
async fn oauth_error(response: reqwest::Response, status: u16, error: &str) -> String {
    let body = expect_json(response, status).await;
    assert_eq!(body["error"], error, "{body}");
    body["error_description"]
        .as_str()
        .unwrap_or_else(|| panic!("no description: {body}"))
        .to_string()
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

/// A request to the client configuration endpoint with a bearer token.
fn manage(
    server: &Server,
    method: reqwest::Method,
    uri: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = server.client.request(method, uri);
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

async fn put(server: &Server, uri: &str, token: &str, metadata: &Value) -> reqwest::Response {
    manage(server, reqwest::Method::PUT, uri, Some(token))
        .header("content-type", "application/json")
        .body(metadata.to_string())
        .send()
        .await
        .unwrap()
}

async fn fhir_status(server: &Server, token: &str) -> u16 {
    server
        .client
        .get(server.url("Patient/p1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Whether `client_id`/`secret` authenticate at the introspection endpoint.
async fn secret_works(server: &Server, client_id: &str, secret: &str) -> bool {
    let response = server
        .client
        .post(format!("{}/auth/introspect", server.base))
        .basic_auth(client_id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=unknown")
        .send()
        .await
        .unwrap();
    match response.status().as_u16() {
        200 => true,
        401 => false,
        other => panic!("introspection answered {other}"),
    }
}

/// What `kiln app list --json` prints (one app per line).
fn app_list(server: &Server) -> Vec<Value> {
    let output = std::process::Command::new(kiln_bin())
        .args(["app", "list", "--json"])
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn discovery(server: &Server) -> (Value, Value) {
    let smart = expect_json(
        server
            .client
            .get(format!("{}/.well-known/smart-configuration", server.fhir))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let openid = expect_json(
        server
            .client
            .get(format!("{}/.well-known/openid-configuration", server.fhir))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    (smart, openid)
}

async fn off_by_default(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let description =
        oauth_error(register(&server, &public_client()).await, 404, "not_found").await;
    assert!(description.contains("not enabled"), "{description}");
    let read = manage(
        &server,
        reqwest::Method::GET,
        &format!("{}/auth/register/anything", server.base),
        Some("token"),
    )
    .send()
    .await
    .unwrap();
    oauth_error(read, 404, "not_found").await;
    let (smart, openid) = discovery(&server).await;
    assert!(smart.get("registration_endpoint").is_none(), "{smart}");
    assert!(openid.get("registration_endpoint").is_none(), "{openid}");
    assert!(app_list(&server).is_empty());
}

async fn reviewed_public_client_from_registration_to_deletion(backend: Backend) {
    let Some(server) = Server::start_secured(backend, ENABLED).await else {
        return;
    };
    server.import(&[json!({"resourceType": "Patient", "id": "p1"})]);
    server.add_users(&[("alice", "Patient/p1")]);
    let endpoint = format!("{}/auth/register", server.base);
    let (smart, openid) = discovery(&server).await;
    assert_eq!(smart["registration_endpoint"], endpoint.as_str());
    assert_eq!(openid["registration_endpoint"], endpoint.as_str());

    // Registered on a production deployment: a client id at once, but waiting for review.
    let client = registered(&server, &public_client()).await;
    let client_id = text(&client["client_id"]).to_string();
    let token = text(&client["registration_access_token"]).to_string();
    let uri = text(&client["registration_client_uri"]).to_string();
    assert_eq!(uri, format!("{endpoint}/{client_id}"));
    assert!(client["client_id_issued_at"].is_i64());
    assert!(client.get("client_secret").is_none(), "{client}");
    assert_eq!(client["kiln_status"], "pending_review");
    assert_eq!(client["client_name"], "Chart Viewer");
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert_eq!(client["redirect_uris"], json!([REDIRECT]));
    assert_eq!(client["scope"], SCOPE);
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        client["policy_uri"],
        "https://chart.acme-health.com/privacy"
    );
    assert!(client.get("an_extension_kiln_does_not_know").is_none());
    assert!(client.get("software_id").is_none());
    let listed = app_list(&server);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "pending_review");
    assert_eq!(listed[0]["origin"], "dynamic");
    assert_eq!(listed[0]["client_id"], client_id.as_str());
    let shown = server.kiln(&["app", "show", &client_id]);
    assert_eq!(shown["history"][0]["actor"], "client");
    let description = text(&shown["revisions"][0]["request"]["description"]);
    assert!(
        description.contains("software_id: chart-viewer"),
        "{description}"
    );
    assert!(
        !shown.to_string().contains(&token),
        "the token is stored hashed"
    );

    // Refused until approved, saying why.
    let exchange = server
        .client
        .post(format!("{}/auth/token", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&code=abc&code_verifier={}&redirect_uri={REDIRECT}&client_id={client_id}",
            "v".repeat(43)
        ))
        .send()
        .await
        .unwrap();
    let why = oauth_error(exchange, 401, "invalid_client").await;
    assert_eq!(why, "this client is awaiting review");
    let app = smart::App {
        client_id: client_id.clone(),
        secret: None,
        redirect_uri: REDIRECT.into(),
    };
    let refused = smart::authorize(&server, &app, SCOPE, None, &Answers::allow("alice", "pw-1"))
        .await
        .unwrap_err();
    assert!(refused.contains("awaiting review"), "{refused}");

    // RFC 7592 read, with the token only.
    let read = manage(&server, reqwest::Method::GET, &uri, Some(&token))
        .send()
        .await
        .unwrap();
    let read = expect_json(read, 200).await;
    assert_eq!(read["client_id"], client_id.as_str());
    assert_eq!(read["client_name"], "Chart Viewer");
    assert_eq!(read["registration_client_uri"], uri.as_str());
    assert_eq!(read["kiln_status"], "pending_review");
    for token in [None, Some("wrong"), Some("")] {
        let response = manage(&server, reqwest::Method::GET, &uri, token)
            .send()
            .await
            .unwrap();
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        oauth_error(response, 401, "invalid_token").await;
    }
    // While waiting for review, the registration cannot be replaced.
    let mut renamed = public_client();
    renamed["client_id"] = json!(client_id);
    renamed["client_name"] = json!("Chart Viewer 2");
    let waiting = put(&server, &uri, &token, &renamed).await;
    let why = oauth_error(waiting, 400, "invalid_client_metadata").await;
    assert!(why.contains("PENDING REVIEW"), "{why}");

    // An admin approves: the full authorization-code flow with PKCE works.
    let approved = server.kiln(&["app", "approve", &client_id]);
    assert_eq!(approved["client_id"], client_id.as_str());
    let tokens = smart::authorize(&server, &app, SCOPE, None, &Answers::allow("alice", "pw-1"))
        .await
        .unwrap();
    let access = smart::access_token(&tokens);
    assert_eq!(fhir_status(&server, &access).await, 200);

    // Another client's token does not reach this registration.
    let other = registered(&server, &public_client()).await;
    let other_token = text(&other["registration_access_token"]);
    let crossed = manage(&server, reqwest::Method::GET, &uri, Some(other_token))
        .send()
        .await
        .unwrap();
    oauth_error(crossed, 401, "invalid_token").await;
    let unknown = manage(
        &server,
        reqwest::Method::GET,
        &format!("{endpoint}/no-such-client"),
        Some(&token),
    )
    .send()
    .await
    .unwrap();
    oauth_error(unknown, 401, "invalid_token").await;

    // PUT replaces the metadata: a new revision, reviewed while the approved one works.
    let mut wrong_id = renamed.clone();
    wrong_id["client_id"] = json!(text(&other["client_id"]));
    let refused = put(&server, &uri, &token, &wrong_id).await;
    oauth_error(refused, 400, "invalid_client_metadata").await;
    let mut new_method = renamed.clone();
    new_method["token_endpoint_auth_method"] = json!("client_secret_basic");
    let refused = put(&server, &uri, &token, &new_method).await;
    let why = oauth_error(refused, 400, "invalid_client_metadata").await;
    assert!(why.contains("token_endpoint_auth_method"), "{why}");
    let updated = expect_json(put(&server, &uri, &token, &renamed).await, 200).await;
    assert_eq!(updated["kiln_status"], "active");
    assert_eq!(updated["kiln_awaiting_review"], true);
    assert_eq!(
        updated["client_name"], "Chart Viewer",
        "the approved revision"
    );
    assert_eq!(fhir_status(&server, &access).await, 200);
    server.kiln(&["app", "approve", &client_id]);
    let read = manage(&server, reqwest::Method::GET, &uri, Some(&token))
        .send()
        .await
        .unwrap();
    let read = expect_json(read, 200).await;
    assert_eq!(read["client_name"], "Chart Viewer 2");
    assert_eq!(read["kiln_awaiting_review"], false);

    // DELETE retires the app: its tokens and the registration token stop.
    let deleted = manage(&server, reqwest::Method::DELETE, &uri, Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(fhir_status(&server, &access).await, 401);
    let gone = manage(&server, reqwest::Method::GET, &uri, Some(&token))
        .send()
        .await
        .unwrap();
    oauth_error(gone, 401, "invalid_token").await;
    assert_eq!(
        server.kiln(&["app", "show", &client_id])["status"],
        "retired"
    );
}

async fn confidential_clients_and_approval_policies(backend: Backend) {
    let Some(server) = Server::start_secured(
        backend,
        &["--dynamic-registration", "--approval-policy", "all"],
    )
    .await
    else {
        return;
    };
    server.import(&[json!({"resourceType": "Patient", "id": "p1"})]);

    // A shared secret: shown once, usable at once under the `all` policy.
    let mut symmetric = public_client();
    symmetric["token_endpoint_auth_method"] = json!("client_secret_post");
    let client = registered(&server, &symmetric).await;
    assert_eq!(client["kiln_status"], "active", "{client}");
    assert_eq!(client["client_secret_expires_at"], 0);
    let client_id = text(&client["client_id"]);
    let secret = text(&client["client_secret"]);
    assert!(secret_works(&server, client_id, secret).await);
    let read = manage(
        &server,
        reqwest::Method::GET,
        text(&client["registration_client_uri"]),
        Some(text(&client["registration_access_token"])),
    )
    .send()
    .await
    .unwrap();
    let read = expect_json(read, 200).await;
    assert!(read.get("client_secret").is_none());
    assert!(!read.to_string().contains(secret));
    assert!(
        !server
            .kiln(&["app", "show", client_id])
            .to_string()
            .contains(secret)
    );

    // A backend service with its public key pasted as a JWK Set.
    let key = AppKey::es384("ec-1");
    let service = registered(
        &server,
        &json!({
            "client_name": "Exporter",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.jwk]},
            "scope": "system/*.rs",
            "contacts": ["grace@acme-health.com"],
        }),
    )
    .await;
    assert_eq!(service["kiln_status"], "active", "{service}");
    assert_eq!(service["jwks"]["keys"][0]["kid"], "ec-1");
    assert_eq!(service["response_types"], json!([]));
    assert!(service.get("client_secret").is_none());
    let service_id = text(&service["client_id"]);
    let assertion = key.sign(|_| {}, &claims(&server, service_id));
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("scope", "system/*.rs"),
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
    let token = expect_json(response, 200).await;
    assert_eq!(
        fhir_status(&server, text(&token["access_token"])).await,
        200
    );
    drop(server);

    // patient-read: a patient read-only client is active at once, a writer waits.
    let Some(server) = Server::start_secured(
        backend,
        &[
            "--dynamic-registration",
            "--approval-policy",
            "patient-read",
        ],
    )
    .await
    else {
        return;
    };
    let reader = registered(&server, &public_client()).await;
    assert_eq!(reader["kiln_status"], "active", "{reader}");
    let mut writer = public_client();
    writer["scope"] = json!("launch/patient patient/Observation.cruds");
    let writer = registered(&server, &writer).await;
    assert_eq!(writer["kiln_status"], "pending_review", "{writer}");
}

async fn refused_registrations(backend: Backend) {
    let Some(server) = Server::start_secured(backend, ENABLED).await else {
        return;
    };
    let with = |member: &str, value: Value| {
        let mut metadata = public_client();
        metadata[member] = value;
        metadata
    };
    for (metadata, error, member) in [
        (
            with("redirect_uris", json!(["http://chart.acme-health.com/cb"])),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            with("redirect_uris", json!(["https://localhost/cb"])),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            with(
                "scope",
                json!("launch/patient patient/Observation.rs patient/Condition.read"),
            ),
            "invalid_client_metadata",
            "scope",
        ),
        (
            with("response_types", json!(["token"])),
            "invalid_client_metadata",
            "response_types",
        ),
        (
            with("redirect_uris", json!([])),
            "invalid_client_metadata",
            "redirect_uris",
        ),
        (
            with("contacts", json!([])),
            "invalid_client_metadata",
            "contacts",
        ),
        (
            with("client_uri", json!("https://example.com")),
            "invalid_client_metadata",
            "client_uri",
        ),
        (
            json!({
                "client_name": "Exporter",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "http://keys.acme-health.com/jwks.json",
                "scope": "system/*.rs",
                "contacts": ["grace@acme-health.com"],
            }),
            "invalid_client_metadata",
            "jwks_uri",
        ),
        (
            with("software_statement", json!("eyJhbGciOiJub25lIn0.e30.")),
            "unapproved_software_statement",
            "",
        ),
    ] {
        let description = oauth_error(register(&server, &metadata).await, 400, error).await;
        assert!(description.contains(member), "{member}: {description}");
    }

    // Malformed JSON, not an object, another content type, too large.
    let send = |content_type: &'static str, body: String| {
        server
            .client
            .post(format!("{}/auth/register", server.base))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let malformed = send("application/json", "{\"client_name\":".into())
        .await
        .unwrap();
    oauth_error(malformed, 400, "invalid_request").await;
    let array = send("application/json", "[]".into()).await.unwrap();
    oauth_error(array, 400, "invalid_request").await;
    let form = send("application/x-www-form-urlencoded", "client_name=x".into())
        .await
        .unwrap();
    let why = oauth_error(form, 400, "invalid_request").await;
    assert!(why.contains("application/json"), "{why}");
    let mut huge = public_client();
    huge["padding"] = json!("x".repeat(200 * 1024));
    let huge = send("application/json", huge.to_string()).await.unwrap();
    oauth_error(huge, 413, "invalid_request").await;
    assert!(
        app_list(&server).is_empty(),
        "refused registrations store nothing"
    );
}
