//! The sandbox deployment (`kiln serve --sandbox`): the sample patients loaded (once), the
//! "Sandbox" notice on portal pages, each developer's test personas (their passwords shown by
//! the portal work at Kiln's login in a real SMART flow), apps registered for a developer by
//! `kiln app create --owner` approved at once, and the launch simulator: EHR launch and
//! standalone launch of the developer's app, and the simulator as the client showing the
//! token response decoded. Off the sandbox there is neither simulator nor personas.

use std::process::Command;

use regex::Regex;

use crate::backend_tests;
use crate::common::portal::{PASSWORD, verified_account, with_smtp_args};
use crate::common::smart::{self, Answers, App, Browser, Form, Page};
use crate::common::*;

backend_tests!(personas_sign_in_at_kiln);

mod sqlite_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simulator_launches_the_developers_app() {
        super::simulator_launches_the_developers_app(crate::common::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_simulator_or_personas_outside_a_sandbox() {
        super::no_simulator_or_personas_outside_a_sandbox(crate::common::Backend::Sqlite).await;
    }
}

/// A patient of the bundled sample (Synthea).
const SAMPLE_PATIENT: &str = "2be9b668-847a-4437-b33a-bdc38c665e08";
const APP_LAUNCH: &str = "http://127.0.0.1:9/launch";
const APP_REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A persona as the portal shows it.
#[derive(Debug, Clone, PartialEq)]
struct Persona {
    username: String,
    password: String,
}

/// The personas on a portal page: (patient, practitioner).
fn personas(body: &str) -> (Persona, Persona) {
    let username = Regex::new(r#"<code class="persona-username">([^<]+)</code>"#).unwrap();
    let password = Regex::new(r#"<code class="persona-password">([^<]+)</code>"#).unwrap();
    let found: Vec<Persona> = username
        .captures_iter(body)
        .zip(password.captures_iter(body))
        .map(|(u, p)| Persona {
            username: u[1].to_string(),
            password: p[1].to_string(),
        })
        .collect();
    assert_eq!(found.len(), 2, "two personas expected: {body}");
    let patient = found.iter().find(|p| p.username.starts_with("patient-"));
    let practitioner = found
        .iter()
        .find(|p| p.username.starts_with("practitioner-"));
    (patient.unwrap().clone(), practitioner.unwrap().clone())
}

/// A page's body, or a panic with where the browser ended up.
fn body(page: Page) -> (String, u16, String) {
    match page {
        Page::Html { url, status, body } => (url, status, body),
        Page::Left(url) => panic!("left Kiln for {url}"),
    }
}

fn hidden(body: &str, name: &str) -> String {
    let pattern = format!(r#"name="{name}" value="([^"]*)""#);
    Regex::new(&pattern)
        .unwrap()
        .captures(body)
        .unwrap_or_else(|| panic!("no {name}: {body}"))[1]
        .to_string()
}

/// Signs a developer in with the browser that will also run the SMART flows.
async fn sign_in(server: &Server, browser: &mut Browser, email: &str) -> String {
    let (_, _, page) = body(
        browser
            .fetch(server, format!("{}/developer/signin", server.base), None)
            .await,
    );
    let form = vec![
        ("csrf_token".to_string(), hidden(&page, "csrf_token")),
        ("email".to_string(), email.to_string()),
        ("password".to_string(), PASSWORD.to_string()),
    ];
    let (url, status, home) = body(
        browser
            .fetch(
                server,
                format!("{}/developer/signin", server.base),
                Some(form),
            )
            .await,
    );
    assert_eq!(status, 200, "{home}");
    assert!(url.ends_with("/developer"), "{url}");
    home
}

/// The developer's home page.
async fn home(server: &Server, browser: &mut Browser) -> String {
    let (_, status, page) = body(
        browser
            .fetch(server, format!("{}/developer", server.base), None)
            .await,
    );
    assert_eq!(status, 200, "{page}");
    page
}

/// The users `kiln user list` prints.
fn users(server: &Server) -> Vec<Value> {
    let output = Command::new(kiln_bin())
        .args(["user", "list"])
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The id of the resource a `Patient/ID` or `Practitioner/ID` reference names.
fn id_of(reference: &str) -> &str {
    reference.split_once('/').unwrap().1
}

fn user_of<'a>(users: &'a [Value], username: &str) -> &'a Value {
    users
        .iter()
        .find(|user| user["username"] == username)
        .unwrap_or_else(|| panic!("no user {username} in {users:?}"))
}

async fn personas_sign_in_at_kiln(backend: Backend) {
    let Some((mut server, sink)) = with_smtp_args(backend, &["--sandbox"]).await else {
        return;
    };
    // The sample data is loaded at start, and only once.
    assert!(server.log().contains("loading the bundled sample data"));
    server.restart().await;
    assert!(server.log().contains("sample data already loaded"));

    verified_account(&server, &sink, "ada@example.org").await;
    verified_account(&server, &sink, "bob@example.org").await;
    let mut ada = Browser::new();
    let page = sign_in(&server, &mut ada, "ada@example.org").await;
    assert!(page.contains("sandbox-notice"), "{page}");
    assert!(
        page.contains("apps are approved as soon as they are submitted"),
        "{page}"
    );
    assert!(page.contains("Test personas"), "{page}");
    let (patient, practitioner) = personas(&page);
    // Shown the same on every visit; stored hashed, not as shown.
    assert_eq!(
        personas(&home(&server, &mut ada).await),
        (patient.clone(), practitioner.clone())
    );
    let listed = users(&server);
    let patient_user = user_of(&listed, &patient.username);
    let practitioner_user = user_of(&listed, &practitioner.username);
    assert_eq!(patient_user["admin"], false);
    assert_eq!(practitioner_user["admin"], false);
    let patient_id = id_of(patient_user["fhir_user"].as_str().unwrap()).to_string();
    assert!(
        patient_user["fhir_user"]
            .as_str()
            .unwrap()
            .starts_with("Patient/")
    );
    assert!(
        practitioner_user["fhir_user"]
            .as_str()
            .unwrap()
            .starts_with("Practitioner/")
    );

    // Another developer gets other personas, linked to another sample patient.
    let mut bob = Browser::new();
    let (bob_patient, bob_practitioner) =
        personas(&sign_in(&server, &mut bob, "bob@example.org").await);
    assert_ne!(bob_patient.username, patient.username);
    assert_ne!(bob_patient.password, patient.password);
    assert_ne!(bob_practitioner.username, practitioner.username);
    let listed = users(&server);
    assert_ne!(
        user_of(&listed, &bob_patient.username)["fhir_user"],
        patient_user["fhir_user"]
    );

    // The patient persona signs in at Kiln's login in a standalone launch and reads its record.
    let app = App::register(
        &server,
        "public",
        "launch/patient openid fhirUser patient/*.rs",
        &[],
    );
    let scope = "launch/patient openid fhirUser patient/*.rs";
    let token = smart::authorize(
        &server,
        &app,
        scope,
        None,
        &Answers::allow(&patient.username, &patient.password),
    )
    .await
    .unwrap();
    assert_eq!(
        token.extra_fields().patient.as_deref(),
        Some(patient_id.as_str())
    );
    let read = server
        .client
        .get(server.url(&format!("Patient/{patient_id}")))
        .bearer_auth(smart::access_token(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    // A wrong password is refused.
    let refused = smart::authorize(
        &server,
        &app,
        scope,
        None,
        &Answers::allow(&patient.username, "Kiln-wrong"),
    )
    .await;
    assert!(refused.is_err());

    // The practitioner persona picks a patient.
    let mut answers = Answers::allow(&practitioner.username, &practitioner.password);
    answers.patient = Some(SAMPLE_PATIENT.to_string());
    let token = smart::authorize(&server, &app, scope, None, &answers)
        .await
        .unwrap();
    assert_eq!(
        token.extra_fields().patient.as_deref(),
        Some(SAMPLE_PATIENT)
    );
}

/// A public app request (patient scopes) with a launch URL.
fn app_request() -> Value {
    json!({
        "audience": "practitioner",
        "purpose": "Shows the chart",
        "intended_users": "Clinicians",
        "contact_name": "Ada",
        "contact_email": "ada@example.org",
        "name": "Chart <b>Viewer</b>",
        "description": "A chart",
        "app_url": "http://127.0.0.1:9/",
        "privacy_url": "http://127.0.0.1:9/privacy",
        "client_type": "public",
        "redirect_uris": [APP_REDIRECT],
        "launch_url": APP_LAUNCH,
        "refresh_tokens": false,
        "scope_version": "v1",
        "scopes": ["launch", "launch/patient", "openid", "fhirUser", "patient/*.read"],
        "accepted_terms": true,
    })
}

/// `kiln app create --request … --owner EMAIL`.
fn create_app(server: &Server, owner: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    std::fs::write(&path, app_request().to_string()).unwrap();
    server.kiln(&[
        "app",
        "create",
        "--request",
        path.to_str().unwrap(),
        "--owner",
        owner,
    ])
}

/// Posts the simulator's launch form; returns where Kiln sends the browser.
async fn launch(
    server: &Server,
    browser: &mut Browser,
    csrf: &str,
    fields: &[(&str, &str)],
) -> Page {
    let mut form = vec![("csrf_token".to_string(), csrf.to_string())];
    form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    browser
        .fetch(
            server,
            format!("{}/developer/simulator/launch", server.base),
            Some(form),
        )
        .await
}

async fn simulator_launches_the_developers_app(backend: Backend) {
    let Some((server, sink)) = with_smtp_args(backend, &["--sandbox"]).await else {
        return;
    };
    verified_account(&server, &sink, "ada@example.org").await;
    let mut browser = Browser::new();
    let (_, practitioner) = personas(&sign_in(&server, &mut browser, "ada@example.org").await);

    // An unknown owner is refused; the developer's app is approved at once in a sandbox.
    let output = Command::new(kiln_bin())
        .args([
            "app",
            "create",
            "--request",
            "/dev/null",
            "--owner",
            "nobody@example.org",
        ])
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let created = create_app(&server, "ada@example.org");
    assert_eq!(created["status"], "active", "{created}");
    let client_id = created["client_id"].as_str().unwrap().to_string();

    let simulator = format!("{}/developer/simulator", server.base);
    let (_, status, page) = body(browser.fetch(&server, simulator.clone(), None).await);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("sandbox-notice"));
    assert!(page.contains(&client_id), "{page}");
    assert!(
        page.contains("Chart &#60;b&#62;Viewer") || page.contains("Chart &lt;b&gt;Viewer"),
        "{page}"
    );
    assert!(!page.contains("<b>Viewer"), "escaped");
    // Patients found by name, as on the EHR page.
    let search = format!("{simulator}?client={client_id}&name=Castellanos");
    let (_, _, found) = body(browser.fetch(&server, search, None).await);
    assert!(found.contains(SAMPLE_PATIENT), "{found}");
    let chosen = format!("{simulator}?client={client_id}&patient={SAMPLE_PATIENT}");
    let (_, _, chosen) = body(browser.fetch(&server, chosen, None).await);
    assert!(chosen.contains("value=\"ehr\""), "{chosen}");
    let csrf = hidden(&chosen, "csrf_token");
    let encounter = Regex::new(r#"<option value="([^"]+)">[^<]*\(Encounter/"#)
        .unwrap()
        .captures(&chosen)
        .unwrap_or_else(|| panic!("no encounter: {chosen}"))[1]
        .to_string();

    // Without the CSRF token: refused.
    let (_, status, _) = body(
        browser
            .fetch(
                &server,
                format!("{}/developer/simulator/launch", server.base),
                Some(vec![
                    ("client_id".into(), client_id.clone()),
                    ("mode".into(), "ehr".into()),
                ]),
            )
            .await,
    );
    assert_eq!(status, 403);

    // EHR launch: to the app's launch URL with iss and launch.
    let fields = [
        ("client_id", client_id.as_str()),
        ("patient", SAMPLE_PATIENT),
        ("encounter", encounter.as_str()),
        ("mode", "ehr"),
    ];
    let Page::Left(target) = launch(&server, &mut browser, &csrf, &fields).await else {
        panic!("the EHR launch does not leave for the app");
    };
    assert!(target.starts_with(APP_LAUNCH), "{target}");
    let params = smart::query_params(&target);
    assert_eq!(params["iss"], server.fhir);
    let launch_id = params["launch"].clone();
    // Recorded: the personas made for ada (by ada), and the launch by her practitioner
    // persona, never with the launch token.
    let rows = crate::common::audit::rows(&server.db.url).await;
    let persona_made = rows.iter().find(|row| {
        row.subtype.as_deref() == Some("user-changed")
            && row.entity == Some(format!("user:{}", practitioner.username))
    });
    let persona_made = persona_made.unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(persona_made.agent_user.as_deref(), Some("ada@example.org"));
    assert!(
        persona_made.body["outcomeDesc"]
            .as_str()
            .unwrap()
            .contains("sandbox persona created, linked to Practitioner/")
    );
    let launched: Vec<_> = rows
        .iter()
        .filter(|row| row.subtype.as_deref() == Some("launch-created"))
        .collect();
    assert_eq!(launched.len(), 1, "{rows:?}");
    assert_eq!(
        launched[0].agent_user.as_deref(),
        Some(practitioner.username.as_str())
    );
    assert_eq!(launched[0].patient.as_deref(), Some(SAMPLE_PATIENT));
    assert_eq!(launched[0].entity, Some(format!("client:{client_id}")));
    assert!(
        launched[0].body["outcomeDesc"]
            .as_str()
            .unwrap()
            .contains("developer sandbox")
    );
    assert!(!String::from_utf8_lossy(&launched[0].raw).contains(&launch_id));
    // The launch works at /auth/authorize for this app, for the practitioner persona.
    let app = App {
        client_id: client_id.clone(),
        secret: None,
        redirect_uri: APP_REDIRECT.to_string(),
    };
    let token = smart::authorize(
        &server,
        &app,
        "launch openid fhirUser patient/*.read",
        Some(&launch_id),
        &Answers::allow(&practitioner.username, &practitioner.password),
    )
    .await
    .unwrap();
    assert_eq!(
        token.extra_fields().patient.as_deref(),
        Some(SAMPLE_PATIENT)
    );
    assert_eq!(
        token.extra_fields().encounter.as_deref(),
        Some(encounter.as_str())
    );

    // Standalone launch: iss only.
    let fields = [("client_id", client_id.as_str()), ("mode", "standalone")];
    let Page::Left(target) = launch(&server, &mut browser, &csrf, &fields).await else {
        panic!("the standalone launch does not leave for the app");
    };
    let params = smart::query_params(&target);
    assert_eq!(params["iss"], server.fhir);
    assert!(!params.contains_key("launch"), "{target}");

    // The simulator as the client: only once the app registered its callback.
    let fields = [
        ("client_id", client_id.as_str()),
        ("patient", SAMPLE_PATIENT),
        ("mode", "ehr-simulator"),
    ];
    let (_, status, _) = body(launch(&server, &mut browser, &csrf, &fields).await);
    assert_eq!(status, 400);
    let add = vec![
        ("csrf_token".to_string(), csrf.clone()),
        ("client_id".to_string(), client_id.clone()),
    ];
    let (url, status, page) = body(
        browser
            .fetch(
                &server,
                format!("{}/developer/simulator/callback-uri", server.base),
                Some(add),
            )
            .await,
    );
    assert_eq!(status, 200, "{page}");
    assert!(url.contains("done=callback"), "{url}");
    assert!(page.contains("value=\"standalone-simulator\""), "{page}");
    let shown = server.kiln(&["app", "show", &client_id]);
    assert_eq!(shown["status"], "active", "{shown}");

    // EHR launch with the simulator as the client: Kiln's login (as the practitioner
    // persona) and consent, then the token response decoded on the callback page.
    let mut page = launch(&server, &mut browser, &csrf, &fields).await;
    let answers = Answers::allow(&practitioner.username, &practitioner.password);
    let callback = format!("{}/developer/simulator/callback", server.base);
    let result = loop {
        let (url, status, html) = body(page);
        assert_eq!(status, 200, "{url}: {html}");
        if url.starts_with(&callback) {
            break html;
        }
        let form = Form::parse(&html).unwrap_or_else(|| panic!("no form on {url}: {html}"));
        let action = reqwest::Url::parse(&url)
            .unwrap()
            .join(&form.action)
            .unwrap();
        page = browser
            .fetch(&server, action.to_string(), Some(form.fill(&answers)))
            .await;
    };
    assert!(result.contains("id_token, decoded"), "{result}");
    assert!(result.contains("The nonce matches"), "{result}");
    let context = Regex::new(r#"(?s)<dl class="facts sim-context">(.*?)</dl>"#)
        .unwrap()
        .captures(&result)
        .unwrap_or_else(|| panic!("no launch context: {result}"))[1]
        .to_string();
    assert!(context.contains(SAMPLE_PATIENT), "{context}");
    assert!(context.contains("Practitioner/"), "{context}");
    assert!(context.contains("need_patient_banner"), "{context}");
    let claims = Regex::new(r#"(?s)<pre class="sim-id-token-claims">(.*?)</pre>"#)
        .unwrap()
        .captures(&result)
        .unwrap()[1]
        .to_string();
    assert!(claims.contains("fhirUser"), "{claims}");
    assert!(claims.contains(&client_id), "{claims}");
    // The callback's state is bound to the developer: replayed or forged, it is refused.
    let forged = format!("{callback}?code=x&state=abc.1.def.ghi");
    let (_, status, _) = body(browser.fetch(&server, forged, None).await);
    assert_eq!(status, 400);
}

async fn no_simulator_or_personas_outside_a_sandbox(backend: Backend) {
    let Some((server, sink)) = with_smtp_args(backend, &[]).await else {
        return;
    };
    verified_account(&server, &sink, "ada@example.org").await;
    let mut browser = Browser::new();
    let page = sign_in(&server, &mut browser, "ada@example.org").await;
    assert!(!page.contains("sandbox-notice"));
    assert!(!page.contains("Test personas"));
    assert!(!page.contains("persona-password"));
    for path in [
        "/developer/simulator",
        "/developer/simulator/callback?code=x&state=y",
    ] {
        let (_, status, _) = body(
            browser
                .fetch(&server, format!("{}{path}", server.base), None)
                .await,
        );
        assert_eq!(status, 404, "{path}");
    }
    let csrf = hidden(&page, "csrf_token");
    let (_, status, _) = body(launch(&server, &mut browser, &csrf, &[("mode", "ehr")]).await);
    assert_eq!(status, 404);
    assert!(users(&server).is_empty());
    // No sample data either.
    assert!(!server.log().contains("loading the bundled sample data"));
}
