//! The landing page and the developer portal's accounts, driven like a browser: sign-up with
//! its password policy, the verification mail caught by a real SMTP server (aiosmtpd), the
//! single-use expiring links, sign-in and out, password reset, CSRF, escaping of what
//! developers typed, the page headers, and mail written to the log when no SMTP server is set.

use crate::backend_tests;
use crate::common::portal::*;
use crate::common::*;

backend_tests!(
    sign_up_verify_sign_in_and_out,
    password_policy_and_form_errors,
    duplicate_email_is_neutral,
    password_reset,
    links_expire,
    forms_need_their_csrf_token,
    without_smtp_the_link_is_logged,
    unreachable_smtp_is_a_clear_error,
);

const HOSTILE_NAME: &str = "<script>alert('name')</script>";
const HOSTILE_ORG: &str = "\"><img src=x onerror=alert(1)>";

impl Page {
    /// A hostile name and organization on a page that shows them: there, as text only.
    fn assert_escaped(&self) {
        assert!(!self.body.contains("<script>alert"), "{}", self.body);
        assert!(!self.body.contains("<img src=x"), "{}", self.body);
        let text = unescape(&self.body);
        assert!(text.contains(HOSTILE_NAME), "{}", self.body);
        assert!(text.contains(HOSTILE_ORG), "{}", self.body);
    }
}

