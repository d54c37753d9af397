//! A developer's apps in the portal, driven like a browser: a draft, edited and submitted,
//! sent back by an admin (`kiln app request-changes`) with the reason shown, resubmitted and
//! approved; the client id, the first secret generated and shown once, working at the OAuth
//! endpoints, rotated with an overlap; an edit of the active app as a new revision; retiring.
//! The form's checks through the real form (multipart with the logo), the logo route, other
//! developers and forged posts refused, hostile names escaped (also on the sign-in and
//! consent pages), and on a sandbox the Postman callbacks and the JWKS URL check.

use regex::Regex;

use crate::backend_tests;
use crate::common::portal::*;
use crate::common::smart::{self, Answers};
use crate::common::*;

backend_tests!(
    review_cycle_and_credentials,
    form_checks_and_logos,
    other_developers_and_forged_posts,
    hostile_names_are_escaped,
    sandbox_postman_and_jwks,
);

const REDIRECT: &str = "https://app.acme-health.com/callback";
const HOSTILE_NAME: &str = "<script>alert('name')</script>";
const HOSTILE_DESCRIPTION: &str = "\"><img src=x onerror=alert(1)>";
const TERMS: &str = "Acme Health operator terms: be kind to the data.";

/// Fields of `request` to change: (name, value).
type Changes = &'static [(&'static str, &'static str)];

/// A PNG's signature and enough bytes to be a logo for the checks.
fn png(size: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(size, 7);
    bytes
}

/// A complete request for a confidential-symmetric patient app, with `changes` applied
/// (a field set to "" is left out; `scopes` is a space-separated list).
fn request(name: &str, changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut fields: Vec<(&'static str, String)> = vec![
        ("audience", "patient".into()),
        ("purpose", "Shows patients their lab results".into()),
        ("intended_users", "Patients of the clinic".into()),
        ("contact_name", "Ada".into()),
        ("contact_email", "ada@acme-health.com".into()),
        ("name", name.into()),
        ("description", "Charts lab results".into()),
        ("app_url", "https://app.acme-health.com".into()),
        ("privacy_url", "https://app.acme-health.com/privacy".into()),
        ("client_type", "confidential-symmetric".into()),
        ("redirect_uris", REDIRECT.into()),
        ("refresh_tokens", "no".into()),
        ("scope_version", "v2".into()),
        ("scopes", "launch/patient".into()),
        ("scopes", "openid".into()),
        ("scopes", "fhirUser".into()),
        ("scopes", "patient/*.rs".into()),
        ("sites", "Main Street clinic".into()),
        ("accepted_terms", "yes".into()),
    ];
    for (name, value) in changes {
        fields.retain(|(field, _)| field != name);
        if *name == "scopes" {
            fields.extend(value.split_whitespace().map(|v| ("scopes", v.to_string())));
        } else if !value.is_empty() {
            fields.push((name, value.to_string()));
        }
    }
    fields
}

