//! App review in the admin console (`/admin/apps`, `/admin/developers`), driven like a
//! browser: the queue, every field of a request with its checks and warnings, each action
//! with its reason and the lifecycle's refusals, suspension stopping a token at once, the
//! history naming the admin, developers verified by hand and disabled, decisions mailed to the
//! developer (a real SMTP sink), and nobody but an admin with the CSRF token getting in.

use regex::Regex;

use crate::backend_tests;
use crate::common::backend::AppKey;
use crate::common::console::{Browser, Reply, unescape};
use crate::common::smart::{self, Answers};
use crate::common::smtp::SmtpSink;
use crate::common::*;

backend_tests!(
    review_from_queue_to_retirement,
    every_page_and_action_needs_an_admin_and_the_csrf_token,
    developers_verified_by_hand_and_disabled,
    decisions_are_mailed_to_the_developer,
);

const ADMIN_PASSWORD: &str = "root-password-1";
const DEV_PASSWORD: &str = "Correct-Horse-1";
const REDIRECT: &str = "https://chart.acme-health.com/callback";
const NATIVE_REDIRECT: &str = "com.acmehealth.chart:/callback";
const SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs";
const HOSTILE_NAME: &str = "<script>alert('app')</script>";
const HOSTILE_DESCRIPTION: &str = "\"><img src=x onerror=alert(1)>";
const HOSTILE_REASON: &str = "<b>Add</b> a terms URL & <i>retry</i>";
const HOSTILE_DEVELOPER: &str = "<script>alert('dev')</script>";

/// A complete request for a public patient app (a native redirect URI, which warns).
fn patient_request(name: &str) -> Value {
    json!({
        "audience": "patient",
        "purpose": "Shows patients their records",
        "intended_users": "Patients of the clinic",
        "contact_name": "Ada Lovelace",
        "contact_email": "ada@acme-health.com",
        "name": name,
        "description": HOSTILE_DESCRIPTION,
        "app_url": "https://chart.acme-health.com",
        "privacy_url": "https://chart.acme-health.com/privacy",
        "logout_url": "https://chart.acme-health.com/bye",
        "client_type": "public",
        "redirect_uris": [REDIRECT, NATIVE_REDIRECT],
        "launch_url": "https://chart.acme-health.com/launch",
        "refresh_tokens": true,
        "scope_version": "v2",
        "scopes": SCOPE.split(' ').collect::<Vec<_>>(),
        "sites": "Main Street Clinic",
        "accepted_terms": true,
    })
}

/// A backend service with its JWK Set pasted (a JWK Set URL must be https off the sandbox).
fn backend_request(jwks: &str) -> Value {
    json!({
        "audience": "backend",
        "purpose": "Nightly export",
        "intended_users": "The data team",
        "contact_name": "Grace",
        "contact_email": "grace@acme-health.com",
        "name": "Exporter",
        "description": "Exports data",
        "client_type": "confidential-asymmetric",
        "jwks": jwks,
        "scope_version": "v2",
        "scopes": ["system/*.rs"],
        "accepted_terms": true,
    })
}

fn request_file(request: &Value) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    std::fs::write(&path, request.to_string()).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

/// Registers an app with `kiln app create`; its app id.
fn create(server: &Server, request: &Value) -> String {
    let (_dir, path) = request_file(request);
    let created = server.kiln(&["app", "create", "--request", &path]);
    assert_eq!(created["status"], "pending_review", "{created}");
    created["app_id"].as_str().unwrap().to_string()
}

/// Replaces an app's request and submits it (`kiln app update`).
fn update(server: &Server, app_id: &str, request: &Value) -> Value {
    let (_dir, path) = request_file(request);
    server.kiln(&["app", "update", app_id, "--request", &path])
}

fn show(server: &Server, app_id: &str) -> Value {
    server.kiln(&["app", "show", app_id])
}