async fn sign_up_verify_sign_in_and_out(backend: Backend) {
    let Some((server, sink)) = with_smtp(backend).await else {
        return;
    };
    let mut browser = Browser::new(&server);

    // The landing page: what this is, with this server's real URLs.
    let landing = browser.get("/").await;
    assert_eq!(landing.status, 200);
    landing.assert_page_headers();
    for expected in [
        "href=\"/developer\"".to_string(),
        "href=\"/docs\"".to_string(),
        format!("href=\"{}/fhir\"", server.base),
        format!("href=\"{}/fhir/metadata\"", server.base),
        format!(
            "href=\"{}/fhir/.well-known/smart-configuration\"",
            server.base
        ),
        server.base.clone(),
    ] {
        assert!(landing.body.contains(&expected), "{expected} missing");
    }

    // Not signed in: the portal's home sends to sign-in.
    let home = browser.get("/developer").await;
    assert_eq!(home.status, 303);
    assert!(home.location().ends_with("/developer/signin"));

    let signup = browser.get("/developer/signup").await;
    signup.assert_page_headers();
    for field in ["name", "organization", "email", "password", "confirm"] {
        assert!(
            signup.body.contains(&format!("<label for=\"{field}\"")),
            "no label for {field}"
        );
    }
    let email = "ada@example.org";
    let done = browser
        .sign_up(HOSTILE_NAME, HOSTILE_ORG, "Ada@Example.ORG", PASSWORD)
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Check your mail"), "{}", done.body);
    done.assert_page_headers();

    let mail = sink.wait_for(email, 1).await;
    assert_eq!(mail.subject, "Verify your Kiln developer account");
    assert!(mail.from.contains("kiln@example.org"), "{}", mail.from);
    let first_link = link(&mail.body, "/developer/verify");
    assert!(first_link.starts_with(&server.base), "{first_link}");
    assert!(mail.body.contains("24 hours"), "{}", mail.body);

    // Not verified yet: sign-in refused, with a button to send the link again.
    let refused = browser.sign_in(email, PASSWORD).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("not verified"), "{}", refused.body);
    assert!(
        refused.body.contains("Send the link again"),
        "{}",
        refused.body
    );
    assert!(
        !refused.body.contains(PASSWORD),
        "the password is not echoed"
    );
    let resent = browser
        .post(
            "/developer/verify/resend",
            &[
                ("csrf_token", &refused.hidden("csrf_token")),
                ("email", &refused.hidden("email")),
            ],
        )
        .await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    let second_link = link(&sink.wait_for(email, 2).await.body, "/developer/verify");
    assert_ne!(first_link, second_link);

    // Each link works once.
    let verified = browser.get(&first_link).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert!(
        verified.body.contains("Address verified"),
        "{}",
        verified.body
    );
    let again = browser.get(&first_link).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("does not work"), "{}", again.body);
    let unknown = browser.get("/developer/verify?token=nope").await;
    assert_eq!(unknown.status, 400);
    let empty = browser.get("/developer/verify").await;
    assert_eq!(empty.status, 400);

    // A wrong password is refused; the right one signs in with a new session id.
    let wrong = browser.sign_in(email, "Wrong-Password-1").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("Incorrect e-mail address or password"));
    assert!(
        wrong.body.contains("value=\"ada@example.org\""),
        "keeps the address"
    );
    let before = browser.cookie.clone();
    let signed_in = browser.sign_in(email, PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert!(signed_in.location().ends_with("/developer"));
    assert_ne!(browser.cookie, before, "a new session id at sign-in");

    let home = browser.get("/developer").await;
    assert_eq!(home.status, 200, "{}", home.body);
    home.assert_page_headers();
    home.assert_escaped();
    assert!(home.body.contains("My Applications"));
    assert!(home.body.contains("ada@example.org"));
    assert!(home.body.contains("You have not registered an app yet"));
    // Signed in, the sign-in page sends home.
    let signin = browser.get("/developer/signin").await;
    assert_eq!(signin.status, 303);

    // Sign out: the home page sends to sign-in again.
    let csrf = home.hidden("csrf_token");
    let out = browser
        .post("/developer/signout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    let home = browser.get("/developer").await;
    assert_eq!(home.status, 303);
    assert!(home.location().ends_with("/developer/signin"));
}

async fn password_policy_and_form_errors(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut browser = Browser::new(&server);
    let attempt = async |browser: &mut Browser<'_>, password: &str, confirm: &str| {
        let fields = [
            ("name", HOSTILE_NAME),
            ("organization", HOSTILE_ORG),
            ("email", "grace@example.org"),
            ("password", password),
            ("confirm", confirm),
        ];
        browser
            .submit("/developer/signup", "/developer/signup", &fields)
            .await
    };
    for (password, expected) in [
        ("Ab-1", "at least 8 characters"),
        ("lowercase-only-1", "a capital letter"),
        ("NoSpecial123", "a special character"),
        ("abc", "a capital letter, a special character"),
    ] {
        let page = attempt(&mut browser, password, password).await;
        assert_eq!(page.status, 400, "{password}: {}", page.body);
        page.assert_page_headers();
        assert!(page.body.contains(expected), "{password}: {}", page.body);
        assert!(page.body.contains("id=\"password-error\""), "{}", page.body);
        // What was typed stays (escaped), except the passwords.
        page.assert_escaped();
        assert!(page.body.contains("value=\"grace@example.org\""));
        assert!(!page.body.contains(&format!("value=\"{password}\"")));
    }
    let long = format!("A!{}", "x".repeat(127));
    let page = attempt(&mut browser, &long, &long).await;
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("at most 128 characters"),
        "{}",
        page.body
    );
    let page = attempt(&mut browser, PASSWORD, "Other-Password-1").await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("The passwords do not match."));

    let fields = [
        ("name", "  "),
        ("organization", ""),
        ("email", "not-an-address"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let page = browser
        .submit("/developer/signup", "/developer/signup", &fields)
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("Enter your name."));
    assert!(page.body.contains("Enter an e-mail address like"));
    assert!(page.body.contains("id=\"email-error\""));
    // Nothing was created: the address cannot sign in.
    let signin = browser.sign_in("grace@example.org", PASSWORD).await;
    assert_eq!(signin.status, 401);

    // Password guessing is throttled per address, as on the EHR sign-in.
    for _ in 0..4 {
        let guess = browser.sign_in("grace@example.org", "Guess-Word-1").await;
        assert_eq!(guess.status, 401);
    }
    let throttled = browser.sign_in("grace@example.org", "Guess-Word-1").await;
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    assert!(throttled.body.contains("Too many failed sign-ins"));
    assert!(throttled.body.contains("value=\"grace@example.org\""));
}

