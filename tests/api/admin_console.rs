//! The admin console (`/admin`): an admin signs in with Kiln's login form and manages EHR
//! users through the real pages; everyone else is refused; disabling a user stops their apps
//! and their sign-in.

use regex::Regex;
use serde_json::json;

use crate::backend_tests;
use crate::common::console::{Browser, Reply};
use crate::common::smart::{Answers, App, access_token, authorize};
use crate::common::*;

backend_tests!(
    admin_signs_in_and_manages_users,
    only_admins_with_the_csrf_token_get_in,
    disabling_a_user_stops_their_apps_and_sign_in
);

const ADMIN_PASSWORD: &str = "root-password-1";
const GOOD_PASSWORD: &str = "a long enough passphrase";

/// A secured server with Patient p1 (Amy Shaw), a Patient with a hostile name, Practitioner
/// dr1, the admin `root` (dr1) and the users alice (p1) and bob (dr1), both with `pw-1`.
async fn console_server(backend: Backend) -> Option<Server> {
    let server = Server::start_secured(backend, &[]).await?;
    server.import(&[
        json!({"resourceType": "Patient", "id": "p1",
               "name": [{"given": ["Amy"], "family": "Shaw"}]}),
        json!({"resourceType": "Patient", "id": "evil",
               "name": [{"text": "<script>alert(1)</script>"}]}),
        json!({"resourceType": "Practitioner", "id": "dr1",
               "name": [{"given": ["Ron"], "family": "Doe"}]}),
    ]);
    server.add_admin("root", ADMIN_PASSWORD, "Practitioner/dr1");
    server.add_users(&[("alice", "Patient/p1"), ("bob", "Practitioner/dr1")]);
    Some(server)
}

/// Every page header the console must send.
fn assert_page_headers(reply: &Reply) {
    let csp = reply.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(reply.headers["x-frame-options"], "DENY");
    assert_eq!(reply.headers["cache-control"], "no-store");
}

/// `kiln user list`'s line for `username`.
fn listed(server: &Server, username: &str) -> serde_json::Value {
    let output = std::process::Command::new(kiln_bin())
        .args(["user", "list"])
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|user| user["username"] == username)
        .unwrap_or_else(|| panic!("{username} not listed"))
}