/// Runs SQL on the server's database (to give an app an owner: the portal's app form is
/// not what these tests are about).
async fn sql(server: &Server, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if server.db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// Makes the developer account of `email` the owner of `app_id`.
async fn give_to(server: &Server, app_id: &str, email: &str) {
    sql(
        server,
        &format!(
            "UPDATE apps SET owner = (SELECT account_id FROM developer_accounts \
             WHERE email = '{email}'), origin = 'portal' WHERE app_id = '{app_id}'"
        ),
    )
    .await;
}

/// A secured server with Patient p1, the admin `root` and the users alice (p1) and bob.
async fn review_server(backend: Backend, env: &[(&str, &str)]) -> Option<Server> {
    let db = TestDb::new(backend).await?;
    let server = Server::start_on_with_env(db, &[], env).await;
    server.import(&[
        json!({"resourceType": "Patient", "id": "p1",
               "name": [{"given": ["Amy"], "family": "Shaw"}]}),
        json!({"resourceType": "Practitioner", "id": "dr1"}),
    ]);
    server.add_admin("root", ADMIN_PASSWORD, "Practitioner/dr1");
    server.add_users(&[("alice", "Patient/p1"), ("bob", "Practitioner/dr1")]);
    Some(server)
}

async fn admin(server: &Server) -> Browser {
    let mut admin = Browser::new(server);
    let signed_in = admin.sign_in("root", ADMIN_PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    admin
}

/// Signs a developer up through the portal; their browser.
async fn sign_up(server: &Server, name: &str, email: &str) -> Browser {
    let mut browser = Browser::new(server);
    let form = browser.get("/developer/signup").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let fields = [
        ("name", name),
        ("organization", "Acme <Health>"),
        ("email", email),
        ("password", DEV_PASSWORD),
        ("confirm", DEV_PASSWORD),
    ];
    let done = browser.submit(&form, "/developer/signup", &fields).await;
    assert_eq!(done.status, 200, "{}", done.body);
    browser
}

async fn developer_sign_in(browser: &mut Browser, email: &str) -> Reply {
    let form = browser.get("/developer/signin").await;
    let fields = [("email", email), ("password", DEV_PASSWORD)];
    browser.submit(&form, "/developer/signin", &fields).await
}

/// The id of the first developer account the console lists.
async fn first_developer(admin: &mut Browser) -> String {
    let list = admin.get("/admin/developers").await;
    assert_eq!(list.status, 200, "{}", list.body);
    Regex::new(r"/admin/developers/([0-9a-f-]{36})")
        .unwrap()
        .captures(&list.body)
        .unwrap_or_else(|| panic!("no developer listed: {}", list.body))[1]
        .to_string()
}

/// The counts of the home page's cards, in order.
fn card_counts(home: &Reply) -> Vec<(String, String)> {
    Regex::new(r#"<dt>([^<]*)</dt><dd class="count">(\d+)</dd>"#)
        .unwrap()
        .captures_iter(&home.body)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

fn has_count(home: &Reply, label: &str, count: usize) -> bool {
    card_counts(home).contains(&(label.to_string(), count.to_string()))
}

/// Posts an action from the app's page (with its CSRF token).
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

/// Whether the app's page offers `action`.
fn offers(page: &Reply, app_id: &str, action: &str) -> bool {
    page.body
        .contains(&format!("/admin/apps/{app_id}/{action}\""))
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

fn assert_escaped(page: &Reply, hostile: &[&str]) {
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img src=x"), "{}", page.body);
    assert!(!page.body.contains("<b>Add</b>"), "{}", page.body);
    let text = unescape(&page.body);
    for value in hostile {
        assert!(text.contains(value), "{value} missing: {}", page.body);
    }
}

async fn review_from_queue_to_retirement(backend: Backend) {
    let Some(server) = review_server(backend, &[]).await else {
        return;
    };
    let key = AppKey::rs384("rsa-1");
    let jwks = json!({"keys": [key.jwk]}).to_string();
    let app_id = create(&server, &patient_request(HOSTILE_NAME));
    let service_id = create(&server, &backend_request(&jwks));
    let mut admin = admin(&server).await;

    // The home page's cards; the queue lists both requests, awaiting review.
    let home = admin.get("/admin").await;
    assert!(has_count(&home, "Awaiting review", 2), "{}", home.body);
    assert!(has_count(&home, "Active", 0), "{}", home.body);
    assert!(
        home.body.contains("/admin/apps\">Apps</a>"),
        "{}",
        home.body
    );
    let queue = admin.get("/admin/apps").await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    for expected in [
        format!("/admin/apps/{app_id}\""),
        format!("/admin/apps/{service_id}\""),
        "Operator (command line)".to_string(),
        "Patients".to_string(),
        "Backend service".to_string(),
        "PENDING REVIEW".to_string(),
    ] {
        assert!(queue.body.contains(&expected), "{expected}: {}", queue.body);
    }
    assert_escaped(&queue, &[HOSTILE_NAME]);
    let rejected = admin.get("/admin/apps?show=rejected").await;
    assert_eq!(rejected.status, 200);
    assert!(!rejected.body.contains(&app_id));
    assert_eq!(admin.get("/admin/apps?show=bogus").await.status, 400);

    // The app's page: every field, the redirect-URI warning, the actions its status allows.
    let page = admin.get(&format!("/admin/apps/{app_id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for expected in [
        "Shows patients their records",
        "Patients of the clinic",
        "Ada Lovelace",
        "ada@acme-health.com",
        "https://chart.acme-health.com/privacy",
        "https://chart.acme-health.com/bye",
        "https://chart.acme-health.com/launch",
        REDIRECT,
        NATIVE_REDIRECT,
        "patient/*.rs",
        "SMART v2",
        "Main Street Clinic",
        "public",
        "waiting for review",
    ] {
        assert!(page.body.contains(expected), "{expected}: {}", page.body);
    }
    let warning = Regex::new(r#"(?s)<ul class="warnings">.*com\.acmehealth\.chart:/callback"#);
    assert!(warning.unwrap().is_match(&page.body), "{}", page.body);
    assert_escaped(&page, &[HOSTILE_NAME, HOSTILE_DESCRIPTION]);
    for action in ["approve", "request-changes", "reject", "retire"] {
        assert!(offers(&page, &app_id, action), "{action}");
    }
    for action in ["suspend", "reactivate"] {
        assert!(!offers(&page, &app_id, action), "{action}");
    }

    // The key-pair app's page: the JWK Set check.
    let service = admin.get(&format!("/admin/apps/{service_id}")).await;
    assert!(
        service.body.contains("<code>pasted</code>"),
        "{}",
        service.body
    );
    assert!(service.body.contains("rsa-1 (RS384)"), "{}", service.body);
    assert!(service.body.contains(">usable<"), "{}", service.body);

    // Request changes: a reason is required; with one, the history names the admin.
    let refused = decide(&mut admin, &app_id, "request-changes", "  ").await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("A reason is required for an app to be sent back for changes."),
        "{}",
        refused.body
    );
    assert_eq!(show(&server, &app_id)["status"], "pending_review");
    let sent_back = decide(&mut admin, &app_id, "request-changes", HOSTILE_REASON).await;
    assert_eq!(sent_back.status, 303, "{}", sent_back.body);
    assert_eq!(
        sent_back.location(),
        format!("{}/admin/apps/{app_id}?done=request-changes", server.base)
    );
    let page = admin.get(&sent_back.location()).await;
    assert!(page.body.contains("Sent back to the developer"));
    assert!(page.body.contains("CHANGES REQUESTED"), "{}", page.body);
    assert!(page.body.contains("admin root"), "{}", page.body);
    assert!(
        page.body.contains("PENDING REVIEW → CHANGES REQUESTED"),
        "{}",
        page.body
    );
    assert_escaped(&page, &[HOSTILE_REASON, HOSTILE_NAME]);
    assert!(!offers(&page, &app_id, "approve"));
    let history = show(&server, &app_id)["history"].clone();
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "admin:root");
    assert_eq!(last["action"], "request_changes");
    assert_eq!(last["reason"], HOSTILE_REASON);
    // Approving an app sent back for changes is refused with the lifecycle's message.
    let refused = decide(&mut admin, &app_id, "approve", "").await;
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .body
            .contains("An app in CHANGES REQUESTED cannot be approved."),
        "{}",
        refused.body
    );

    // Resubmitted, then approved with a note: the client id shows, no secret.
    let mut edited = patient_request(HOSTILE_NAME);
    edited["terms_url"] = json!("https://chart.acme-health.com/terms");
    assert_eq!(
        update(&server, &app_id, &edited)["status"],
        "pending_review"
    );
    let approved = decide(&mut admin, &app_id, "approve", "Looks good").await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    let shown = show(&server, &app_id);
    assert_eq!(shown["status"], "active");
    let client_id = shown["client_id"].as_str().unwrap().to_string();
    let page = admin.get(&approved.location()).await;
    assert!(page.body.contains("Approved:"), "{}", page.body);
    assert!(page.body.contains(&client_id));
    assert!(page.body.contains("Looks good"));
    assert!(
        page.body
            .contains("<dt>Tokens issued</dt><dd class=\"count\">0</dd>")
    );
    for action in ["suspend", "retire"] {
        assert!(offers(&page, &app_id, action), "{action}");
    }
    for action in ["approve", "reject", "reactivate"] {
        assert!(!offers(&page, &app_id, action), "{action}");
    }

    // The app gets a token; the page shows the activity.
    let app = smart::App {
        client_id: client_id.clone(),
        secret: None,
        redirect_uri: REDIRECT.into(),
    };
    let token = smart::authorize(&server, &app, SCOPE, None, &Answers::allow("alice", "pw-1"))
        .await
        .unwrap();
    let access = smart::access_token(&token);
    assert_eq!(fhir_status(&server, &access).await, 200);
    let page = admin.get(&format!("/admin/apps/{app_id}")).await;
    assert!(
        page.body
            .contains("<dt>Tokens issued</dt><dd class=\"count\">1</dd>")
    );
    assert!(
        page.body
            .contains("<dt>Connected patients</dt><dd class=\"count\">1</dd>")
    );
    assert!(!page.body.contains("<dt>Last token issued</dt><dd>never"));

    // An edit of the active app waits for review, field by field against the approved one.
    let mut renamed = edited.clone();
    renamed["name"] = json!("Chart Viewer 2");
    assert_eq!(update(&server, &app_id, &renamed)["status"], "active");
    let queue = admin.get("/admin/apps").await;
    assert!(queue.body.contains(&app_id), "{}", queue.body);
    assert!(
        queue.body.contains("EDIT AWAITING REVIEW"),
        "{}",
        queue.body
    );
    let page = admin.get(&format!("/admin/apps/{app_id}")).await;
    assert!(page.body.contains("1 changed (App name)"), "{}", page.body);
    let changed = Regex::new(
        r#"<tr class="changed">\s*<th scope="row">App name <span class="changed-mark">changed</span></th>\s*<td class="value">([^<]*)</td>\s*<td class="value">Chart Viewer 2</td>"#,
    )
    .unwrap();
    let before = changed
        .captures(&page.body)
        .unwrap_or_else(|| panic!("no changed name: {}", page.body))[1]
        .to_string();
    assert_eq!(unescape(&before), HOSTILE_NAME);
    assert!(offers(&page, &app_id, "reject"));
    assert!(page.body.contains("Reject this revision"));
    let kept = decide(&mut admin, &app_id, "reject", "Keep the old name").await;
    assert_eq!(kept.status, 303);
    assert_eq!(show(&server, &app_id)["status"], "active");
    assert_eq!(fhir_status(&server, &access).await, 200);

    // Suspend: a reason is required; then the token stops at once.
    let refused = decide(&mut admin, &app_id, "suspend", "").await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("A reason is required"));
    assert_eq!(fhir_status(&server, &access).await, 200);
    let suspended = decide(&mut admin, &app_id, "suspend", "Abuse").await;
    assert_eq!(suspended.status, 303, "{}", suspended.body);
    assert_eq!(fhir_status(&server, &access).await, 401);
    let page = admin.get(&format!("/admin/apps/{app_id}")).await;
    assert!(page.body.contains("ACTIVE → SUSPENDED"), "{}", page.body);
    assert!(offers(&page, &app_id, "reactivate"));
    assert!(!offers(&page, &app_id, "suspend"));
    let home = admin.get("/admin").await;
    assert!(has_count(&home, "Suspended", 1), "{}", home.body);

    // What the status does not allow is refused, and nothing changes.
    let refused = decide(&mut admin, &app_id, "suspend", "Again").await;
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .body
            .contains("An app in SUSPENDED cannot be suspended."),
        "{}",
        refused.body
    );
    assert_eq!(decide(&mut admin, &app_id, "approve", "").await.status, 400);

    // Reactivate (old tokens stay revoked), then retire for good.
    let reactivated = decide(&mut admin, &app_id, "reactivate", "").await;
    assert_eq!(reactivated.status, 303);
    assert_eq!(show(&server, &app_id)["status"], "active");
    assert_eq!(fhir_status(&server, &access).await, 401);
    let retired = decide(&mut admin, &app_id, "retire", "Replaced").await;
    assert_eq!(retired.status, 303);
    assert_eq!(show(&server, &app_id)["status"], "retired");
    let page = admin.get(&format!("/admin/apps/{app_id}")).await;
    assert!(
        page.body
            .contains("Nothing can be done to an app in RETIRED"),
        "{}",
        page.body
    );
    assert_eq!(decide(&mut admin, &app_id, "retire", "").await.status, 400);

    // A rejected app cannot be suspended.
    let rejected = decide(&mut admin, &service_id, "reject", "No export").await;
    assert_eq!(rejected.status, 303);
    let refused = decide(&mut admin, &service_id, "suspend", "Because").await;
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .body
            .contains("An app in REJECTED cannot be suspended."),
        "{}",
        refused.body
    );
    assert_eq!(show(&server, &service_id)["status"], "rejected");
    let listed = admin.get("/admin/apps?show=rejected").await;
    assert!(listed.body.contains(&service_id), "{}", listed.body);

    // Unknown actions, malformed and unknown ids; a client id is not an app id.
    let page = admin.get(&format!("/admin/apps/{service_id}")).await;
    let unknown = admin
        .submit(&page, &format!("/admin/apps/{service_id}/promote"), &[])
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(admin.get("/admin/apps/not-an-id").await.status, 400);
    assert_eq!(
        admin.get(&format!("/admin/apps/{client_id}")).await.status,
        400
    );
    let nobody = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        admin.get(&format!("/admin/apps/{nobody}")).await.status,
        404
    );
    let missing = admin
        .submit(&page, &format!("/admin/apps/{nobody}/approve"), &[])
        .await;
    assert_eq!(missing.status, 404);
}