/// Posts the registration form found at `page_path` to `action` (multipart, with its CSRF
/// token), with `intent` (`save` or `submit`) and maybe a logo file.
async fn post_form(
    browser: &mut Browser<'_>,
    page_path: &str,
    action: &str,
    fields: &[(&'static str, String)],
    intent: &str,
    logo: Option<Part<'_>>,
) -> Page {
    let page = browser.get(page_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.hidden("csrf_token");
    let mut parts = vec![Part::Text("csrf_token", &csrf)];
    for (name, value) in fields {
        parts.push(Part::Text(name, value));
    }
    parts.push(Part::Text("intent", intent));
    if let Some(logo) = logo {
        parts.push(logo);
    }
    browser.post_multipart(action, &parts).await
}

/// The app id a redirect to its page names.
fn app_id_of(page: &Page) -> String {
    let location = page.location();
    let found = Regex::new(r"/developer/apps/([0-9a-f-]{36})")
        .unwrap()
        .captures(location)
        .unwrap_or_else(|| panic!("no app in {location}"));
    found[1].to_string()
}

/// Posts one of the app page's forms (`submit`, `secret`, `rotate`, `retire`, `postman`).
async fn act(
    browser: &mut Browser<'_>,
    app_id: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> Page {
    let path = format!("/developer/apps/{app_id}");
    let page = browser.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.hidden("csrf_token");
    let mut fields = vec![("csrf_token", csrf.as_str())];
    fields.extend_from_slice(extra);
    browser.post(&format!("{path}/{action}"), &fields).await
}

/// The secret on the page that shows it once.
fn shown_secret(page: &Page) -> String {
    let found = Regex::new(r#"id="client-secret" class="secret" value="([^"]+)""#)
        .unwrap()
        .captures(&page.body)
        .unwrap_or_else(|| panic!("no secret shown: {}", page.body));
    found[1].to_string()
}

/// Client authentication at the introspection endpoint: 200 when the secret is good.
async fn introspect_status(server: &Server, client_id: &str, secret: &str) -> u16 {
    server
        .client
        .post(format!("{}/auth/introspect", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("token", "not-a-token"),
                ])
                .finish(),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The text of the error shown next to `field` on a form page.
fn field_error(page: &Page, field: &str) -> String {
    let found = Regex::new(&format!(
        r#"<p class="error" id="{field}-error">([^<]*)</p>"#
    ))
    .unwrap()
    .captures(&page.body)
    .unwrap_or_else(|| panic!("no error next to {field}: {}", page.body));
    unescape(&found[1])
}

async fn production_server(backend: Backend) -> Option<(Server, crate::common::smtp::SmtpSink)> {
    let (server, sink) = with_smtp_and(backend, &["--max-body-bytes", "400000"], &[]).await?;
    server.import(&[json!({"resourceType": "Patient", "id": "p1",
                           "name": [{"given": ["Amy"], "family": "Shaw"}]})]);
    server.add_users(&[("alice", "Patient/p1")]);
    Some((server, sink))
}

async fn review_cycle_and_credentials(backend: Backend) {
    let Some((server, sink)) = production_server(backend).await else {
        return;
    };
    let mut dev = signed_in_developer(&server, &sink, "ada@acme-health.com").await;
    let home = dev.get("/developer").await;
    assert!(
        home.body.contains("href=\"/developer/apps/new\""),
        "{}",
        home.body
    );
    assert!(home.body.contains("You have not registered an app yet"));

    // A draft needs only a name.
    let new = "/developer/apps/new";
    let fields = vec![("name", "Lab Viewer".to_string())];
    let saved = post_form(&mut dev, new, new, &fields, "save", None).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let app_id = app_id_of(&saved);
    let page_path = format!("/developer/apps/{app_id}");
    let edit_path = format!("{page_path}/edit");
    let page = dev.get(&page_path).await;
    page.assert_page_headers();
    assert!(page.body.contains(">DRAFT<"), "{}", page.body);
    let home = dev.get("/developer").await;
    assert!(home.body.contains(&page_path) && home.body.contains("Lab Viewer"));

    // Edited into a complete request and submitted.
    let edit = dev.get(&edit_path).await;
    assert!(edit.body.contains("value=\"Lab Viewer\""), "{}", edit.body);
    assert!(edit.body.contains("<label for=\"redirect_uris\">"));
    let fields = request("Lab Viewer", &[]);
    let submitted = post_form(&mut dev, &edit_path, &edit_path, &fields, "submit", None).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    assert!(submitted.location().ends_with("done=submitted"));
    let page = dev.get(&page_path).await;
    assert!(page.body.contains(">PENDING REVIEW<"), "{}", page.body);
    // Under review: no editing.
    assert_eq!(dev.get(&edit_path).await.status, 409);

    // An admin sends it back; the developer sees why.
    let reason = "Add the URL of your terms of use";
    server.kiln(&["app", "request-changes", &app_id, "--reason", reason]);
    let page = dev.get(&page_path).await;
    assert!(page.body.contains(">CHANGES REQUESTED<"), "{}", page.body);
    assert!(page.body.contains(reason), "{}", page.body);
    assert!(page.body.contains("the operator"), "{}", page.body);

    let fields = request(
        "Lab Viewer",
        &[("terms_url", "https://app.acme-health.com/terms")],
    );
    let resubmitted = post_form(&mut dev, &edit_path, &edit_path, &fields, "submit", None).await;
    assert_eq!(resubmitted.status, 303, "{}", resubmitted.body);
    let approved = server.kiln(&["app", "approve", &app_id]);
    assert!(
        approved.get("client_secret").is_none_or(Value::is_null),
        "a developer's app gets its secret on its page, not at approval: {approved}"
    );
    let client_id = approved["client_id"].as_str().unwrap().to_string();

    let page = dev.get(&page_path).await;
    assert!(page.body.contains(">ACTIVE<"), "{}", page.body);
    assert!(page.body.contains(&client_id));
    assert!(page.body.contains("Generate client secret"));
    assert!(page.body.contains("https://app.acme-health.com/terms"));

    // The first secret: shown once, stored hashed, working at the OAuth endpoints.
    let shown = act(&mut dev, &app_id, "secret", &[]).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.headers["cache-control"], "no-store");
    let secret = shown_secret(&shown);
    let again = dev.get(&page_path).await;
    assert!(
        !again.body.contains(&secret),
        "the secret is shown once only"
    );
    assert!(again.body.contains("Rotate secret"));
    assert_eq!(act(&mut dev, &app_id, "secret", &[]).await.status, 409);
    assert_eq!(introspect_status(&server, &client_id, &secret).await, 200);
    assert_eq!(introspect_status(&server, &client_id, "wrong").await, 401);
    let app = smart::App {
        client_id: client_id.clone(),
        secret: Some(secret.clone()),
        redirect_uri: REDIRECT.into(),
    };
    let token = smart::authorize(
        &server,
        &app,
        "launch/patient openid fhirUser patient/*.rs",
        None,
        &Answers::allow("alice", "pw-1"),
    )
    .await
    .expect("the code flow with the generated secret");
    let read = server
        .client
        .get(format!("{}/Patient/p1", server.fhir))
        .bearer_auth(smart::access_token(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);

    // Rotation with an hour's overlap: both work; then at once: only the newest.
    let rotated = act(&mut dev, &app_id, "rotate", &[("keep_old_for", "3600")]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let second = shown_secret(&rotated);
    assert_ne!(second, secret);
    assert!(rotated.body.contains("previous secret keeps working until"));
    assert_eq!(introspect_status(&server, &client_id, &secret).await, 200);
    assert_eq!(introspect_status(&server, &client_id, &second).await, 200);
    let page = dev.get(&page_path).await;
    assert!(page.body.contains("still works until"), "{}", page.body);
    let bad_choice = act(&mut dev, &app_id, "rotate", &[("keep_old_for", "99")]).await;
    assert_eq!(bad_choice.status, 400);
    let third = shown_secret(&act(&mut dev, &app_id, "rotate", &[("keep_old_for", "0")]).await);
    assert_eq!(introspect_status(&server, &client_id, &second).await, 401);
    assert_eq!(introspect_status(&server, &client_id, &secret).await, 401);
    assert_eq!(introspect_status(&server, &client_id, &third).await, 200);

    // Editing the active app: a new revision for review; the approved one keeps working.
    let fields = request(
        "Lab Viewer",
        &[
            ("terms_url", "https://app.acme-health.com/terms"),
            ("description", "Charts lab results, now with trends"),
        ],
    );
    let edited = post_form(&mut dev, &edit_path, &edit_path, &fields, "submit", None).await;
    assert_eq!(edited.status, 303, "{}", edited.body);
    let page = dev.get(&page_path).await;
    assert!(page.body.contains(">ACTIVE<"), "{}", page.body);
    assert!(page.body.contains("Approved request") && page.body.contains("New revision"));
    assert!(
        page.body.contains("now with trends") && page.body.contains("waiting for review"),
        "{}",
        page.body
    );
    let home = dev.get("/developer").await;
    assert!(
        home.body.contains("a new revision is waiting for review"),
        "{}",
        home.body
    );
    assert_eq!(introspect_status(&server, &client_id, &third).await, 200);

    // Retiring, by the developer: the client stops.
    let unconfirmed = act(&mut dev, &app_id, "retire", &[]).await;
    assert_eq!(unconfirmed.status, 400);
    let retired = act(&mut dev, &app_id, "retire", &[("confirm", "yes")]).await;
    assert_eq!(retired.status, 303, "{}", retired.body);
    let page = dev.get(&page_path).await;
    assert!(page.body.contains(">RETIRED<"), "{}", page.body);
    assert_eq!(introspect_status(&server, &client_id, &third).await, 401);
}

async fn form_checks_and_logos(backend: Backend) {
    let Some(terms) = tempfile::NamedTempFile::new().ok() else {
        return;
    };
    std::fs::write(terms.path(), format!("# Terms\n\n{TERMS}\n\n<b>raw</b>\n")).unwrap();
    let terms_path = terms.path().to_str().unwrap().to_string();
    let Some((server, sink)) = with_smtp_and(
        backend,
        &["--max-body-bytes", "400000"],
        &[("KILN_OPERATOR_TERMS_FILE", &terms_path)],
    )
    .await
    else {
        return;
    };
    let mut dev = signed_in_developer(&server, &sink, "grace@acme-health.com").await;
    let new = "/developer/apps/new";
    let form = dev.get(new).await;
    form.assert_page_headers();
    assert!(form.body.contains(TERMS), "the operator's terms are shown");
    assert!(
        !form.body.contains("<b>raw</b>"),
        "raw HTML in the terms is text"
    );
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    for field in [
        "name",
        "description",
        "logo_file",
        "purpose",
        "intended_users",
        "sites",
        "contact_name",
        "contact_email",
        "app_url",
        "privacy_url",
        "terms_url",
        "logout_url",
        "jwks_uri",
        "jwks",
        "redirect_uris",
        "launch_url",
        "extra_scopes",
    ] {
        assert!(
            form.body.contains(&format!("<label for=\"{field}\"")),
            "no label for {field}"
        );
    }
    assert!(form.body.contains("value=\"patient/Observation.rs\""));

    // Each problem next to its field, with what was typed kept; nothing is created.
    let cases: [(Changes, &str, &str); 4] = [
        (
            &[("redirect_uris", "https://localhost:3000/callback")],
            "redirect_uris",
            "not allowed in production",
        ),
        (
            &[(
                "scopes",
                "launch/patient patient/Observation.read patient/Condition.rs",
            )],
            "scopes",
            "mixed SMART v1",
        ),
        (
            &[("scopes", "launch/patient system/*.rs")],
            "scopes",
            "a patient app may ask only for patient/ scopes",
        ),
        (
            &[("accepted_terms", "")],
            "accepted_terms",
            "accept the terms",
        ),
    ];
    for (changes, field, message) in cases {
        let fields = request("Checked App", changes);
        let page = post_form(&mut dev, new, new, &fields, "submit", None).await;
        assert_eq!(page.status, 400, "{field}: {}", page.body);
        assert!(
            field_error(&page, field).contains(message),
            "{field}: {}",
            page.body
        );
        assert!(
            page.body.contains("value=\"Checked App\""),
            "typed values are kept"
        );
        assert!(page.body.contains("Your changes are saved as a draft"));
    }
    let typed = request(
        "Checked App",
        &[("redirect_uris", "http://localhost:3000/callback")],
    );
    let page = post_form(&mut dev, new, new, &typed, "submit", None).await;
    assert!(
        page.body
            .contains("http://localhost:3000/callback</textarea>")
    );

    // Logos: SVG refused even when named .png; over 256 KiB refused; a PNG stored and served.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let fields = vec![("name", "Logo App".to_string())];
    let refused = post_form(
        &mut dev,
        new,
        new,
        &fields,
        "save",
        Some(Part::File {
            name: "logo_file",
            file_name: "logo.png",
            content_type: "image/png",
            bytes: svg.to_vec(),
        }),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        field_error(&refused, "logo").contains("SVG"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"Logo App\""));
    let big = post_form(
        &mut dev,
        new,
        new,
        &fields,
        "save",
        Some(Part::File {
            name: "logo_file",
            file_name: "big.png",
            content_type: "image/png",
            bytes: png(300 * 1024),
        }),
    )
    .await;
    assert_eq!(big.status, 400, "{}", big.body);
    assert!(
        field_error(&big, "logo").contains("at most 256 KiB"),
        "{}",
        big.body
    );
    // Over the server's body limit: a page saying so, not a bare 413. The server answers from
    // the declared length, before any of the body: only the head is sent, so the answer cannot
    // race a client still writing a body the server will never read.
    let huge = over_the_body_limit(&server, new, 600 * 1024).await;
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    let (head, body) = huge.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{head}"
    );
    assert!(body.contains("too large"), "{body}");

    let logo = png(2048);
    let saved = post_form(
        &mut dev,
        new,
        new,
        &fields,
        "save",
        Some(Part::File {
            name: "logo_file",
            file_name: "logo.png",
            content_type: "application/octet-stream",
            bytes: logo.clone(),
        }),
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let app_id = app_id_of(&saved);
    let page = dev.get(&format!("/developer/apps/{app_id}")).await;
    let digest = Regex::new(r#"src="/apps/logo/([0-9a-f]{64})""#)
        .unwrap()
        .captures(&page.body)
        .unwrap_or_else(|| panic!("no logo: {}", page.body))[1]
        .to_string();
    let served = server
        .client
        .get(format!("{}/apps/logo/{digest}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    assert_eq!(served.bytes().await.unwrap().to_vec(), logo);
    let bad_names = ["ABC".to_string(), digest.to_uppercase(), "0".repeat(64)];
    for bad in &bad_names {
        let status = server
            .client
            .get(format!("{}/apps/logo/{bad}", server.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{bad}");
    }
    // The logo survives an edit that does not upload a new one.
    let edit_path = format!("/developer/apps/{app_id}/edit");
    let edit = dev.get(&edit_path).await;
    assert!(edit.body.contains(&digest));
}

async fn other_developers_and_forged_posts(backend: Backend) {
    let Some((server, sink)) = production_server(backend).await else {
        return;
    };
    let mut owner = signed_in_developer(&server, &sink, "owner@acme-health.com").await;
    let new = "/developer/apps/new";
    let fields = vec![("name", "Mine".to_string())];
    let app_id = app_id_of(&post_form(&mut owner, new, new, &fields, "save", None).await);
    let page_path = format!("/developer/apps/{app_id}");

    let mut other = signed_in_developer(&server, &sink, "other@acme-health.com").await;
    assert_eq!(other.get(&page_path).await.status, 404);
    assert_eq!(other.get(&format!("{page_path}/edit")).await.status, 404);
    assert_eq!(other.get("/developer/apps/no-such-app").await.status, 404);
    let home = other.get("/developer").await;
    assert!(!home.body.contains(&app_id));
    let csrf = other.get("/developer").await.hidden("csrf_token");
    for action in ["submit", "secret", "rotate", "retire", "postman"] {
        let posted = other
            .post(
                &format!("{page_path}/{action}"),
                &[
                    ("csrf_token", &csrf),
                    ("confirm", "yes"),
                    ("keep_old_for", "0"),
                ],
            )
            .await;
        assert_eq!(posted.status, 404, "{action}");
    }
    let edit = format!("{page_path}/edit");
    let posted = other
        .post_multipart(
            &edit,
            &[
                Part::Text("csrf_token", &csrf),
                Part::Text("name", "Stolen"),
                Part::Text("intent", "save"),
            ],
        )
        .await;
    assert_eq!(posted.status, 404);
    assert!(owner.get(&page_path).await.body.contains("Mine"));
    assert!(!owner.get(&page_path).await.body.contains("Stolen"));

    // Without the CSRF token (or with another session's): 403.
    let forged = owner
        .post_multipart(
            new,
            &[Part::Text("name", "Forged"), Part::Text("intent", "save")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let forged = owner
        .post_multipart(
            &edit,
            &[
                Part::Text("csrf_token", &csrf),
                Part::Text("name", "Forged"),
                Part::Text("intent", "save"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    let forged = owner
        .post(&format!("{page_path}/retire"), &[("confirm", "yes")])
        .await;
    assert_eq!(forged.status, 403);
    assert!(owner.get(&page_path).await.body.contains(">DRAFT<"));
    // Not signed in: the pages send to sign-in.
    let mut stranger = Browser::new(&server);
    assert_eq!(stranger.get(&page_path).await.status, 303);
    assert_eq!(stranger.get(new).await.status, 303);
}

async fn hostile_names_are_escaped(backend: Backend) {
    let Some((server, sink)) = production_server(backend).await else {
        return;
    };
    let mut dev = signed_in_developer(&server, &sink, "mallory@acme-health.com").await;
    let new = "/developer/apps/new";
    let mut fields = request(HOSTILE_NAME, &[]);
    fields.retain(|(name, _)| *name != "description" && *name != "client_type");
    fields.push(("description", HOSTILE_DESCRIPTION.into()));
    fields.push(("client_type", "public".into()));
    fields.push(("terms_url", "https://app.acme-health.com/terms".into()));
    let logo = Part::File {
        name: "logo_file",
        file_name: "logo.jpg",
        content_type: "image/jpeg",
        bytes: [b"\xff\xd8\xff\xe0".as_slice(), &[1; 100]].concat(),
    };
    let submitted = post_form(&mut dev, new, new, &fields, "submit", Some(logo)).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let app_id = app_id_of(&submitted);
    let approved = server.kiln(&["app", "approve", &app_id]);
    let client_id = approved["client_id"].as_str().unwrap().to_string();

    let assert_escaped = |page: &str, what: &str| {
        assert!(!page.contains("<script>alert"), "{what}: {page}");
        assert!(!page.contains("<img src=x"), "{what}: {page}");
        assert!(unescape(page).contains(HOSTILE_NAME), "{what}: {page}");
    };
    let page_path = format!("/developer/apps/{app_id}");
    for path in [
        "/developer".to_string(),
        page_path.clone(),
        format!("{page_path}/edit"),
    ] {
        let page = dev.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_escaped(&page.body, &path);
    }
    let page = dev.get(&page_path).await;
    assert!(unescape(&page.body).contains(HOSTILE_DESCRIPTION));

    // The sign-in and consent pages of an authorization show the app's card, escaped.
    let app = smart::App {
        client_id,
        secret: None,
        redirect_uri: REDIRECT.into(),
    };
    let url = format!(
        "{}/auth/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=s1&aud={}&code_challenge={}&code_challenge_method=S256",
        server.base,
        app.client_id,
        urlencode(REDIRECT),
        urlencode("launch/patient openid fhirUser patient/*.rs"),
        urlencode(&server.fhir),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );
    let mut browser = smart::Browser::new();
    let smart::Page::Html {
        body: login,
        url: at,
        ..
    } = browser.fetch(&server, url, None).await
    else {
        panic!("no sign-in page");
    };
    assert_escaped(&login, "sign-in");
    assert!(login.contains("src=\"/apps/logo/"), "{login}");
    let form = smart::Form::parse(&login).unwrap();
    let fields = form.fill(&Answers::allow("alice", "pw-1"));
    let action = reqwest::Url::parse(&at)
        .unwrap()
        .join(&form.action)
        .unwrap();
    let smart::Page::Html {
        body: consent,
        status,
        ..
    } = browser
        .fetch(&server, action.to_string(), Some(fields))
        .await
    else {
        panic!("no consent page");
    };
    assert_eq!(status, 200, "{consent}");
    assert!(
        consent.contains("name=\"decision\""),
        "the consent page: {consent}"
    );
    assert_escaped(&consent, "consent");
    assert!(consent.contains("src=\"/apps/logo/"), "{consent}");
    for href in [
        "https://app.acme-health.com",
        "https://app.acme-health.com/privacy",
        "https://app.acme-health.com/terms",
    ] {
        let link = format!("href=\"{href}\" rel=\"noopener noreferrer\"");
        assert!(consent.contains(&link), "{link}: {consent}");
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn sandbox_postman_and_jwks(backend: Backend) {
    let Some((server, sink)) = with_smtp_and(backend, &["--sandbox"], &[]).await else {
        return;
    };
    let mut dev = signed_in_developer(&server, &sink, "sam@acme-health.com").await;
    let new = "/developer/apps/new";
    let fields = request(
        "Sandbox App",
        &[
            ("redirect_uris", "http://localhost:3000/callback"),
            ("client_type", "public"),
        ],
    );
    let submitted = post_form(&mut dev, new, new, &fields, "submit", None).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    assert!(
        submitted.location().ends_with("done=approved"),
        "the sandbox approves at once"
    );
    let app_id = app_id_of(&submitted);
    let page_path = format!("/developer/apps/{app_id}");
    let page = dev.get(&page_path).await;
    assert!(page.body.contains(">ACTIVE<"), "{}", page.body);
    assert!(
        page.body.contains("Add Postman&#39;s callback URLs")
            || page.body.contains("Add Postman's callback URLs")
    );

    let added = act(&mut dev, &app_id, "postman", &[]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let shown = server.kiln(&["app", "show", &app_id]);
    let client_id = shown["client_id"].as_str().unwrap();
    for uri in [
        "https://oauth.pstmn.io/v1/callback",
        "https://oauth.pstmn.io/v1/browser-callback",
        "https://www.getpostman.com/oauth2/callback",
        "http://localhost:3000/callback",
    ] {
        assert!(shown.to_string().contains(uri), "{uri}: {shown}");
    }
    let page = dev.get(&page_path).await;
    assert!(page.body.contains(">ACTIVE<") && page.body.contains(client_id));
    assert!(
        !page.body.contains("Add Postman"),
        "once added, the button goes"
    );

    // A key-pair app: the JWK Set URL is fetched at submission.
    let fields = request(
        "Key App",
        &[
            ("redirect_uris", "http://localhost:3000/callback"),
            ("client_type", "confidential-asymmetric"),
        ],
    );
    let mut fields = fields;
    let missing = format!("{}/no-such-jwks.json", server.base);
    fields.push(("jwks_uri", missing));
    let refused = post_form(&mut dev, new, new, &fields, "submit", None).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        field_error(&refused, "jwks_uri").contains("404"),
        "{}",
        refused.body
    );
}

/// The answer to a multipart POST of `path` whose head declares `length` bytes of body, none
/// of which is sent.
async fn over_the_body_limit(server: &Server, path: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; \
         boundary=x\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("an answer before the body")
    .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}
