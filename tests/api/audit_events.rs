//! The security events of issue 14 beyond FHIR and OAuth: app lifecycle transitions (admin
//! console, developer portal and `kiln app`, with the request's origin), changes to EHR users
//! and developer accounts (admin console and `kiln user`, in the change's transaction), the
//! operator's set-up commands (`kiln client add`, `kiln launch create`, `kiln keys rotate`,
//! `kiln import`), and developer portal sign-in and sign-out. Events are read straight from
//! the `audit_events` table; the chain and the columns beside it are checked with `kiln
//! audit verify`.

use std::process::Command;

use crate::backend_tests;
use crate::common::audit::{self, Row};
use crate::common::console::{Browser, Reply};
use crate::common::*;

backend_tests!(
    app_transitions_are_recorded_with_their_change,
    user_and_developer_changes_are_recorded,
    developer_portal_sign_in_and_out_are_recorded,
    set_up_commands_are_recorded_without_secrets,
    a_change_is_not_made_when_its_event_cannot_be_written,
    verify_names_a_column_changed_beside_its_event,
    the_sample_data_load_is_recorded_once,
);

const ADMIN_PASSWORD: &str = "root-password-1";
const DEV_PASSWORD: &str = "Correct-Horse-1";

/// Every event in the log, in chain order.
async fn rows(db: &TestDb) -> Vec<Row> {
    audit::rows(&db.url).await
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

/// The event records the request's origin: the caller's address (the source agent's and the
/// user agent's `network`) and the `X-Request-ID` Kiln answered with.
fn assert_origin(row: &Row, reply: &Reply) {
    for agent in &row.body["agent"].as_array().unwrap()[..2] {
        assert_eq!(agent["network"]["address"], "127.0.0.1", "{row:?}");
    }
    let request_id = reply.headers["x-request-id"].to_str().unwrap();
    let entities = row.body["entity"].as_array().unwrap();
    assert!(
        entities
            .iter()
            .any(|entity| entity["type"]["code"] == "XrequestId"
                && entity["what"]["identifier"]["value"] == request_id),
        "{request_id} not in {row:?}"
    );
}

fn assert_cli_agent(row: &Row) {
    let user = row.agent_user.as_deref().unwrap_or_default();
    assert!(user.starts_with("kiln CLI"), "{row:?}");
}

/// The `admin-action` events about `entity`: `count` of them, each by the command line, the
/// first a successful alert naming `entity` first.
async fn cli_actions(db: &TestDb, entity: &str, count: usize) -> Vec<Row> {
    let events = about(db, "admin-action", entity).await;
    assert_eq!(events.len(), count, "{events:?}");
    events.iter().for_each(assert_cli_agent);
    let user = events[0].agent_user.as_deref().unwrap();
    assert_alert(&events[0], "admin-action", "0", user, entity);
    events
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
    assert_origin(approval, &approved);
    assert!(
        events[0].body["agent"][0].get("network").is_none(),
        "the command line has no network origin: {:?}",
        events[0]
    );

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
    // An app saved in the portal: its transition records the developer's request origin.
    let form = developer.get("/developer/apps/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let fields = [("name", "Mine"), ("intent", "save")];
    let saved = developer
        .submit(&form, "/developer/apps/new", &fields)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let actor = format!("developer:{account}");
    let created: Vec<Row> = rows(&server.db)
        .await
        .into_iter()
        .filter(|row| row.subtype.as_deref() == Some("app-lifecycle"))
        .filter(|row| row.agent_user.as_deref() == Some(actor.as_str()))
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(
        description(&created[0]).starts_with("create"),
        "{created:?}"
    );
    assert_origin(&created[0], &saved);
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

async fn set_up_commands_are_recorded_without_secrets(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    // `kiln client add`: about the client, what it may do, never its secret.
    let added = server.kiln(&[
        "client",
        "add",
        "--name",
        "Chart",
        "--type",
        "confidential-symmetric",
        "--redirect-uri",
        "https://chart.example.org/callback",
        "--launch-uri",
        "https://chart.example.org/launch",
        "--scope",
        "launch openid fhirUser user/*.rs",
    ]);
    let client_id = added["client_id"].as_str().unwrap();
    let secret = added["client_secret"].as_str().unwrap();
    let entity = format!("client:{client_id}");
    let events = cli_actions(&server.db, &entity, 1).await;
    let text = description(&events[0]);
    assert!(text.contains("client added"), "{text}");
    assert!(text.contains("confidential-symmetric"), "{text}");

    // `kiln launch create`: about the client, naming the patient, never the launch token.
    let launch = server.kiln(&[
        "launch",
        "create",
        "--client-id",
        client_id,
        "--user",
        "bob",
        "--patient",
        "p1",
    ]);
    let token = launch["launch"].as_str().unwrap();
    let events = cli_actions(&server.db, &entity, 2).await;
    let launched = &events[1];
    assert_eq!(launched.patient.as_deref(), Some("p1"), "{launched:?}");
    let text = description(launched);
    assert!(
        text.contains("EHR launch created: user bob, patient p1"),
        "{text}"
    );

    // `kiln keys rotate`: about the new key.
    let rotated = server.kiln(&["keys", "rotate"]);
    let kid = rotated["kid"].as_str().unwrap();
    let key = format!("key:{kid}");
    let events = cli_actions(&server.db, &key, 1).await;
    assert!(description(&events[0]).contains("signing key rotated"));

    // `kiln import`: about the files, with what was stored (the harness's import of p1
    // and dr1 was recorded the same way).
    let imports: Vec<Row> = rows(&server.db)
        .await
        .into_iter()
        .filter(|row| {
            row.entity
                .as_deref()
                .is_some_and(|e| e.starts_with("import:"))
        })
        .collect();
    assert_eq!(imports.len(), 1, "{imports:?}");
    let import = &imports[0];
    assert_eq!(import.subtype.as_deref(), Some("admin-action"));
    assert_eq!(import.outcome, "0");
    assert_cli_agent(import);
    assert_eq!(
        import.body["entity"][0]["what"]["identifier"]["system"],
        "urn:kiln:import"
    );
    let text = description(import);
    assert!(
        text.contains("2 resources (Patient 1, Practitioner 1)"),
        "{text}"
    );
    assert!(text.contains("0 records failed"), "{text}");

    let all = rows(&server.db).await;
    for row in &all {
        let raw = String::from_utf8_lossy(&row.raw);
        assert!(!raw.contains(secret), "the client secret in {raw}");
        assert!(!raw.contains(token), "the launch token in {raw}");
    }
    assert_chain_verifies(&server, all.len());
}

/// Statements making every append to the log fail (a trigger), and taking that back.
fn refuse_appends(db: &TestDb) -> (Vec<&'static str>, Vec<&'static str>) {
    if db.url.starts_with("sqlite") {
        (
            vec![
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
                 BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
            ],
            vec!["DROP TRIGGER refuse_audit"],
        )
    } else {
        (
            vec![
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$",
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
            ],
            vec![
                "DROP TRIGGER refuse_audit ON audit_events",
                "DROP FUNCTION refuse_audit()",
            ],
        )
    }
}

async fn run_all(db: &TestDb, statements: &[&str]) {
    for statement in statements {
        audit::execute(&db.url, statement).await;
    }
}

/// Runs `kiln …` on the server's database: whether it succeeded.
fn kiln_succeeds(server: &Server, args: &[&str]) -> bool {
    Command::new(kiln_bin())
        .args(args)
        .env("KILN_DATABASE_URL", &server.db.url)
        .env("KILN_BASE_URL", &server.base)
        .output()
        .unwrap()
        .status
        .success()
}

/// The single integer a query answers on the server's database.
async fn number(server: &Server, sql: &str) -> i64 {
    audit::count(&server.db.url, sql).await
}

async fn a_change_is_not_made_when_its_event_cannot_be_written(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    // The developer account to verify, and the console's pages, before appends fail.
    let mut developer = Browser::new(&server);
    let form = developer.get("/developer/signup").await;
    let fields = [
        ("name", "Grace"),
        ("organization", "Acme"),
        ("email", "grace@example.org"),
        ("password", DEV_PASSWORD),
        ("confirm", DEV_PASSWORD),
    ];
    developer.submit(&form, "/developer/signup", &fields).await;
    let account = developer_id(&server).await;
    let mut admin = admin_browser(&server).await;
    let user_page = admin.get("/admin/users/show?username=alice").await;
    let users_page = admin.get("/admin/users").await;
    let developer_page = admin.get(&format!("/admin/developers/{account}")).await;
    let events = rows(&server.db).await.len();

    let (refuse, allow) = refuse_appends(&server.db);
    run_all(&server.db, &refuse).await;
    // The admin console: each change fails with its event, and is not made.
    let disabled = admin
        .act(&user_page, "disable", &[("username", "alice")])
        .await;
    assert!(disabled.status >= 500, "{}", disabled.body);
    let granted = admin
        .act(&user_page, "grant-admin", &[("username", "alice")])
        .await;
    assert!(granted.status >= 500, "{}", granted.body);
    let password = "A-new-password-77";
    let reset = admin
        .act(
            &user_page,
            "password",
            &[("username", "alice"), ("password", password)],
        )
        .await;
    assert!(reset.status >= 500, "{}", reset.body);
    let created = admin
        .submit(
            &users_page,
            "/admin/users",
            &[
                ("username", "carol"),
                ("fhir_user", "Patient/p1"),
                ("password", "Distinct-secret-9"),
            ],
        )
        .await;
    assert!(created.status >= 500, "{}", created.body);
    let verified = admin
        .submit(
            &developer_page,
            &format!("/admin/developers/{account}/verify"),
            &[],
        )
        .await;
    assert!(verified.status >= 500, "{}", verified.body);
    // The command line: each command fails, and changes nothing.
    assert!(!kiln_succeeds(&server, &["user", "disable", "bob"]));
    assert!(!kiln_succeeds(&server, &["user", "remove", "bob"]));
    assert!(!kiln_succeeds(
        &server,
        &[
            "user",
            "add",
            "--username",
            "dave",
            "--password",
            "pw-1",
            "--fhir-user",
            "Patient/p1"
        ],
    ));
    assert!(!kiln_succeeds(
        &server,
        &[
            "client",
            "add",
            "--name",
            "Lost",
            "--type",
            "public",
            "--redirect-uri",
            "https://lost.example.org/cb",
            "--scope",
            "openid",
        ],
    ));
    assert!(!kiln_succeeds(&server, &["keys", "rotate"]));
    run_all(&server.db, &allow).await;

    let user = |name: &str| {
        format!(
            "SELECT COUNT(*) FROM auth_users WHERE username = '{name}' AND disabled = false AND admin = false"
        )
    };
    assert_eq!(number(&server, &user("alice")).await, 1, "alice unchanged");
    assert_eq!(number(&server, &user("bob")).await, 1, "bob unchanged");
    for name in ["carol", "dave"] {
        let sql = format!("SELECT COUNT(*) FROM auth_users WHERE username = '{name}'");
        assert_eq!(number(&server, &sql).await, 0, "{name} not added");
    }
    let unverified = format!(
        "SELECT COUNT(*) FROM developer_accounts WHERE account_id = '{account}' \
         AND verified_at IS NULL"
    );
    assert_eq!(
        number(&server, &unverified).await,
        1,
        "the account stays unverified"
    );
    let lost = "SELECT COUNT(*) FROM auth_clients WHERE name = 'Lost'";
    assert_eq!(number(&server, lost).await, 0, "no client added");
    let keys = "SELECT COUNT(*) FROM auth_signing_keys";
    assert_eq!(number(&server, keys).await, 1, "no key rotated");
    // alice's old password still works: the reset was not made.
    let mut alice = Browser::new(&server);
    let login = alice.get("/admin").await;
    let back = alice
        .post(
            "/auth/login",
            &[
                ("csrf_token", &login.csrf()),
                ("username", "alice"),
                ("password", "pw-1"),
                ("return_to", "/admin"),
            ],
        )
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    // Nothing was appended meanwhile but alice's sign-in; the chain is whole.
    let all = rows(&server.db).await;
    assert_eq!(all.len(), events + 1, "{:?}", &all[events..]);
    assert_chain_verifies(&server, all.len());
}

async fn verify_names_a_column_changed_beside_its_event(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let added = server.kiln(&[
        "client",
        "add",
        "--name",
        "Chart",
        "--type",
        "public",
        "--redirect-uri",
        "https://chart.example.org/callback",
        "--launch-uri",
        "https://chart.example.org/launch",
        "--scope",
        "launch openid fhirUser user/*.rs",
    ]);
    let client_id = added["client_id"].as_str().unwrap();
    server.kiln(&[
        "launch",
        "create",
        "--client-id",
        client_id,
        "--user",
        "bob",
        "--patient",
        "p1",
    ]);
    let all = rows(&server.db).await;
    assert_chain_verifies(&server, all.len());
    let launch = all
        .iter()
        .find(|row| row.patient.as_deref() == Some("p1"))
        .expect("the launch's event names p1");
    let verify = || {
        let output = Command::new(kiln_bin())
            .args(["audit", "verify"])
            .env("KILN_DATABASE_URL", &server.db.url)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let url = &server.db.url;
    // The patient column moved to another patient, the body and hash left alone.
    let seq = launch.seq;
    audit::execute(
        url,
        &format!("UPDATE audit_events SET patient = 'p2' WHERE seq = {seq}"),
    )
    .await;
    let (ok, out) = verify();
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("event seq {seq} (event_id {}", launch.event_id)),
        "{out}"
    );
    assert!(out.contains("column patient was altered"), "{out}");
    assert!(
        out.contains(r#"it holds "p2", its AuditEvent says "p1""#),
        "{out}"
    );
    // Cleared instead: named too.
    audit::execute(
        url,
        &format!("UPDATE audit_events SET patient = NULL WHERE seq = {seq}"),
    )
    .await;
    let (ok, out) = verify();
    assert!(!ok && out.contains("column patient was altered"), "{out}");
    audit::execute(
        url,
        &format!("UPDATE audit_events SET patient = 'p1' WHERE seq = {seq}"),
    )
    .await;
    assert_chain_verifies(&server, all.len());
    // Another row's agent, time and outcome: each named, the first one that differs.
    let first = &all[0];
    for (column, value) in [
        ("agent_user", "'someone else'"),
        ("recorded", "0"),
        ("outcome", "'4'"),
        ("entity", "'user:mallory'"),
        ("action", "'R'"),
    ] {
        let original: String = match column {
            "recorded" => first.recorded.to_string(),
            "agent_user" => format!("'{}'", first.agent_user.as_deref().unwrap()),
            "outcome" => format!("'{}'", first.outcome),
            "entity" => format!("'{}'", first.entity.as_deref().unwrap()),
            _ => format!("'{}'", first.action),
        };
        let set = |value: &str| {
            format!(
                "UPDATE audit_events SET {column} = {value} WHERE seq = {}",
                first.seq
            )
        };
        audit::execute(url, &set(value)).await;
        let (ok, out) = verify();
        assert!(!ok, "{column}: {out}");
        assert!(
            out.contains(&format!("event seq {} ", first.seq)),
            "{column}: {out}"
        );
        assert!(
            out.contains(&format!("column {column} was altered")),
            "{column}: {out}"
        );
        audit::execute(url, &set(&original)).await;
    }
    assert_chain_verifies(&server, all.len());
}

async fn the_sample_data_load_is_recorded_once(backend: Backend) {
    let Some(mut server) = Server::start_with(backend, &["--load-sample-data"]).await else {
        return;
    };
    let loads = async |server: &Server| -> Vec<Row> {
        about(&server.db, "admin-action", "import:bundled sample data").await
    };
    let events = loads(&server).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].outcome, "0", "{events:?}");
    assert_cli_agent(&events[0]);
    let text = description(&events[0]);
    assert!(text.contains("Patient 12"), "{text}");
    assert!(text.contains("0 records failed"), "{text}");
    // A restart finds the sample there: no load, no event.
    server.restart().await;
    assert_eq!(loads(&server).await.len(), 1);
    assert_chain_verifies(&server, rows(&server.db).await.len());
}