async fn every_page_and_action_needs_an_admin_and_the_csrf_token(backend: Backend) {
    let Some(server) = review_server(backend, &[]).await else {
        return;
    };
    let app_id = create(&server, &patient_request("Chart"));
    sign_up(&server, "Dev", "dev@example.org").await;
    let mut admin = admin(&server).await;
    let account = first_developer(&mut admin).await;
    let gets = [
        "/admin/apps".to_string(),
        "/admin/apps?show=all".to_string(),
        format!("/admin/apps/{app_id}"),
        "/admin/developers".to_string(),
        format!("/admin/developers/{account}"),
    ];
    let mut posts: Vec<String> = [
        "approve",
        "request-changes",
        "reject",
        "suspend",
        "reactivate",
        "retire",
    ]
    .iter()
    .map(|action| format!("/admin/apps/{app_id}/{action}"))
    .collect();
    for action in ["verify", "disable", "enable"] {
        posts.push(format!("/admin/developers/{account}/{action}"));
    }
    let unchanged = |server: &Server| {
        assert_eq!(show(server, &app_id)["status"], "pending_review");
    };

    // Anonymous: the login form on every page; every action refused.
    let mut anonymous = Browser::new(&server);
    for path in &gets {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.is_login(), "{path}: {}", page.body);
    }
    let csrf = anonymous.get("/admin").await.csrf();
    for path in &posts {
        let form = [("csrf_token", csrf.as_str()), ("reason", "x")];
        assert_eq!(anonymous.post(path, &form).await.status, 403, "{path}");
    }

    // A signed-in user who is not an admin: 403 everywhere, even with a valid token.
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob", "pw-1").await.status, 303);
    let csrf = bob.get("/auth/apps").await.csrf();
    for path in &gets {
        let refused = bob.get(path).await;
        assert_eq!(refused.status, 403, "GET {path}");
        assert!(refused.body.contains("for Kiln administrators"));
    }
    for path in &posts {
        let form = [("csrf_token", csrf.as_str()), ("reason", "x")];
        assert_eq!(bob.post(path, &form).await.status, 403, "POST {path}");
    }
    unchanged(&server);

    // The admin without, or with a wrong, CSRF token: 403.
    assert_eq!(admin.get(&gets[2]).await.status, 200);
    for path in &posts {
        let wrong = [("csrf_token", "wrong"), ("reason", "x")];
        assert_eq!(admin.post(path, &wrong).await.status, 403, "{path}");
        assert_eq!(admin.post(path, &[("reason", "x")]).await.status, 403);
    }
    unchanged(&server);
    let developer = admin.get(&format!("/admin/developers/{account}")).await;
    assert!(
        developer.body.contains("not verified"),
        "{}",
        developer.body
    );
    assert!(!developer.body.contains(">disabled<"), "{}", developer.body);
}