async fn duplicate_email_is_neutral(backend: Backend) {
    let Some((server, sink)) = with_smtp(backend).await else {
        return;
    };
    let email = "lin@example.org";
    let mut browser = Browser::new(&server);
    let first = browser.sign_up("Lin", "Acme", email, PASSWORD).await;
    assert_eq!(first.status, 200);
    // Again before verifying (another password): the same answer, and a new link.
    let second = browser
        .sign_up("Mallory", "Evil", "LIN@example.org", "Other-Password-2")
        .await;
    assert_eq!(second.status, 200);
    assert_eq!(first.body, second.body);
    let relink = sink.wait_for(email, 2).await;
    assert_eq!(relink.subject, "Verify your Kiln developer account");
    assert!(relink.body.starts_with("Hello Lin,"), "{}", relink.body);
    let verified = browser.get(&link(&relink.body, "/developer/verify")).await;
    assert_eq!(verified.status, 200);

    // Once verified, a sign-up with the address tells its owner by mail; nothing changes.
    let third = browser
        .sign_up("Mallory", "Evil", email, "Other-Password-2")
        .await;
    assert_eq!(third.status, 200);
    assert!(third.body.contains("Check your mail"));
    let told = sink.wait_for(email, 3).await;
    assert_eq!(told.subject, "Your Kiln developer account");
    assert!(told.body.contains("already has one"), "{}", told.body);
    assert!(!told.body.contains("token="), "{}", told.body);
    assert_eq!(browser.sign_in(email, "Other-Password-2").await.status, 401);
    assert_eq!(browser.sign_in(email, PASSWORD).await.status, 303);
    let home = browser.get("/developer").await;
    assert!(home.body.contains("Lin") && home.body.contains("Acme"));
    assert!(!home.body.contains("Mallory"));

    // At most 5 messages an hour go to one address; past that the answer stays the same.
    for _ in 0..3 {
        let page = browser
            .submit("/developer/reset", "/developer/reset", &[("email", email)])
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
    assert_eq!(sink.messages_to(email).len(), 5);
}

async fn password_reset(backend: Backend) {
    let Some((server, sink)) = with_smtp(backend).await else {
        return;
    };
    let email = "kim@example.org";
    verified_account(&server, &sink, email).await;
    // Signed in elsewhere: that session ends with the reset.
    let mut elsewhere = Browser::new(&server);
    assert_eq!(elsewhere.sign_in(email, PASSWORD).await.status, 303);
    assert_eq!(elsewhere.get("/developer").await.status, 200);

    let mut browser = Browser::new(&server);
    let reset = browser.get("/developer/reset").await;
    reset.assert_page_headers();
    // An unknown address gets the same answer, and no mail.
    let unknown = browser
        .submit(
            "/developer/reset",
            "/developer/reset",
            &[("email", "nobody@example.org")],
        )
        .await;
    assert_eq!(unknown.status, 200);
    let known = browser
        .submit(
            "/developer/reset",
            "/developer/reset",
            &[("email", "KIM@example.org")],
        )
        .await;
    assert_eq!(known.status, 200);
    assert_eq!(unknown.body, known.body);
    assert!(sink.messages_to("nobody@example.org").is_empty());
    let bad = browser
        .submit("/developer/reset", "/developer/reset", &[("email", "kim@")])
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("id=\"email-error\""));

    let mail = sink.wait_for(email, 2).await;
    assert_eq!(mail.subject, "Reset your Kiln developer password");
    assert!(mail.body.contains("1 hour"));
    let reset_link = link(&mail.body, "/developer/reset/new");
    let form = browser.get(&reset_link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    form.assert_page_headers();
    assert!(form.body.contains(email));
    let token = form.hidden("token");
    let csrf = form.hidden("csrf_token");
    let weak = browser
        .post(
            "/developer/reset/new",
            &[
                ("csrf_token", &csrf),
                ("token", &token),
                ("password", "weakpassword"),
                ("confirm", "weakpassword"),
            ],
        )
        .await;
    assert_eq!(weak.status, 400, "{}", weak.body);
    assert!(weak.body.contains("a capital letter"), "{}", weak.body);
    let new_password = "New-Password-9";
    let changed = browser
        .post(
            "/developer/reset/new",
            &[
                ("csrf_token", &csrf),
                ("token", &token),
                ("password", new_password),
                ("confirm", new_password),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(changed.body.contains("Password changed"));
    // The link works once; the other session has ended; only the new password works.
    assert_eq!(browser.get(&reset_link).await.status, 400);
    let reuse = browser
        .post(
            "/developer/reset/new",
            &[
                ("csrf_token", &csrf),
                ("token", &token),
                ("password", "Third-Password-3"),
                ("confirm", "Third-Password-3"),
            ],
        )
        .await;
    assert_eq!(reuse.status, 400);
    assert_eq!(elsewhere.get("/developer").await.status, 303);
    assert_eq!(browser.sign_in(email, PASSWORD).await.status, 401);
    assert_eq!(browser.sign_in(email, new_password).await.status, 303);
}

/// Ages every mailed link of the server's database past its expiry.
async fn expire_links(server: &Server) {
    let sql = "UPDATE developer_links SET expires_at = 1";
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

async fn links_expire(backend: Backend) {
    let Some((server, sink)) = with_smtp(backend).await else {
        return;
    };
    let email = "max@example.org";
    let mut browser = Browser::new(&server);
    browser.sign_up("Max", "", email, PASSWORD).await;
    let verify_link = link(&sink.wait_for(email, 1).await.body, "/developer/verify");
    expire_links(&server).await;
    let expired = browser.get(&verify_link).await;
    assert_eq!(expired.status, 400, "{}", expired.body);
    assert_eq!(browser.sign_in(email, PASSWORD).await.status, 403);

    // A fresh link works; an expired reset link does not.
    browser.sign_up("Max", "", email, PASSWORD).await;
    let fresh = link(&sink.wait_for(email, 2).await.body, "/developer/verify");
    assert_eq!(browser.get(&fresh).await.status, 200);
    browser
        .submit("/developer/reset", "/developer/reset", &[("email", email)])
        .await;
    let reset_link = link(&sink.wait_for(email, 3).await.body, "/developer/reset/new");
    let form = browser.get(&reset_link).await;
    assert_eq!(form.status, 200);
    expire_links(&server).await;
    assert_eq!(browser.get(&reset_link).await.status, 400);
    let late = browser
        .post(
            "/developer/reset/new",
            &[
                ("csrf_token", &form.hidden("csrf_token")),
                ("token", &form.hidden("token")),
                ("password", "Late-Password-1"),
                ("confirm", "Late-Password-1"),
            ],
        )
        .await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert_eq!(browser.sign_in(email, PASSWORD).await.status, 303);
}

async fn forms_need_their_csrf_token(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut browser = Browser::new(&server);
    browser.get("/developer/signup").await;
    let fields = [
        ("name", "Eve"),
        ("organization", ""),
        ("email", "eve@example.org"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    for action in [
        "/developer/signup",
        "/developer/signin",
        "/developer/signout",
        "/developer/reset",
        "/developer/reset/new",
        "/developer/verify/resend",
    ] {
        // No token, a wrong token, and no session at all.
        let missing = browser.post(action, &fields).await;
        assert_eq!(missing.status, 403, "{action}: {}", missing.body);
        missing.assert_page_headers();
        let mut wrong = vec![("csrf_token", "forged")];
        wrong.extend_from_slice(&fields);
        assert_eq!(browser.post(action, &wrong).await.status, 403, "{action}");
        let mut stranger = Browser::new(&server);
        assert_eq!(stranger.post(action, &wrong).await.status, 403, "{action}");
    }
    assert!(!server.log().contains("developer/verify?token="));
}

async fn without_smtp_the_link_is_logged(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut browser = Browser::new(&server);
    let done = browser
        .sign_up("Noor", "", "noor@example.org", PASSWORD)
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let log = server.log();
    let logged = link(&log, "/developer/verify");
    assert!(log.contains("noor@example.org"), "{log}");
    assert!(!log.contains(PASSWORD), "the password is never logged");
    assert_eq!(browser.get(&logged).await.status, 200);
    assert_eq!(
        browser.sign_in("noor@example.org", PASSWORD).await.status,
        303
    );
}

async fn unreachable_smtp_is_a_clear_error(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let closed = format!("smtp://127.0.0.1:{}", free_port());
    let server = Server::start_on_with_env(db, &[], &[("KILN_SMTP_URL", &closed)]).await;
    let mut browser = Browser::new(&server);
    let page = browser
        .sign_up("Omar", "", "omar@example.org", PASSWORD)
        .await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("Could not send mail"), "{}", page.body);
    assert!(page.body.contains("try again"), "{}", page.body);
    page.assert_page_headers();
    assert!(server.log().contains("portal mail not sent"));
    // The server is fine; the form can be sent again.
    assert_eq!(browser.get("/developer/signup").await.status, 200);
}
