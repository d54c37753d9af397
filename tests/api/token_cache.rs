//! The cache of verified tokens never outlives what it caches: a token revoked (by its app at
//! `/auth/revoke`, by disabling its user, by suspending its app) is refused on the very next
//! request, on the replica that revoked it and, on PostgreSQL, on another replica that had it
//! cached; on SQLite also when the command line revokes from another process. A cached token
//! stops at its own expiry.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    a_revoked_token_is_refused_on_the_next_request,
    a_cached_token_stops_at_its_expiry,
);

const SCOPE: &str = "launch/patient openid fhirUser patient/*.rs";

/// A server that needs tokens (started with `extra_args`), with Patient p1, user alice (p1)
/// and a public client.
async fn started(backend: Backend, extra_args: &[&str]) -> Option<(Server, String)> {
    let server = Server::start_secured(backend, extra_args).await?;
    server.import(&[json!({"resourceType": "Patient", "id": "p1"})]);
    server.add_users(&[("alice", "Patient/p1")]);
    let client = server.kiln(&[
        "client",
        "add",
        "--name",
        "Reader",
        "--type",
        "public",
        "--redirect-uri",
        "https://reader.example.com/callback",
        "--scope",
        SCOPE,
    ]);
    let client_id = client["client_id"].as_str().unwrap().to_string();
    Some((server, client_id))
}

/// A token for alice's patient app, minted on the command line.
fn mint(server: &Server, client_id: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "token",
        "create",
        "--client-id",
        client_id,
        "--scope",
        SCOPE,
        "--patient",
        "p1",
        "--user",
        "alice",
    ];
    args.extend_from_slice(extra);
    server.kiln(&args)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn read(server: &Server, token: &str) -> u16 {
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

/// Reads twice (the second answered from the cache) and expects 200.
async fn cached(server: &Server, token: &str) {
    assert_eq!(read(server, token).await, 200);
    assert_eq!(read(server, token).await, 200);
}

/// An approved app registered through `kiln app create`; returns its client id.
fn approved_app(server: &Server) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    let request = json!({
        "audience": "patient",
        "purpose": "Shows patients their records",
        "intended_users": "Patients of the clinic",
        "contact_name": "Ada Lovelace",
        "contact_email": "ada@acme-health.com",
        "name": "Chart Viewer",
        "description": "A chart for patients",
        "app_url": "https://chart.acme-health.com",
        "privacy_url": "https://chart.acme-health.com/privacy",
        "client_type": "public",
        "redirect_uris": ["https://chart.acme-health.com/callback"],
        "launch_url": "https://chart.acme-health.com/launch",
        "refresh_tokens": false,
        "scope_version": "v2",
        "scopes": SCOPE.split(' ').collect::<Vec<_>>(),
        "accepted_terms": true,
    });
    std::fs::write(&path, request.to_string()).unwrap();
    let created = server.kiln(&["app", "create", "--request", &path.display().to_string()]);
    let app_id = created["app_id"].as_str().unwrap().to_string();
    let approved = if created["status"] == "active" {
        created
    } else {
        server.kiln(&["app", "approve", &app_id])
    };
    assert_eq!(approved["status"], "active", "{approved}");
    approved["client_id"].as_str().unwrap().to_string()
}

async fn a_revoked_token_is_refused_on_the_next_request(backend: Backend) {
    let Some((a, client_id)) = started(backend, &[]).await else {
        return;
    };
    // PostgreSQL: a second replica on the same database, which caches what it checks.
    // SQLite is served by one process: the replica is the server itself.
    let second = match backend {
        Backend::Postgres => Some(Server::start_on(a.db.shared(), &[]).await),
        Backend::Sqlite => None,
    };
    let b = second.as_ref().unwrap_or(&a);

    // The app revokes its token on replica A.
    let token = mint(&a, &client_id, &[]);
    let other = mint(&a, &client_id, &[]);
    cached(b, &token).await;
    cached(b, &other).await;
    let revoked = a
        .client
        .post(format!("{}/auth/revoke", a.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&client_id={client_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(read(b, &token).await, 401, "revoked on A, refused on B");
    assert_eq!(read(b, &other).await, 200, "another token stays live");

    // The operator disables the user (another process): every token of theirs stops.
    a.kiln(&["user", "disable", "alice"]);
    assert_eq!(read(b, &other).await, 401, "the user's token after disable");
    a.kiln(&["user", "enable", "alice"]);

    // The operator suspends an app (another process): its tokens stop.
    let app_client = approved_app(&a);
    let app_token = mint(&a, &app_client, &[]);
    cached(b, &app_token).await;
    a.kiln(&["app", "suspend", &app_client, "--reason", "key leaked"]);
    assert_eq!(
        read(b, &app_token).await,
        401,
        "the app's token after suspension"
    );

    // A revocation made on B itself is seen on A, which had cached the token too.
    let last = mint(&a, &client_id, &[]);
    cached(&a, &last).await;
    cached(b, &last).await;
    let revoked = b
        .client
        .post(format!("{}/auth/revoke", b.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={last}&client_id={client_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(read(&a, &last).await, 401, "revoked on B, refused on A");
    // Each revocation was answered once every listening replica had acknowledged it.
    for server in [&a, b] {
        let log = server.log();
        assert!(
            !log.contains("not every replica acknowledged"),
            "a revocation went unacknowledged: {log}"
        );
    }
}

async fn a_cached_token_stops_at_its_expiry(backend: Backend) {
    // A cache that would keep tokens for five minutes.
    let Some((server, client_id)) = started(backend, &["--token-cache-ttl", "300"]).await else {
        return;
    };
    let token = mint(&server, &client_id, &["--lifetime", "2"]);
    cached(&server, &token).await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(read(&server, &token).await, 401, "expired, though cached");
}