async fn admin_signs_in_and_manages_users(backend: Backend) {
    let Some(server) = console_server(backend).await else {
        return;
    };
    let mut admin = Browser::new(&server);
    // Anonymous: the login form, returning to the console.
    let signed_in = admin.sign_in("root", ADMIN_PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location(), format!("{}/admin", server.base));

    let home = admin.get("/admin").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert_page_headers(&home);
    assert!(home.body.contains("Signed in as root"), "{}", home.body);
    assert!(
        home.body.contains("/admin/users\">Users</a>"),
        "{}",
        home.body
    );
    let counts = Regex::new(r#"<dt>([^<]*)</dt><dd class="count">(\d+)</dd>"#).unwrap();
    let counts: Vec<(String, String)> = counts
        .captures_iter(&home.body)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    let expected = [("Users", "3"), ("Administrators", "1"), ("Disabled", "0")];
    assert_eq!(
        counts[..3],
        expected.map(|(label, count)| (label.to_string(), count.to_string()))
    );

    // The list: each user with the name of their FHIR user.
    let users = admin.get("/admin/users").await;
    assert_eq!(users.status, 200);
    assert_page_headers(&users);
    assert!(users.body.contains("Amy Shaw"), "{}", users.body);
    assert!(users.body.contains("<code>Patient/p1</code>"));
    assert!(users.body.contains("Ron Doe"));
    assert!(users.body.contains("Administrator"));

    // A FHIR user that is not on the server, a malformed one, a short password: the form says so.
    let create = |username: &'static str, password: &'static str, fhir_user: &'static str| {
        vec![
            ("username", username),
            ("password", password),
            ("fhir_user", fhir_user),
        ]
    };
    let csrf = users.csrf();
    let missing = [
        vec![("csrf_token", csrf.as_str())],
        create("carol", GOOD_PASSWORD, "Patient/nope"),
    ]
    .concat();
    let refused = admin.post("/admin/users", &missing).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("FHIR user: there is no Patient/nope on this server"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(r#"name="username" value="carol""#));
    for (fields, message) in [
        (
            create("carol", GOOD_PASSWORD, "Observation/o1"),
            "must be Patient/ID or Practitioner/ID",
        ),
        (
            create("carol", "short", "Patient/p1"),
            "The password must be 12 to 128 characters long.",
        ),
        (
            create("carol", "carol-carol-carol", "Patient/p1"),
            "must not contain the username",
        ),
        (
            create("", GOOD_PASSWORD, "Patient/p1"),
            "The username must be 1 to 64 characters long.",
        ),
        (
            create("alice", GOOD_PASSWORD, "Patient/p1"),
            "There is already a user named alice.",
        ),
    ] {
        let form = [vec![("csrf_token", csrf.as_str())], fields].concat();
        let refused = admin.post("/admin/users", &form).await;
        assert_eq!(refused.status, 400, "{message}: {}", refused.body);
        assert!(
            refused.body.contains(message),
            "{message}: {}",
            refused.body
        );
    }
    assert!(
        listed(&server, "alice")["fhir_user"] == "Patient/p1",
        "a taken username is not overwritten"
    );

    // A hostile username linked to a Patient with a hostile name: escaped everywhere.
    let hostile = "<script>x</script>";
    let form = [
        vec![("csrf_token", csrf.as_str()), ("admin", "yes")],
        create(hostile, GOOD_PASSWORD, "Patient/evil"),
    ]
    .concat();
    let created = admin.post("/admin/users", &form).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let shown = admin
        .get(created.location().strip_prefix(&server.base).unwrap())
        .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("User added."));
    let users = admin.get("/admin/users").await;
    for page in [&shown, &users] {
        assert!(!page.body.contains("<script>"), "{}", page.body);
        assert!(page.body.contains("&#60;script&#62;x&#60;/script&#62;"));
        assert!(page.body.contains("&#60;script&#62;alert(1)"));
    }
    assert_eq!(listed(&server, hostile)["admin"], true);

    // Changing alice's FHIR user: a missing one is refused, an existing one taken.
    let alice = admin.get("/admin/users/show?username=alice").await;
    assert_eq!(alice.status, 200);
    assert_page_headers(&alice);
    let refused = admin
        .act(
            &alice,
            "fhir-user",
            &[("username", "alice"), ("fhir_user", "Practitioner/nope")],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .body
            .contains("there is no Practitioner/nope on this server")
    );
    let changed = admin
        .act(
            &alice,
            "fhir-user",
            &[("username", "alice"), ("fhir_user", "Practitioner/dr1")],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(listed(&server, "alice")["fhir_user"], "Practitioner/dr1");

    // Resetting bob's password: the new one signs in, the old one no longer.
    let refused = admin
        .act(
            &alice,
            "password",
            &[("username", "bob"), ("password", "x")],
        )
        .await;
    assert_eq!(refused.status, 400);
    let reset = admin
        .act(
            &alice,
            "password",
            &[("username", "bob"), ("password", GOOD_PASSWORD)],
        )
        .await;
    assert_eq!(reset.status, 303);
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob", "pw-1").await.status, 401);
    assert_eq!(bob.sign_in("bob", GOOD_PASSWORD).await.status, 303);
    assert_eq!(bob.get("/admin").await.status, 403);

    // The admin role: bob gets it and uses the console, then loses it.
    let granted = admin
        .act(&alice, "grant-admin", &[("username", "bob")])
        .await;
    assert_eq!(granted.status, 303);
    let bob_home = bob.get("/admin").await;
    assert_eq!(bob_home.status, 200, "{}", bob_home.body);
    assert!(bob_home.body.contains("Signed in as bob"));
    let removed = admin
        .act(&alice, "remove-admin", &[("username", "bob")])
        .await;
    assert_eq!(removed.status, 303);
    assert_eq!(bob.get("/admin").await.status, 403);

    // Never one's own role or account.
    let own = admin.get("/admin/users/show?username=root").await;
    assert!(!own.body.contains("/admin/users/disable"), "{}", own.body);
    assert!(!own.body.contains("/admin/users/remove-admin"));
    for action in ["remove-admin", "disable"] {
        let refused = admin.act(&own, action, &[("username", "root")]).await;
        assert_eq!(refused.status, 400, "{action}");
        assert!(refused.body.contains("You cannot"), "{}", refused.body);
    }
    let root = listed(&server, "root");
    assert_eq!(
        (root["admin"].clone(), root["disabled"].clone()),
        (json!(true), json!(false))
    );

    // An unknown user or action; signing out shows the login form again.
    let unknown = admin.act(&own, "disable", &[("username", "nobody")]).await;
    assert_eq!(unknown.status, 400);
    let unknown = admin.act(&own, "promote", &[("username", "bob")]).await;
    assert_eq!(unknown.status, 400);
    let csrf = own.csrf();
    let out = admin.post("/admin/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(admin.get("/admin/users").await.is_login());
}

async fn only_admins_with_the_csrf_token_get_in(backend: Backend) {
    let Some(server) = console_server(backend).await else {
        return;
    };
    let gets = ["/admin", "/admin/users", "/admin/users/show?username=alice"];
    let posts = [
        "/admin/users",
        "/admin/users/fhir-user",
        "/admin/users/password",
        "/admin/users/disable",
        "/admin/users/enable",
        "/admin/users/grant-admin",
        "/admin/users/remove-admin",
        "/admin/logout",
    ];
    let fields = |csrf: &str| {
        vec![
            ("csrf_token".to_string(), csrf.to_string()),
            ("username".to_string(), "alice".to_string()),
            ("password".to_string(), GOOD_PASSWORD.to_string()),
            ("fhir_user".to_string(), "Patient/p1".to_string()),
        ]
    };
    // Anonymous: every page is the login form; every action is refused.
    let mut anonymous = Browser::new(&server);
    for path in gets {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.is_login(), "{path}: {}", page.body);
        assert_page_headers(&page);
    }
    let csrf = anonymous.get("/admin").await.csrf();
    for path in posts {
        let refused = anonymous.post_pairs(path, &fields(&csrf)).await;
        assert_eq!(refused.status, 403, "anonymous POST {path}");
        assert_page_headers(&refused);
    }

    // A signed-in user who is not an admin: 403 on every page and action, with a valid token.
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob", "pw-1").await.status, 303);
    let apps = bob.get("/auth/apps").await;
    assert_eq!(apps.status, 200);
    let csrf = apps.csrf();
    for path in gets {
        let refused = bob.get(path).await;
        assert_eq!(refused.status, 403, "GET {path}");
        assert!(refused.body.contains("for Kiln administrators"));
        assert_page_headers(&refused);
    }
    for path in posts {
        let refused = bob.post_pairs(path, &fields(&csrf)).await;
        assert_eq!(refused.status, 403, "POST {path}");
    }
    let alice = listed(&server, "alice");
    assert_eq!(alice["disabled"], false);
    assert_eq!(listed(&server, "bob")["admin"], false);

    // An admin without, or with a wrong, CSRF token: 403, nothing changes.
    let mut admin = Browser::new(&server);
    assert_eq!(admin.sign_in("root", ADMIN_PASSWORD).await.status, 303);
    let page = admin.get("/admin/users/show?username=alice").await;
    assert_eq!(page.status, 200);
    for path in posts {
        let mut form = fields("wrong");
        let refused = admin.post_pairs(path, &form).await;
        assert_eq!(refused.status, 403, "wrong token: POST {path}");
        form.remove(0);
        let refused = admin.post_pairs(path, &form).await;
        assert_eq!(refused.status, 403, "no token: POST {path}");
    }
    assert_eq!(listed(&server, "alice")["disabled"], false);
    // The same POST with the page's token goes through.
    let done = admin.act(&page, "disable", &[("username", "alice")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(listed(&server, "alice")["disabled"], true);
}

async fn disabling_a_user_stops_their_apps_and_sign_in(backend: Backend) {
    let Some(server) = console_server(backend).await else {
        return;
    };
    let scope = "launch/patient openid fhirUser patient/*.rs";
    let app = App::register(&server, "public", scope, &[]);
    let token = access_token(
        &authorize(&server, &app, scope, None, &Answers::allow("alice", "pw-1"))
            .await
            .unwrap(),
    );
    let read = || {
        server
            .client
            .get(format!("{}/Patient/p1", server.fhir))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(read().await.unwrap().status(), 200);
    // Alice is also signed in on her connected-apps page.
    let mut alice = Browser::new(&server);
    let login = alice.get("/auth/apps").await;
    let csrf = login.csrf();
    let signed_in = alice
        .post(
            "/auth/login",
            &[
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", "pw-1"),
                ("return_to", "/auth/apps"),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303);
    assert!(
        alice
            .get("/auth/apps")
            .await
            .body
            .contains("Signed in as alice")
    );

    let mut admin = Browser::new(&server);
    assert_eq!(admin.sign_in("root", ADMIN_PASSWORD).await.status, 303);
    let page = admin.get("/admin/users/show?username=alice").await;
    let disabled = admin.act(&page, "disable", &[("username", "alice")]).await;
    assert_eq!(disabled.status, 303);
    let page = admin
        .get(disabled.location().strip_prefix(&server.base).unwrap())
        .await;
    assert!(page.body.contains("User disabled"), "{}", page.body);
    assert!(page.body.contains("/admin/users/enable"));
    let users = admin.get("/admin/users").await;
    assert!(users.body.contains("status suspended\">disabled"));
    assert!(
        admin
            .get("/admin")
            .await
            .body
            .contains(r#"<dt>Disabled</dt><dd class="count">1</dd>"#)
    );

    // Her app's token stops at once; her session is gone.
    assert_eq!(read().await.unwrap().status(), 401);
    let apps = alice.get("/auth/apps").await;
    assert!(apps.is_login(), "{}", apps.body);
    assert!(!apps.body.contains("Signed in as alice"));

    // Signing in: a wrong password is just wrong; the right one hears the account is disabled.
    let csrf = apps.csrf();
    let login = |password: &'static str| {
        [
            ("csrf_token".to_string(), csrf.clone()),
            ("username".to_string(), "alice".to_string()),
            ("password".to_string(), password.to_string()),
        ]
    };
    let wrong = alice
        .post_pairs("/auth/login", &login("wrong-password"))
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Incorrect username or password."));
    assert!(!wrong.body.contains("disabled"));
    let right = alice.post_pairs("/auth/login", &login("pw-1")).await;
    assert_eq!(right.status, 403);
    assert!(
        right.body.contains("This account is disabled."),
        "{}",
        right.body
    );
    // Nor can she authorize an app.
    let again = authorize(&server, &app, scope, None, &Answers::allow("alice", "pw-1")).await;
    assert!(again.is_err());

    // Enabled again: she signs in; the revoked token stays revoked.
    let page = admin.get("/admin/users/show?username=alice").await;
    let enabled = admin.act(&page, "enable", &[("username", "alice")]).await;
    assert_eq!(enabled.status, 303);
    assert_eq!(
        alice.post_pairs("/auth/login", &login("pw-1")).await.status,
        303
    );
    assert_eq!(read().await.unwrap().status(), 401);

    // The same from the command line.
    let token = access_token(
        &authorize(&server, &app, scope, None, &Answers::allow("alice", "pw-1"))
            .await
            .unwrap(),
    );
    let read = || {
        server
            .client
            .get(format!("{}/Patient/p1", server.fhir))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(read().await.unwrap().status(), 200);
    assert_eq!(
        server.kiln(&["user", "disable", "alice"]),
        json!({"username": "alice", "disabled": true})
    );
    assert_eq!(listed(&server, "alice")["disabled"], true);
    assert_eq!(read().await.unwrap().status(), 401);
    // No new token or EHR launch for her while she is disabled.
    let refused = std::process::Command::new(kiln_bin())
        .args([
            "token",
            "create",
            "--client-id",
            &app.client_id,
            "--user",
            "alice",
        ])
        .args(["--scope", "openid fhirUser"])
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("user alice is disabled"));
    server.kiln(&["user", "enable", "alice"]);
    assert_eq!(listed(&server, "alice")["disabled"], false);
}
