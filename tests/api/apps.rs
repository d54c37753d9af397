//! The app lifecycle through `kiln app …` against a live server: every status transition,
//! credentials shown once, suspension stopping tokens at once, secret rotation with an
//! overlap, approval policies, and the JWKS check at submission.

use jsonwebtoken::jwk::KeyAlgorithm;
use oauth2::TokenResponse;

use crate::backend_tests;
use crate::common::backend::*;
use crate::common::smart::{self, Answers};
use crate::common::*;

backend_tests!(
    reviewed_app_from_request_to_retirement,
    secret_rotation_keeps_the_old_secret_until_its_expiry,
    policies_and_production_rules,
    jwks_url_checked_at_submission
);

const REDIRECT: &str = "https://chart.acme-health.com/callback";
const SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs";

/// A complete request for a patient app.
fn patient_request(client_type: &str) -> Value {
    json!({
        "audience": "patient",
        "purpose": "Shows patients their records",
        "intended_users": "Patients of the clinic",
        "contact_name": "Ada Lovelace",
        "contact_email": "ada@acme-health.com",
        "name": "Chart Viewer",
        "description": "A chart for patients",
        "app_url": "https://chart.acme-health.com",
        "privacy_url": "https://chart.acme-health.com/privacy",
        "client_type": client_type,
        "redirect_uris": [REDIRECT],
        "launch_url": "https://chart.acme-health.com/launch",
        "refresh_tokens": true,
        "scope_version": "v2",
        "scopes": SCOPE.split(' ').collect::<Vec<_>>(),
        "accepted_terms": true,
    })
}

/// A backend service with its JWK Set at `jwks_uri`.
fn backend_request(jwks_uri: &str) -> Value {
    json!({
        "audience": "backend",
        "purpose": "Nightly export",
        "intended_users": "The data team",
        "contact_name": "Grace",
        "contact_email": "grace@acme-health.com",
        "name": "Exporter",
        "description": "Exports data",
        "client_type": "confidential-asymmetric",
        "jwks_uri": jwks_uri,
        "scope_version": "v2",
        "scopes": ["system/*.rs"],
        "accepted_terms": true,
    })
}

/// Writes a request file (kept alive by the returned directory).
fn request_file(request: &Value) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    std::fs::write(&path, request.to_string()).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

fn create(server: &Server, request: &Value) -> Value {
    let (_dir, path) = request_file(request);
    server.kiln(&["app", "create", "--request", &path])
}