async fn developers_verified_by_hand_and_disabled(backend: Backend) {
    let Some(server) = review_server(backend, &[]).await else {
        return;
    };
    let email = "grace@example.org";
    let mut developer = sign_up(&server, HOSTILE_DEVELOPER, email).await;
    let refused = developer_sign_in(&mut developer, email).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("not verified"));
    let app_id = create(&server, &patient_request("Grace's chart"));
    give_to(&server, &app_id, email).await;

    let mut admin = admin(&server).await;
    let home = admin.get("/admin").await;
    assert!(has_count(&home, "Developers", 1), "{}", home.body);
    assert!(has_count(&home, "Unverified", 1), "{}", home.body);
    let list = admin.get("/admin/developers").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(email));
    assert!(list.body.contains("not verified"));
    assert!(
        list.body.contains("<td class=\"count\">1</td>"),
        "{}",
        list.body
    );
    assert_escaped(&list, &[HOSTILE_DEVELOPER, "Acme <Health>"]);
    let account = first_developer(&mut admin).await;
    let page = admin.get(&format!("/admin/developers/{account}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!("/admin/apps/{app_id}\"")));
    assert!(page.body.contains("Grace&#39;s chart") || page.body.contains("Grace&#x27;s chart"));
    assert_escaped(&page, &[HOSTILE_DEVELOPER]);

    // The app names its owner; the queue too.
    let app = admin.get(&format!("/admin/apps/{app_id}")).await;
    assert!(app.body.contains(&format!("/admin/developers/{account}\"")));
    assert!(app.body.contains(email));
    assert_escaped(&app, &[HOSTILE_DEVELOPER]);
    let queue = admin.get("/admin/apps").await;
    assert!(queue.body.contains(email), "{}", queue.body);

    // Verified by hand: the developer can sign in.
    let verified = admin
        .submit(&page, &format!("/admin/developers/{account}/verify"), &[])
        .await;
    assert_eq!(verified.status, 303, "{}", verified.body);
    assert_eq!(
        verified.location(),
        format!("{}/admin/developers/{account}?done=verify", server.base)
    );
    let page = admin.get(&verified.location()).await;
    assert!(page.body.contains("Address marked verified"));
    assert!(!page.body.contains("not verified"), "{}", page.body);
    assert!(!page.body.contains("/verify\""), "verified once");
    assert_eq!(developer_sign_in(&mut developer, email).await.status, 303);
    assert_eq!(developer.get("/developer").await.status, 200);

    // Disabled: signed out at once and refused; enabled again: back in.
    let disabled = admin
        .submit(&page, &format!("/admin/developers/{account}/disable"), &[])
        .await;
    assert_eq!(disabled.status, 303);
    assert_eq!(developer.get("/developer").await.status, 303);
    assert_ne!(developer_sign_in(&mut developer, email).await.status, 303);
    let page = admin.get(&format!("/admin/developers/{account}")).await;
    assert!(page.body.contains(">disabled<"), "{}", page.body);
    let home = admin.get("/admin").await;
    assert!(has_count(&home, "Disabled accounts", 1), "{}", home.body);
    let enabled = admin
        .submit(&page, &format!("/admin/developers/{account}/enable"), &[])
        .await;
    assert_eq!(enabled.status, 303);
    assert_eq!(developer_sign_in(&mut developer, email).await.status, 303);

    // Unknown accounts and actions.
    let unknown = admin
        .submit(&page, &format!("/admin/developers/{account}/promote"), &[])
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(admin.get("/admin/developers/nope").await.status, 400);
    let nobody = "00000000-0000-4000-8000-000000000000";
    let missing = admin.get(&format!("/admin/developers/{nobody}")).await;
    assert_eq!(missing.status, 404);
}

