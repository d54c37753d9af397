//! The security events of issue 14 beyond FHIR and OAuth: app lifecycle transitions (admin
//! console and `kiln app`), changes to EHR users and developer accounts (admin console and
//! `kiln user`), and developer portal sign-in and sign-out. Events are read straight from
//! the `audit_events` table; the chain is checked with `kiln audit verify`.

use std::process::Command;

use crate::backend_tests;
use crate::common::console::{Browser, Reply};
use crate::common::*;

backend_tests!(
    app_transitions_are_recorded_with_their_change,
    user_and_developer_changes_are_recorded,
    developer_portal_sign_in_and_out_are_recorded,
);

const ADMIN_PASSWORD: &str = "root-password-1";
const DEV_PASSWORD: &str = "Correct-Horse-1";

/// One `audit_events` row: the columns these tests look at.
#[derive(Debug, Clone)]
struct Row {
    type_code: String,
    subtype: Option<String>,
    outcome: String,
    agent_user: Option<String>,
    agent_client: Option<String>,
    entity: Option<String>,
    body: Value,
}

type Columns = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<u8>,
);

const SELECT: &str = "SELECT type_code, subtype, outcome, agent_user, agent_client, entity, \
                      body FROM audit_events ORDER BY seq";

async fn rows(db: &TestDb) -> Vec<Row> {
    let rows: Vec<Columns> = if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let rows = sqlx::query_as(SELECT).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let rows = sqlx::query_as(SELECT).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    };
    rows.into_iter()
        .map(|row| Row {
            type_code: row.0,
            subtype: row.1,
            outcome: row.2,
            agent_user: row.3,
            agent_client: row.4,
            entity: row.5,
            body: serde_json::from_slice(&row.6).unwrap(),
        })
        .collect()
}

/// The events of `subtype` about `entity`, in chain order.
async fn about(db: &TestDb, subtype: &str, entity: &str) -> Vec<Row> {
    rows(db)
        .await
        .into_iter()
        .filter(|row| row.subtype.as_deref() == Some(subtype))
        .filter(|row| row.entity.as_deref() == Some(entity))
        .collect()
}

/// The number of `app_events` rows of an app.
async fn app_history(db: &TestDb, app_id: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM app_events WHERE app_id = '{app_id}'"
    ));
    if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
    }
}

fn description(row: &Row) -> &str {
    row.body["outcomeDesc"].as_str().unwrap_or_default()
}

/// A Kiln security alert about `entity` with `outcome`, by `user`.
fn assert_alert(row: &Row, subtype: &str, outcome: &str, user: &str, entity: &str) {
    assert_eq!(row.type_code, "110113", "{row:?}");
    assert_eq!(row.subtype.as_deref(), Some(subtype), "{row:?}");
    assert_eq!(row.outcome, outcome, "{row:?}");
    assert_eq!(row.agent_user.as_deref(), Some(user), "{row:?}");
    assert_eq!(row.body["subtype"][0]["system"], "urn:kiln:audit-subtype");
    let (kind, id) = entity.split_once(':').unwrap();
    let what = &row.body["entity"][0]["what"]["identifier"];
    assert_eq!(what["system"], format!("urn:kiln:{kind}"), "{row:?}");
    assert_eq!(what["value"], id, "{row:?}");
}

fn assert_cli_agent(row: &Row) {
    let user = row.agent_user.as_deref().unwrap_or_default();
    assert!(user.starts_with("kiln CLI"), "{row:?}");
}

/// `kiln audit verify` on the server's database: it passes and counts every event.
fn assert_chain_verifies(server: &Server, events: usize) {
    let output = Command::new(kiln_bin())
        .args(["audit", "verify"])
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(&format!("audit log intact: {events} events")),
        "{stdout}"
    );
}

/// A server with Patient p1, the admin `root` and the users alice and bob.
async fn server(backend: Backend) -> Option<Server> {
    let server = Server::start_secured(backend, &[]).await?;
    server.import(&[
        json!({"resourceType": "Patient", "id": "p1"}),
        json!({"resourceType": "Practitioner", "id": "dr1"}),
    ]);
    server.add_admin("root", ADMIN_PASSWORD, "Practitioner/dr1");
    server.add_users(&[("alice", "Patient/p1"), ("bob", "Practitioner/dr1")]);
    Some(server)
}