/// Runs a `kiln` command that must fail; returns what it printed on stderr.
fn kiln_fails(server: &Server, args: &[&str]) -> String {
    let output = std::process::Command::new(kiln_bin())
        .args(args)
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !output.status.success(),
        "kiln {args:?} succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

fn create_fails(server: &Server, request: &Value) -> String {
    let (_dir, path) = request_file(request);
    kiln_fails(server, &["app", "create", "--request", &path])
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
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

async fn reviewed_app_from_request_to_retirement(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    server.import(&[json!({"resourceType": "Patient", "id": "p1"})]);
    server.add_users(&[("alice", "Patient/p1")]);

    // Submitted for review: no credentials yet.
    let created = create(&server, &patient_request("confidential-symmetric"));
    assert_eq!(created["status"], "pending_review", "{created}");
    assert!(created.get("client_id").is_none());
    let app_id = text(&created["app_id"]).to_string();
    let queue = server.kiln(&["app", "list", "--status", "pending_review", "--json"]);
    assert_eq!(queue["app_id"], app_id.as_str());
    assert_eq!(queue["name"], "Chart Viewer");

    // Reasons are required; invalid transitions are refused.
    for action in ["reject", "request-changes", "suspend"] {
        let error = kiln_fails(&server, &["app", action, &app_id]);
        assert!(error.contains("reason is required"), "{action}: {error}");
    }
    let error = kiln_fails(&server, &["app", "suspend", &app_id, "--reason", "x"]);
    assert!(
        error.contains("an app in PENDING REVIEW cannot be suspended"),
        "{error}"
    );
    kiln_fails(&server, &["app", "reactivate", &app_id]);

    // Changes requested, then resubmitted, then approved: the secret is shown once.
    let sent_back = server.kiln(&[
        "app",
        "request-changes",
        &app_id,
        "--reason",
        "add a terms URL",
    ]);
    assert_eq!(sent_back["status"], "changes_requested");
    kiln_fails(&server, &["app", "approve", &app_id]);
    let mut edited = patient_request("confidential-symmetric");
    edited["terms_url"] = json!("https://chart.acme-health.com/terms");
    let (_dir, path) = request_file(&edited);
    let resubmitted = server.kiln(&["app", "update", &app_id, "--request", &path]);
    assert_eq!(resubmitted["status"], "pending_review", "{resubmitted}");
    let approved = server.kiln(&["app", "approve", &app_id]);
    assert_eq!(approved["status"], "active");
    let client_id = text(&approved["client_id"]).to_string();
    let secret = text(&approved["client_secret"]).to_string();
    kiln_fails(&server, &["app", "approve", &app_id]);
    let shown = server.kiln(&["app", "show", &client_id]);
    assert_eq!(shown["app_id"], app_id.as_str());
    assert_eq!(shown["credentials"]["client_id"], client_id.as_str());
    assert!(
        !shown.to_string().contains(&secret),
        "the secret is shown once"
    );
    let actions: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| text(&e["action"]))
        .collect();
    assert_eq!(
        actions,
        [
            "create",
            "submit",
            "request_changes",
            "save",
            "submit",
            "approve"
        ]
    );
    assert_eq!(shown["history"][2]["reason"], "add a terms URL");
    assert_eq!(shown["history"][2]["actor"], "operator");
    assert_eq!(shown["active_revision"], 2);

    // The approved app gets a token and reads data.
    let app = smart::App {
        client_id: client_id.clone(),
        secret: Some(secret.clone()),
        redirect_uri: REDIRECT.into(),
    };
    let token = smart::authorize(&server, &app, SCOPE, None, &Answers::allow("alice", "pw-1"))
        .await
        .unwrap();
    let access = smart::access_token(&token);
    assert_eq!(fhir_status(&server, &access).await, 200);
    let activity = server.kiln(&["app", "show", &app_id])["activity"].clone();
    assert_eq!(activity["tokens_issued"], 1);
    assert_eq!(activity["connected_patients"], 1);

    // Editing the active app: the new revision waits while the approved one keeps working.
    let mut renamed = edited.clone();
    renamed["name"] = json!("Chart Viewer 2");
    let (_dir2, path) = request_file(&renamed);
    let pending = server.kiln(&["app", "update", &app_id, "--request", &path]);
    assert_eq!(pending["status"], "active");
    assert_eq!(pending["awaiting_review"], true);
    assert_eq!(fhir_status(&server, &access).await, 200);
    let reapproved = server.kiln(&["app", "approve", &app_id]);
    assert_eq!(reapproved["client_id"], client_id.as_str());
    assert!(
        reapproved.get("client_secret").is_none(),
        "the secret stays"
    );
    assert_eq!(
        server.kiln(&["client", "show", &client_id])["name"],
        "Chart Viewer 2"
    );
    assert!(secret_works(&server, &client_id, &secret).await);

    // Suspension stops the token at once, and the client everywhere.
    let suspended = server.kiln(&["app", "suspend", &client_id, "--reason", "abuse"]);
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(fhir_status(&server, &access).await, 401);
    assert!(!secret_works(&server, &client_id, &secret).await);
    let refresh = token.refresh_token().map(|t| t.secret().clone()).unwrap();
    assert!(smart::refresh(&server, &app, &refresh).await.is_err());
    let authorize = server
        .client
        .get(format!(
            "{}/auth/authorize?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), 400);
    assert!(authorize.text().await.unwrap().contains("suspended"));

    // Reactivation: the client works again, the old token stays revoked.
    let reactivated = server.kiln(&["app", "reactivate", &app_id]);
    assert_eq!(reactivated["status"], "active");
    assert!(secret_works(&server, &client_id, &secret).await);
    assert_eq!(fhir_status(&server, &access).await, 401);

    // An app's client is retired with its app, not removed behind its back.
    let error = kiln_fails(&server, &["client", "remove", &client_id]);
    assert!(
        error.contains(&format!("kiln app retire {app_id}")),
        "{error}"
    );
    assert!(secret_works(&server, &client_id, &secret).await);

    // Retired for good.
    assert_eq!(
        server.kiln(&["app", "retire", &app_id])["status"],
        "retired"
    );
    let error = kiln_fails(&server, &["app", "reactivate", &app_id]);
    assert!(
        error.contains("an app in RETIRED cannot be reactivated"),
        "{error}"
    );
    assert!(!secret_works(&server, &client_id, &secret).await);

    // A rejected app stays rejected.
    let other = create(&server, &patient_request("public"));
    let other_id = text(&other["app_id"]);
    assert_eq!(
        server.kiln(&["app", "reject", other_id, "--reason", "duplicate"])["status"],
        "rejected"
    );
    let error = kiln_fails(&server, &["app", "suspend", other_id, "--reason", "x"]);
    assert!(
        error.contains("an app in REJECTED cannot be suspended"),
        "{error}"
    );
    kiln_fails(&server, &["app", "submit", other_id]);
    let rejected = server.kiln(&["app", "list", "--status", "rejected", "--json"]);
    assert_eq!(rejected["app_id"], other_id);
}

async fn secret_rotation_keeps_the_old_secret_until_its_expiry(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let created = create(&server, &patient_request("confidential-symmetric"));
    let app_id = text(&created["app_id"]).to_string();
    let approved = server.kiln(&["app", "approve", &app_id]);
    let client_id = text(&approved["client_id"]).to_string();
    let old = text(&approved["client_secret"]).to_string();
    assert!(secret_works(&server, &client_id, &old).await);

    let rotated = server.kiln(&["app", "rotate-secret", &app_id, "--keep-old-for", "3"]);
    let new = text(&rotated["client_secret"]).to_string();
    assert_ne!(new, old);
    assert!(secret_works(&server, &client_id, &new).await);
    assert!(secret_works(&server, &client_id, &old).await, "overlap");
    assert!(!secret_works(&server, &client_id, "not-the-secret").await);
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(!secret_works(&server, &client_id, &old).await, "expired");
    assert!(secret_works(&server, &client_id, &new).await);

    // At once: --keep-old-for 0. Public apps have no secret.
    let again = server.kiln(&["app", "rotate-secret", &client_id, "--keep-old-for", "0"]);
    assert!(!secret_works(&server, &client_id, &new).await);
    assert!(secret_works(&server, &client_id, text(&again["client_secret"])).await);
    let public = create(&server, &patient_request("public"));
    let public_id = text(&public["app_id"]);
    server.kiln(&["app", "approve", public_id]);
    kiln_fails(
        &server,
        &["app", "rotate-secret", public_id, "--keep-old-for", "0"],
    );
}

async fn policies_and_production_rules(backend: Backend) {
    // Production: loopback and placeholder redirect URIs are refused, mixed scopes too.
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    let mut loopback = patient_request("public");
    loopback["redirect_uris"] = json!(["http://127.0.0.1:8000/callback"]);
    let error = create_fails(&server, &loopback);
    assert!(error.contains("redirect_uris"), "{error}");
    let mut placeholder = patient_request("public");
    placeholder["redirect_uris"] = json!(["https://app.example.com/callback"]);
    assert!(create_fails(&server, &placeholder).contains("placeholder"));
    let mut mixed = patient_request("public");
    mixed["scopes"] = json!(["patient/Observation.rs", "patient/Condition.read"]);
    assert!(create_fails(&server, &mixed).contains("mixed"));
    let mut system = patient_request("public");
    system["scopes"] = json!(["system/Observation.rs"]);
    assert!(create_fails(&server, &system).contains("patient/"));
    let listed = std::process::Command::new(kiln_bin())
        .args(["app", "list", "--json"])
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(listed.status.success());
    assert!(listed.stdout.is_empty(), "refused requests store nothing");
    drop(server);

    // patient-read: read-only patient apps are approved, others wait.
    let Some(server) = Server::start_secured(backend, &["--approval-policy", "patient-read"]).await
    else {
        return;
    };
    let reader = create(&server, &patient_request("public"));
    assert_eq!(reader["status"], "active", "{reader}");
    assert!(reader["client_id"].is_string());
    let mut writer = patient_request("public");
    writer["scopes"] = json!(["launch/patient", "patient/Observation.cruds"]);
    assert_eq!(create(&server, &writer)["status"], "pending_review");
    let history = server.kiln(&["app", "show", text(&reader["app_id"])])["history"].clone();
    assert_eq!(history[2]["action"], "approve");
    assert_eq!(history[2]["actor"], "policy");
    drop(server);

    // Sandbox: everything is approved, loopback redirect URIs are allowed.
    let Some(server) = Server::start_secured(backend, &["--sandbox"]).await else {
        return;
    };
    let sandboxed = create(&server, &loopback);
    assert_eq!(sandboxed["status"], "active", "{sandboxed}");
}

async fn jwks_url_checked_at_submission(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &["--sandbox"]).await else {
        return;
    };
    server.import(&[json!({"resourceType": "Patient", "id": "p1"})]);

    // A good RS384 key: approved (sandbox), and the service gets a token.
    let key = AppKey::rs384("rsa-1");
    let jwks = JwksServer::start(vec![key.jwk.clone()]).await;
    let approved = create(&server, &backend_request(&jwks.url));
    assert_eq!(approved["status"], "active", "{approved}");
    let client_id = text(&approved["client_id"]).to_string();
    let shown = server.kiln(&["app", "show", &client_id]);
    assert_eq!(
        shown["revisions"][0]["checks"]["jwks"]["usable_keys"],
        json!(["rsa-1 (RS384)"])
    );
    let service = |assertion: String| {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "client_credentials"),
                ("scope", "system/*.rs"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ])
            .finish();
        server
            .client
            .post(format!("{}/auth/token", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let response = service(key.sign(|_| {}, &claims(&server, &client_id)))
        .await
        .unwrap();
    let token = expect_json(response, 200).await;
    let access = text(&token["access_token"]).to_string();
    assert_eq!(fhir_status(&server, &access).await, 200);
    server.kiln(&["app", "suspend", &client_id, "--reason", "key leaked"]);
    assert_eq!(fhir_status(&server, &access).await, 401);
    let refused = service(key.sign(|_| {}, &claims(&server, &client_id)))
        .await
        .unwrap();
    assert_eq!(expect_json(refused, 401).await["error"], "invalid_client");

    // No suitable key (RS256 only): refused at submission.
    let mut rs256 = AppKey::rs384("rsa-2").jwk;
    rs256.common.key_algorithm = Some(KeyAlgorithm::RS256);
    let unsuitable = JwksServer::start(vec![rs256]).await;
    let error = create_fails(&server, &backend_request(&unsuitable.url));
    assert!(
        error.contains("jwks_uri") && error.contains("RS384"),
        "{error}"
    );

    // Unreachable.
    let nowhere = format!("http://127.0.0.1:{}/jwks.json", free_port());
    let error = create_fails(&server, &backend_request(&nowhere));
    assert!(
        error.contains("jwks_uri") && error.contains("fetching"),
        "{error}"
    );
}