async fn decisions_are_mailed_to_the_developer(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let env = [
        ("KILN_SMTP_URL", sink.url.as_str()),
        ("KILN_MAIL_FROM", "Kiln Test <kiln@example.org>"),
    ];
    let Some(server) = review_server(backend, &env).await else {
        return;
    };
    let email = "ada@example.org";
    sign_up(&server, "Ada", email).await;
    assert_eq!(
        sink.wait_for(email, 1).await.subject,
        "Verify your Kiln developer account"
    );
    let app_id = create(&server, &patient_request("Chart Viewer"));
    give_to(&server, &app_id, email).await;
    let link = format!("{}/developer/apps/{app_id}", server.base);
    let mut admin = admin(&server).await;

    let sent_back = decide(&mut admin, &app_id, "request-changes", "Add a terms URL").await;
    assert_eq!(sent_back.status, 303);
    assert!(!sent_back.location().contains("mail=failed"));
    let mail = sink.wait_for(email, 2).await;
    assert_eq!(mail.subject, "Changes requested for your app Chart Viewer");
    assert!(mail.body.contains("Add a terms URL"), "{}", mail.body);
    assert!(mail.body.contains(&link), "{}", mail.body);

    let mut edited = patient_request("Chart Viewer");
    edited["terms_url"] = json!("https://chart.acme-health.com/terms");
    update(&server, &app_id, &edited);
    assert_eq!(decide(&mut admin, &app_id, "approve", "").await.status, 303);
    let mail = sink.wait_for(email, 3).await;
    assert_eq!(mail.subject, "Your app Chart Viewer is approved");
    assert!(mail.body.contains(&link), "{}", mail.body);

    // Reactivating is not mailed; suspending is, with its reason.
    assert_eq!(
        decide(&mut admin, &app_id, "suspend", "Abuse").await.status,
        303
    );
    let mail = sink.wait_for(email, 4).await;
    assert_eq!(mail.subject, "Your app Chart Viewer is suspended");
    assert!(mail.body.contains("Abuse"), "{}", mail.body);
    assert_eq!(
        decide(&mut admin, &app_id, "reactivate", "").await.status,
        303
    );

    // The mail failing does not undo the decision: it is said, and logged.
    drop(sink);
    let suspended = decide(&mut admin, &app_id, "suspend", "Abuse again").await;
    assert_eq!(suspended.status, 303, "{}", suspended.body);
    assert!(suspended.location().ends_with("done=suspend&mail=failed"));
    assert_eq!(show(&server, &app_id)["status"], "suspended");
    let page = admin.get(&suspended.location()).await;
    assert!(
        page.body.contains("could not be told by mail"),
        "{}",
        page.body
    );
    assert!(server.log().contains("app decision not mailed"));
}