async fn admin_browser(server: &Server) -> Browser {
    let mut admin = Browser::new(server);
    let signed_in = admin.sign_in("root", ADMIN_PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    admin
}

/// Registers a public patient app with `kiln app create`; its app id.
fn create_app(server: &Server) -> String {
    let request = json!({
        "audience": "patient",
        "purpose": "Shows patients their records",
        "intended_users": "Patients",
        "contact_name": "Ada",
        "contact_email": "ada@acme-health.com",
        "name": "Chart",
        "description": "A chart",
        "app_url": "https://chart.acme-health.com",
        "privacy_url": "https://chart.acme-health.com/privacy",
        "client_type": "public",
        "redirect_uris": ["https://chart.acme-health.com/callback"],
        "launch_url": "https://chart.acme-health.com/launch",
        "scope_version": "v2",
        "scopes": ["launch/patient", "openid", "fhirUser", "patient/*.rs"],
        "accepted_terms": true,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    std::fs::write(&path, request.to_string()).unwrap();
    let created = server.kiln(&["app", "create", "--request", &path.display().to_string()]);
    assert_eq!(created["status"], "pending_review", "{created}");
    created["app_id"].as_str().unwrap().to_string()
}

/// Posts an app action from the app's console page.
async fn decide(admin: &mut Browser, app_id: &str, action: &str, reason: &str) -> Reply {
    let page = admin.get(&format!("/admin/apps/{app_id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    admin
        .submit(
            &page,
            &format!("/admin/apps/{app_id}/{action}"),
            &[("reason", reason)],
        )
        .await
}

async fn app_transitions_are_recorded_with_their_change(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    // Created and submitted at the command line.
    let app_id = create_app(&server);
    let entity = format!("app:{app_id}");
    let events = about(&server.db, "app-lifecycle", &entity).await;
    assert_eq!(events.len(), 2, "{events:?}");
    for (event, action) in events.iter().zip(["create", "submit"]) {
        assert_alert(
            event,
            "app-lifecycle",
            "0",
            event.agent_user.as_deref().unwrap(),
            &entity,
        );
        assert_cli_agent(event);
        assert!(description(event).starts_with(action), "{event:?}");
    }

    // Approved in the console, by the admin.
    let mut admin = admin_browser(&server).await;
    let approved = decide(&mut admin, &app_id, "approve", "Looks right").await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    let events = about(&server.db, "app-lifecycle", &entity).await;
    assert_eq!(events.len(), 3, "{events:?}");
    let approval = &events[2];
    assert_alert(approval, "app-lifecycle", "0", "root", &entity);
    let text = description(approval);
    assert!(text.contains("approve"), "{text}");
    assert!(text.contains("pending_review -> active"), "{text}");
    assert!(text.contains("reason: Looks right"), "{text}");
    assert_eq!(approval.body["action"], "E");
    assert_eq!(approval.body["type"]["display"], "Security Alert");

    // Suspended at the command line.
    let suspended = server.kiln(&["app", "suspend", &app_id, "--reason", "Abuse"]);
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    let events = about(&server.db, "app-lifecycle", &entity).await;
    assert_eq!(events.len(), 4, "{events:?}");
    assert_alert(
        &events[3],
        "app-lifecycle",
        "0",
        events[3].agent_user.as_deref().unwrap(),
        &entity,
    );
    assert_cli_agent(&events[3]);
    assert!(description(&events[3]).contains("active -> suspended"));

    // Reactivated by many admins at once: one wins the compare-and-set, the others are
    // refused, and only the winner's transition is recorded.
    let mut admins = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..6 {
        let mut other = admin_browser(&server).await;
        let page = other.get(&format!("/admin/apps/{app_id}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        admins.push(other);
        pages.push(page);
    }
    let path = format!("/admin/apps/{app_id}/reactivate");
    let racing = admins
        .iter_mut()
        .zip(&pages)
        .map(|(other, page)| other.submit(page, &path, &[("reason", "Fixed")]));
    let statuses: Vec<u16> = futures_util::future::join_all(racing)
        .await
        .iter()
        .map(|reply| reply.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == 303).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [303, 400, 409].contains(s)),
        "{statuses:?}"
    );
    let events = about(&server.db, "app-lifecycle", &entity).await;
    assert_eq!(events.len(), 5, "{events:?}");
    assert_alert(&events[4], "app-lifecycle", "0", "root", &entity);
    assert!(description(&events[4]).contains("suspended -> active"));
    // One audit event per history row, none for a refused or lost transition.
    assert_eq!(app_history(&server.db, &app_id).await, 5);

    let all = rows(&server.db).await;
    assert!(
        all.iter()
            .all(|row| !row.body.to_string().contains(ADMIN_PASSWORD)),
        "no secret in the log"
    );
    assert_chain_verifies(&server, all.len());
}

async fn user_and_developer_changes_are_recorded(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    // `kiln user add` (the harness's users) recorded by the CLI.
    let added = about(&server.db, "user-changed", "user:alice").await;
    assert_eq!(added.len(), 1, "{added:?}");
    assert_alert(
        &added[0],
        "user-changed",
        "0",
        added[0].agent_user.as_deref().unwrap(),
        "user:alice",
    );
    assert_cli_agent(&added[0]);

    // Disabled in the console.
    let mut admin = admin_browser(&server).await;
    let page = admin.get("/admin/users/show?username=alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = admin.act(&page, "disable", &[("username", "alice")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let events = about(&server.db, "user-changed", "user:alice").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_alert(&events[1], "user-changed", "0", "root", "user:alice");
    assert!(description(&events[1]).contains("disable"), "{events:?}");

    // A password reset: what was done, never the password.
    let password = "A-new-password-77";
    let done = admin
        .act(
            &page,
            "password",
            &[("username", "bob"), ("password", password)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let events = about(&server.db, "user-changed", "user:bob").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_alert(&events[1], "user-changed", "0", "root", "user:bob");
    assert!(!events[1].body.to_string().contains(password));

    // Refused (one's own account): recorded as a failure.
    let refused = admin.act(&page, "disable", &[("username", "root")]).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let events = about(&server.db, "user-changed", "user:root").await;
    let last = events.last().unwrap();
    assert_alert(last, "user-changed", "4", "root", "user:root");
    assert!(
        description(last).contains("cannot disable your own"),
        "{last:?}"
    );

    // Disabled at the command line.
    let disabled = server.kiln(&["user", "disable", "bob"]);
    assert_eq!(disabled["disabled"], true);
    let events = about(&server.db, "user-changed", "user:bob").await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_cli_agent(&events[2]);
    assert!(description(&events[2]).contains("user disabled"));

    // A developer account verified by hand.
    let mut developer = Browser::new(&server);
    let form = developer.get("/developer/signup").await;
    let fields = [
        ("name", "Grace"),
        ("organization", "Acme"),
        ("email", "grace@example.org"),
        ("password", DEV_PASSWORD),
        ("confirm", DEV_PASSWORD),
    ];
    let signed_up = developer.submit(&form, "/developer/signup", &fields).await;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    let account = developer_id(&server).await;
    let page = admin.get(&format!("/admin/developers/{account}")).await;
    let verified = admin
        .submit(&page, &format!("/admin/developers/{account}/verify"), &[])
        .await;
    assert_eq!(verified.status, 303, "{}", verified.body);
    let entity = format!("developer:{account}");
    let events = about(&server.db, "admin-action", &entity).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_alert(&events[0], "admin-action", "0", "root", &entity);
    assert!(description(&events[0]).contains("verify"));

    assert_chain_verifies(&server, rows(&server.db).await.len());
}

/// The only developer account's id.
async fn developer_id(server: &Server) -> String {
    const SQL: &str = "SELECT account_id FROM developer_accounts";
    if server.db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        sqlx::query_scalar(SQL).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        sqlx::query_scalar(SQL).fetch_one(&pool).await.unwrap()
    }
}

async fn developer_portal_sign_in_and_out_are_recorded(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let email = "grace@example.org";
    let mut developer = Browser::new(&server);
    let sign_in = async |developer: &mut Browser, email: &str, password: &str| {
        let form = developer.get("/developer/signin").await;
        let fields = [("email", email), ("password", password)];
        developer.submit(&form, "/developer/signin", &fields).await
    };
    let logins = async || -> Vec<Row> {
        rows(&server.db)
            .await
            .into_iter()
            .filter(|row| row.type_code == "110114")
            .filter(|row| row.agent_user.as_deref() == Some(email))
            .collect()
    };

    // No such account: a failed login, by the address typed.
    let refused = sign_in(&mut developer, email, "Wrong-password-1").await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let events = logins().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].subtype.as_deref(), Some("110122"));
    assert_eq!(events[0].outcome, "4");
    assert!(events[0].agent_client.is_none());
    assert!(!events[0].body.to_string().contains("Wrong-password-1"));

    // Signed up, not verified: refused, about the account.
    let form = developer.get("/developer/signup").await;
    let fields = [
        ("name", "Grace"),
        ("organization", "Acme"),
        ("email", email),
        ("password", DEV_PASSWORD),
        ("confirm", DEV_PASSWORD),
    ];
    developer.submit(&form, "/developer/signup", &fields).await;
    let account = developer_id(&server).await;
    let refused = sign_in(&mut developer, email, DEV_PASSWORD).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let events = logins().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].outcome, "4");
    assert_eq!(events[1].entity, Some(format!("developer:{account}")));

    // Verified by hand, signed in and out.
    let mut admin = admin_browser(&server).await;
    let page = admin.get(&format!("/admin/developers/{account}")).await;
    admin
        .submit(&page, &format!("/admin/developers/{account}/verify"), &[])
        .await;
    let signed_in = sign_in(&mut developer, email, DEV_PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let home = developer.get("/developer").await;
    assert_eq!(home.status, 200, "{}", home.body);
    let signed_out = developer.submit(&home, "/developer/signout", &[]).await;
    assert_eq!(signed_out.status, 303, "{}", signed_out.body);
    let events = logins().await;
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[2].subtype.as_deref(), Some("110122"));
    assert_eq!(events[2].outcome, "0");
    assert_eq!(events[2].entity, Some(format!("developer:{account}")));
    assert_eq!(events[3].subtype.as_deref(), Some("110123"));
    assert_eq!(events[3].outcome, "0");
    assert_eq!(events[3].entity, Some(format!("developer:{account}")));
}
