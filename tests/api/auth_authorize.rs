//! The browser side of SMART authorization, driven like a browser: the authorize endpoint,
//! login, patient picker, consent (with granular scopes), EHR launch, connected apps, and
//! the refusals (HTML page before the client is known, redirects with `error` after).

use std::process::Command;

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use regex::Regex;
use reqwest::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};

use crate::backend_tests;
use crate::common::smart;
use crate::common::*;

backend_tests!(
    standalone_patient_launch,
    practitioner_standalone_with_patient_picker,
    ehr_launch,
    authorize_refusals,
    sign_in_is_throttled,
    sign_in_throttle_holds_under_concurrency_per_source,
    standalone_launch_picks_the_encounter
);

const LAB: &str = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
const REDIRECT: &str = "https://app.example/cb?tenant=7";

/// A browser: one cookie jar (Kiln's session cookie), no automatic redirects.
struct Browser {
    client: reqwest::Client,
    cookie: Option<String>,
}

/// A response read whole.
struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> reqwest::Url {
        let location = self.headers.get(LOCATION).expect("a redirect");
        reqwest::Url::parse(location.to_str().unwrap()).unwrap()
    }

    /// The value of the hidden input `name`.
    fn hidden(&self, name: &str) -> String {
        let pattern = format!(r#"name="{name}" value="([^"]*)""#);
        let found = Regex::new(&pattern).unwrap().captures(&self.body);
        unescape(&found.unwrap_or_else(|| panic!("no {name} in {}", self.body))[1])
    }

    /// The `value`s of the `scope` checkboxes, with whether each is checked.
    fn scope_boxes(&self) -> Vec<(String, bool)> {
        Regex::new(r#"<input type="checkbox" name="scope" value="([^"]*)"( checked)?>"#)
            .unwrap()
            .captures_iter(&self.body)
            .map(|c| (unescape(&c[1]), c.get(2).is_some()))
            .collect()
    }

    /// The `value`s of the radio buttons or options named or listed on the page.
    fn values(&self, pattern: &str) -> Vec<String> {
        Regex::new(pattern)
            .unwrap()
            .captures_iter(&self.body)
            .map(|c| unescape(&c[1]))
            .collect()
    }
}

/// The page shows the patient in context in the banner above its content.
fn assert_patient_banner(page: &Page, patient: &str) {
    let banner = Regex::new(
        r#"(?s)<div class="banner" role="region" aria-label="Patient">(.*?)</div></div>"#,
    )
    .unwrap()
    .captures(&page.body)
    .unwrap_or_else(|| panic!("no patient banner: {}", page.body));
    assert!(banner[1].contains(patient), "{}", &banner[1]);
    let main = page.body.find("<main").unwrap();
    assert!(page.body.find("class=\"banner\"").unwrap() < main);
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn query(url: &reqwest::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

impl Browser {
    fn new() -> Browser {
        Browser::from_address("127.0.0.1")
    }

    /// A browser on another host: its connections come from the loopback `address`.
    fn from_address(address: &str) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(address.parse::<std::net::IpAddr>().unwrap())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn read(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.expect("request");
        if let Some(set) = response.headers().get(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            self.cookie = Some(pair.to_string());
        }
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let request = self.client.get(url);
        self.read(request).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.read(request).await
    }

    /// Signs in on a login page.
    async fn login(&mut self, server: &Server, page: &Page, user: &str, password: &str) -> Page {
        let csrf = page.hidden("csrf_token");
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("username", user),
            ("password", password),
        ];
        let pending;
        if page.body.contains(r#"name="pending""#) {
            pending = page.hidden("pending");
            form.push(("pending", pending.as_str()));
        }
        let return_to;
        if page.body.contains(r#"name="return_to""#) {
            return_to = page.hidden("return_to");
            form.push(("return_to", return_to.as_str()));
        }
        self.post(&format!("{}/auth/login", server.base), &form)
            .await
    }

    /// Answers a consent page with `scopes` and `decision`.
    async fn consent(
        &mut self,
        server: &Server,
        page: &Page,
        scopes: &[&str],
        decision: &str,
    ) -> Page {
        assert!(
            page.body.contains("name=\"decision\""),
            "not a consent page: {}",
            page.body
        );
        let csrf = page.hidden("csrf_token");
        let pending = page.hidden("pending");
        let mut form = vec![("csrf_token", csrf.as_str()), ("pending", pending.as_str())];
        form.extend(scopes.iter().map(|scope| ("scope", *scope)));
        form.push(("decision", decision));
        self.post(&format!("{}/auth/consent", server.base), &form)
            .await
    }
}

/// Two patients (with an encounter of the first) imported with the admin command.
fn import_patients(server: &Server) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.ndjson");
    let lines = [
        json!({"resourceType": "Patient", "id": "pat-a", "name": [{"family": "Alpha", "given": ["Ann"]}], "birthDate": "1980-02-03"}),
        json!({"resourceType": "Patient", "id": "pat-b", "name": [{"family": "Beta", "given": ["Bob"]}]}),
        json!({"resourceType": "Encounter", "id": "enc-1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/pat-a"}, "period": {"start": "2024-05-01T10:00:00Z"}}),
        json!({"resourceType": "Practitioner", "id": "doc-1", "name": [{"family": "Doc"}]}),
    ];
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&path, text.join("\n")).unwrap();
    let output = Command::new(kiln_bin())
        .args(["import", path.to_str().unwrap()])
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts a secured server with patients, a patient user `alice`, a practitioner `doc` and
/// a public app; returns the server and the app's client_id.
async fn setup(backend: Backend) -> Option<(Server, String)> {
    let server = Server::start_secured(backend, &[]).await?;
    import_patients(&server);
    server.kiln(&[
        "user",
        "add",
        "--username",
        "alice",
        "--password",
        "alice-pw",
        "--fhir-user",
        "Patient/pat-a",
    ]);
    server.kiln(&[
        "user",
        "add",
        "--username",
        "doc",
        "--password",
        "doc-pw",
        "--fhir-user",
        "Practitioner/doc-1",
    ]);
    let client = server.kiln(&[
        "client", "add", "--name", "Growth Chart", "--type", "public",
        "--redirect-uri", REDIRECT, "--redirect-uri", "https://app.example/other",
        "--launch-uri", "https://app.example/launch",
        "--scope", "launch launch/patient launch/encounter openid fhirUser offline_access patient/*.rs user/*.rs",
    ]);
    let client_id = client["client_id"].as_str().unwrap().to_string();
    Some((server, client_id))
}

/// An authorize URL built by a real OAuth client (PKCE S256, random state).
fn authorize_url(
    server: &Server,
    client_id: &str,
    scopes: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let oauth = BasicClient::new(ClientId::new(client_id.to_string()))
        .set_auth_uri(AuthUrl::new(format!("{}/auth/authorize", server.base)).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = oauth
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .add_extra_param("aud", server.fhir.clone());
    for scope in scopes.split(' ') {
        request = request.add_scope(Scope::new(scope.to_string()));
    }
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let (url, state) = request.url();
    (url.to_string(), state.secret().clone())
}

/// The rows of the connected-apps page: (patient, scopes).
async fn connected_apps(browser: &mut Browser, server: &Server) -> Page {
    let page = browser.get(&format!("{}/auth/apps", server.base)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

fn listed_scopes(page: &Page) -> Vec<String> {
    page.values(r#"<code class="scope">([^<]*)</code>"#)
}

fn listed_patients(page: &Page) -> Vec<String> {
    page.values(r#"<span class="patient">([^<]*)</span>"#)
}

async fn standalone_patient_launch(backend: Backend) {
    let Some((server, client_id)) = setup(backend).await else {
        return;
    };
    let mut browser = Browser::new();
    let (url, state) = authorize_url(
        &server,
        &client_id,
        "launch/patient patient/Observation.rs openid",
        &[],
    );
    let login = browser.get(&url).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.headers[CACHE_CONTROL], "no-store");
    assert!(login.body.contains(r#"name="username""#) && login.body.contains(r#"name="password""#));
    assert!(login.body.contains("Growth Chart"));
    let cookie = login.headers[SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.starts_with("kiln_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    // No CSRF token, or a wrong one: 403.
    let pending = login.hidden("pending");
    let csrf_free = browser
        .post(
            &format!("{}/auth/login", server.base),
            &[
                ("pending", &pending),
                ("username", "alice"),
                ("password", "alice-pw"),
            ],
        )
        .await;
    assert_eq!(csrf_free.status, 403);
    let forged = browser
        .post(
            &format!("{}/auth/login", server.base),
            &[
                ("csrf_token", "forged"),
                ("pending", &pending),
                ("username", "alice"),
                ("password", "alice-pw"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    // Wrong password and unknown user get the same answer.
    let wrong = browser.login(&server, &login, "alice", "nope").await;
    assert_eq!(wrong.status, 401);
    let unknown = browser.login(&server, &login, "mallory", "nope").await;
    assert_eq!(unknown.status, 401);
    assert!(wrong.body.contains("Incorrect username or password."));
    assert!(unknown.body.contains("Incorrect username or password."));

    // A patient user goes straight to consent for their own record (no picker).
    let consent = browser.login(&server, &wrong, "alice", "alice-pw").await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert_eq!(consent.headers[CACHE_CONTROL], "no-store");
    assert!(!consent.body.contains(r#"name="patient""#));
    assert_patient_banner(&consent, "Ann Alpha");
    let boxes = consent.scope_boxes();
    for asked in ["launch/patient", "patient/Observation.rs", "openid"] {
        assert!(
            boxes.contains(&(asked.to_string(), true)),
            "{asked} not checked: {boxes:?}"
        );
    }
    assert!(boxes.contains(&(LAB.to_string(), false)), "{boxes:?}");
    assert!(
        boxes
            .iter()
            .any(|(v, checked)| !checked && v.ends_with("observation-category|vital-signs"))
    );

    // Consent POST without the token: 403.
    let no_csrf = browser
        .post(
            &format!("{}/auth/consent", server.base),
            &[
                ("pending", &consent.hidden("pending")),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, 403);

    // Only laboratory Observations, plus the patient context; a scope never asked for is ignored.
    let done = browser
        .consent(
            &server,
            &consent,
            &["launch/patient", LAB, "user/*.rs"],
            "allow",
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.headers[CACHE_CONTROL], "no-store");
    let back = done.location();
    assert_eq!(
        back.as_str().split('?').next().unwrap(),
        "https://app.example/cb"
    );
    assert_eq!(query(&back, "tenant").as_deref(), Some("7"));
    assert_eq!(query(&back, "state").as_deref(), Some(state.as_str()));
    assert_eq!(query(&back, "code").unwrap().len(), 43);

    // The grant: exactly what was chosen, for alice's own Patient.
    let apps = connected_apps(&mut browser, &server).await;
    assert_eq!(apps.headers[CACHE_CONTROL], "no-store");
    assert_eq!(listed_scopes(&apps), ["launch/patient", LAB]);
    assert_eq!(listed_patients(&apps), ["Patient/pat-a"]);

    // Already signed in: a second request goes straight to consent; deny → access_denied.
    let (url, state) = authorize_url(&server, &client_id, "patient/Observation.rs", &[]);
    let consent = browser.get(&url).await;
    let denied = browser
        .consent(&server, &consent, &["patient/Observation.rs"], "deny")
        .await;
    assert_eq!(denied.status, 303);
    let back = denied.location();
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some(state.as_str()));
    assert!(query(&back, "code").is_none());
    // The answered request cannot be answered again.
    let again = browser
        .consent(&server, &consent, &["patient/Observation.rs"], "allow")
        .await;
    assert_eq!(again.status, 400);

    // Revoking on the connected-apps page: CSRF checked, then the app is gone.
    let grant = apps.hidden("grant");
    let forged = browser
        .post(
            &format!("{}/auth/apps/revoke", server.base),
            &[("grant", grant.as_str())],
        )
        .await;
    assert_eq!(forged.status, 403);
    let revoked = browser
        .post(
            &format!("{}/auth/apps/revoke", server.base),
            &[
                ("csrf_token", &apps.hidden("csrf_token")),
                ("grant", &grant),
            ],
        )
        .await;
    assert_eq!(revoked.status, 303);
    let apps = connected_apps(&mut browser, &server).await;
    assert!(listed_scopes(&apps).is_empty(), "{}", apps.body);
    assert!(apps.body.contains("You have not authorized any app."));

    // Another user cannot revoke alice's grants, even with a valid session.
    let mut other = Browser::new();
    let login = other.get(&format!("{}/auth/apps", server.base)).await;
    let page = other.login(&server, &login, "doc", "doc-pw").await;
    assert_eq!(page.status, 303);
    let apps = connected_apps(&mut other, &server).await;
    let refused = other
        .post(
            &format!("{}/auth/apps/revoke", server.base),
            &[
                ("csrf_token", &apps.hidden("csrf_token")),
                ("grant", &grant),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
}

async fn practitioner_standalone_with_patient_picker(backend: Backend) {
    let Some((server, client_id)) = setup(backend).await else {
        return;
    };
    let mut browser = Browser::new();
    let (url, state) = authorize_url(
        &server,
        &client_id,
        "launch/patient patient/*.rs openid fhirUser",
        &[],
    );
    let login = browser.get(&url).await;
    let picker = browser.login(&server, &login, "doc", "doc-pw").await;
    assert_eq!(picker.status, 200, "{}", picker.body);
    assert_eq!(picker.headers[CACHE_CONTROL], "no-store");
    let radios = r#"<input type="radio" name="patient" value="([^"]*)""#;
    let mut listed = picker.values(radios);
    listed.sort();
    assert_eq!(listed, ["pat-a", "pat-b"]);

    // The name search narrows the list.
    let pending = picker.hidden("pending");
    let search = browser
        .get(&format!(
            "{}/auth/patient?pending={pending}&name=Beta",
            server.base
        ))
        .await;
    assert_eq!(search.status, 200);
    assert_eq!(search.values(radios), ["pat-b"]);

    // An unknown patient is refused; a listed one leads to consent for that patient.
    let csrf = search.hidden("csrf_token");
    let picker_url = format!("{}/auth/patient", server.base);
    let bad = browser
        .post(
            &picker_url,
            &[
                ("csrf_token", &csrf),
                ("pending", &pending),
                ("patient", "nobody"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    let no_csrf = browser
        .post(&picker_url, &[("pending", &pending), ("patient", "pat-b")])
        .await;
    assert_eq!(no_csrf.status, 403);
    let consent = browser
        .post(
            &picker_url,
            &[
                ("csrf_token", &csrf),
                ("pending", &pending),
                ("patient", "pat-b"),
            ],
        )
        .await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert_patient_banner(&consent, "Bob Beta");
    let checked: Vec<String> = consent
        .scope_boxes()
        .into_iter()
        .filter(|(_, checked)| *checked)
        .map(|(value, _)| value)
        .collect();
    assert_eq!(
        checked,
        ["launch/patient", "patient/*.rs", "openid", "fhirUser"]
    );
    let scopes: Vec<&str> = checked.iter().map(String::as_str).collect();
    let done = browser.consent(&server, &consent, &scopes, "allow").await;
    assert_eq!(done.status, 303);
    assert_eq!(
        query(&done.location(), "state").as_deref(),
        Some(state.as_str())
    );
    assert!(query(&done.location(), "code").is_some());
    let apps = connected_apps(&mut browser, &server).await;
    assert_eq!(
        listed_scopes(&apps),
        ["launch/patient", "patient/*.rs", "openid", "fhirUser"]
    );
    assert_eq!(listed_patients(&apps), ["Patient/pat-b"]);
}

async fn ehr_launch(backend: Backend) {
    let Some((server, client_id)) = setup(backend).await else {
        return;
    };
    // A launch made on the command line, for doc.
    let created = server.kiln(&[
        "launch",
        "create",
        "--client-id",
        &client_id,
        "--user",
        "doc",
        "--patient",
        "pat-a",
        "--encounter",
        "enc-1",
    ]);
    let launch = created["launch"].as_str().unwrap().to_string();
    // patient/ scopes without launch/patient still get the launch's patient.
    let scopes = "launch patient/*.rs openid fhirUser";
    let (url, state) = authorize_url(&server, &client_id, scopes, &[("launch", &launch)]);
    let mut browser = Browser::new();
    let login = browser.get(&url).await;
    assert_eq!(login.status, 200);
    assert!(
        login
            .body
            .contains(r#"name="username" autocomplete="username" required value="doc""#)
    );
    let refused = browser.login(&server, &login, "alice", "alice-pw").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("opened for another user"),
        "{}",
        refused.body
    );
    let consent = browser.login(&server, &refused, "doc", "doc-pw").await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert_patient_banner(&consent, "Ann Alpha");
    let done = browser
        .consent(
            &server,
            &consent,
            &["launch", "patient/*.rs", "openid", "fhirUser"],
            "allow",
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(
        query(&done.location(), "state").as_deref(),
        Some(state.as_str())
    );
    let apps = connected_apps(&mut browser, &server).await;
    assert_eq!(listed_patients(&apps), ["Patient/pat-a"]);

    // The launch is single use.
    let (url, state) = authorize_url(&server, &client_id, scopes, &[("launch", &launch)]);
    let reused = browser.get(&url).await;
    assert_eq!(reused.status, 303);
    assert_eq!(
        query(&reused.location(), "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        query(&reused.location(), "state").as_deref(),
        Some(state.as_str())
    );
    // The launch scope without a launch is refused too.
    let (url, _) = authorize_url(&server, &client_id, scopes, &[]);
    let missing = browser.get(&url).await;
    assert_eq!(
        query(&missing.location(), "error").as_deref(),
        Some("invalid_request")
    );

    // Kiln's EHR page: sign in, find the patient, pick the encounter and the app, launch.
    let mut ehr = Browser::new();
    let ehr_url = format!("{}/auth/ehr", server.base);
    let login = ehr.get(&ehr_url).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.headers[CACHE_CONTROL], "no-store");
    let signed_in = ehr.login(&server, &login, "doc", "doc-pw").await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.location().as_str(), ehr_url);
    let search = ehr.get(&format!("{ehr_url}?name=Alpha")).await;
    assert_eq!(search.status, 200, "{}", search.body);
    assert!(search.body.contains("?patient=pat-a"));
    assert!(!search.body.contains("?patient=pat-b"));
    let chart = ehr.get(&format!("{ehr_url}?patient=pat-a")).await;
    assert_eq!(chart.values(r#"<option value="(enc-[^"]*)""#), ["enc-1"]);
    assert!(chart.body.contains(&format!(
        r#"<option value="{client_id}">Growth Chart</option>"#
    )));
    let csrf = chart.hidden("csrf_token");
    let launch_url = format!("{ehr_url}/launch");
    let form = [
        ("csrf_token", csrf.as_str()),
        ("patient", "pat-a"),
        ("encounter", "enc-1"),
        ("client_id", client_id.as_str()),
    ];
    assert_eq!(ehr.post(&launch_url, &form[1..]).await.status, 403);
    let wrong_encounter = [
        ("csrf_token", csrf.as_str()),
        ("patient", "pat-b"),
        ("encounter", "enc-1"),
        ("client_id", client_id.as_str()),
    ];
    assert_eq!(ehr.post(&launch_url, &wrong_encounter).await.status, 400);
    let launched = ehr.post(&launch_url, &form).await;
    assert_eq!(launched.status, 303, "{}", launched.body);
    let target = launched.location();
    assert_eq!(
        target.as_str().split('?').next().unwrap(),
        "https://app.example/launch"
    );
    assert_eq!(query(&target, "iss").as_deref(), Some(server.fhir.as_str()));
    let launch = query(&target, "launch").unwrap();
    // Recorded with the launch: by doc, about the app's client, the patient set, never the
    // launch token.
    let recorded: Vec<_> = crate::common::audit::rows(&server.db.url)
        .await
        .into_iter()
        .filter(|row| row.subtype.as_deref() == Some("launch-created"))
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].agent_user.as_deref(), Some("doc"));
    assert_eq!(recorded[0].patient.as_deref(), Some("pat-a"));
    assert_eq!(recorded[0].entity, Some(format!("client:{client_id}")));
    assert!(
        recorded[0].body["outcomeDesc"]
            .as_str()
            .unwrap()
            .contains("encounter enc-1")
    );
    assert!(!String::from_utf8_lossy(&recorded[0].raw).contains(&launch));
    // The app comes back with that launch; doc is already signed in here: straight to consent.
    let (url, _) = authorize_url(
        &server,
        &client_id,
        "launch launch/encounter patient/*.rs",
        &[("launch", &launch)],
    );
    let consent = ehr.get(&url).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let done = ehr
        .consent(
            &server,
            &consent,
            &["launch", "launch/encounter", "patient/*.rs"],
            "allow",
        )
        .await;
    assert_eq!(done.status, 303);
    assert!(query(&done.location(), "code").is_some());

    // A patient user may not use the EHR page.
    let mut patient = Browser::new();
    let login = patient.get(&ehr_url).await;
    patient.login(&server, &login, "alice", "alice-pw").await;
    let page = patient.get(&ehr_url).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("Only practitioners"));
}

async fn authorize_refusals(backend: Backend) {
    let Some((server, client_id)) = setup(backend).await else {
        return;
    };
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let fhir = server.fhir.clone();
    let good: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "launch/patient patient/*.rs"),
        ("state", "st-1"),
        ("aud", &fhir),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let with = |name: &str, value: Option<&'static str>| -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = good
            .iter()
            .filter(|(n, _)| *n != name)
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        if let Some(value) = value {
            params.push((name.to_string(), value.to_string()));
        }
        params
    };
    let url = |params: &[(String, String)]| {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        format!("{}/auth/authorize?{query}", server.base)
    };
    let mut browser = Browser::new();

    // Before the client and redirect URI are known: an HTML page, never a redirect.
    for params in [
        with("client_id", Some("no-such-app")),
        with("client_id", None),
        with("redirect_uri", Some("https://evil.example/cb")),
        with("redirect_uri", Some("https://app.example/cb?tenant=8")),
    ] {
        let page = browser.get(&url(&params)).await;
        assert_eq!(page.status, 400, "{params:?}: {}", page.body);
        assert!(page.headers.get(LOCATION).is_none());
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(page.headers[CACHE_CONTROL], "no-store");
    }
    // Two registered redirect URIs: omitting it is an error too.
    assert_eq!(
        browser.get(&url(&with("redirect_uri", None))).await.status,
        400
    );

    // Afterwards: back to the app with error, error_description and state.
    for (params, error) in [
        (
            with("aud", Some("https://other.example/fhir")),
            "invalid_request",
        ),
        (with("aud", None), "invalid_request"),
        (with("code_challenge_method", None), "invalid_request"),
        (with("code_challenge", None), "invalid_request"),
        (
            with("code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (with("code_challenge", Some("too-short")), "invalid_request"),
        (
            with("response_type", Some("token")),
            "unsupported_response_type",
        ),
        (with("scope", Some("system/*.rs")), "invalid_scope"),
        (with("launch", Some("made-up")), "invalid_request"),
    ] {
        let page = browser.get(&url(&params)).await;
        assert_eq!(page.status, 303, "{params:?}: {}", page.body);
        let back = page.location();
        assert!(
            back.as_str()
                .starts_with("https://app.example/cb?tenant=7&"),
            "{back}"
        );
        assert_eq!(query(&back, "error").as_deref(), Some(error), "{params:?}");
        assert!(query(&back, "error_description").is_some());
        assert_eq!(query(&back, "state").as_deref(), Some("st-1"));
    }
    let mut twice = with("scope", Some("patient/*.rs"));
    twice.push(("scope".into(), "user/*.rs".into()));
    let page = browser.get(&url(&twice)).await;
    assert_eq!(
        query(&page.location(), "error").as_deref(),
        Some("invalid_request")
    );

    // The same request by POST (authorize-post) is accepted and shows the login form.
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&good)
        .finish();
    let request = browser
        .client
        .post(format!("{}/auth/authorize", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    let login = browser.read(request).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains(r#"name="username""#));
    // A pending request is bound to its browser: another browser cannot use it.
    let mut other = Browser::new();
    let other_login = other.get(&format!("{}/auth/apps", server.base)).await;
    let hijack = other
        .post(
            &format!("{}/auth/login", server.base),
            &[
                ("csrf_token", &other_login.hidden("csrf_token")),
                ("pending", &login.hidden("pending")),
                ("username", "alice"),
                ("password", "alice-pw"),
            ],
        )
        .await;
    assert_eq!(hijack.status, 400);
}

async fn sign_in_is_throttled(backend: Backend) {
    let Some((server, client_id)) = setup(backend).await else {
        return;
    };
    let mut browser = Browser::new();
    let (url, _) = authorize_url(&server, &client_id, "launch/patient patient/*.rs", &[]);
    let mut page = browser.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Five wrong passwords, then even the right one waits: per username, not per browser.
    for _ in 0..5 {
        page = browser.login(&server, &page, "alice", "guess").await;
        assert_eq!(page.status, 401, "{}", page.body);
    }
    let refused = browser.login(&server, &page, "alice", "alice-pw").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body.contains("Too many failed sign-ins"),
        "{}",
        refused.body
    );
    let mut elsewhere = Browser::new();
    let fresh = elsewhere.get(&url).await;
    let refused = elsewhere.login(&server, &fresh, "alice", "alice-pw").await;
    assert_eq!(refused.status, 429);
    // Other usernames are not held up: four failures still let the right password in.
    let mut other = Browser::new();
    let mut page = other.get(&url).await;
    for _ in 0..4 {
        page = other.login(&server, &page, "doc", "guess").await;
        assert_eq!(page.status, 401);
    }
    let signed_in = other.login(&server, &page, "doc", "doc-pw").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
}

/// `count` browsers from `address`, each on its own login page for `url`.
async fn login_pages(url: &str, address: &str, count: usize) -> Vec<(Browser, Page)> {
    let mut pages = Vec::new();
    for _ in 0..count {
        let mut browser = Browser::from_address(address);
        let page = browser.get(url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        pages.push((browser, page));
    }
    pages
}

/// Signs in from every browser at once, `username(n)` with `password`; returns the statuses.
async fn concurrent_logins(
    server: &Server,
    pages: &mut [(Browser, Page)],
    username: impl Fn(usize) -> String,
    password: &str,
) -> Vec<u16> {
    let names: Vec<String> = (0..pages.len()).map(username).collect();
    let logins = pages
        .iter_mut()
        .zip(&names)
        .map(|((browser, page), name)| browser.login(server, page, name, password));
    futures_util::future::join_all(logins)
        .await
        .iter()
        .map(|page| page.status)
        .collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn sign_in_throttle_holds_under_concurrency_per_source(backend: Backend) {
    let Some((server, client_id)) = setup(backend).await else {
        return;
    };
    let (url, _) = authorize_url(&server, &client_id, "launch/patient patient/*.rs", &[]);
    // 40 wrong passwords for one username at once: 5 are checked, the rest wait (429).
    let mut guessers = login_pages(&url, "127.0.0.1", 40).await;
    let statuses = concurrent_logins(&server, &mut guessers, |_| "alice".into(), "guess").await;
    assert_eq!(count(&statuses, 401), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 35, "{statuses:?}");
    let (browser, page) = &mut guessers[0];
    let held = browser.login(&server, page, "alice", "alice-pw").await;
    assert_eq!(held.status, 429, "{}", held.body);
    // The guesser's address is held up, not alice: she signs in from another host.
    let mut alice = Browser::from_address("127.0.0.2");
    let login = alice.get(&url).await;
    let signed_in = alice.login(&server, &login, "alice", "alice-pw").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert!(
        signed_in.body.contains(r#"name="decision""#),
        "{}",
        signed_in.body
    );

    // One password sprayed over 40 usernames at once from a third host: 25 are checked.
    let mut sprayers = login_pages(&url, "127.0.0.3", 40).await;
    let statuses =
        concurrent_logins(&server, &mut sprayers, |n| format!("user{n}"), "Summer2024").await;
    assert_eq!(count(&statuses, 401), 25, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 15, "{statuses:?}");
    let (browser, page) = &mut sprayers[0];
    let held = browser.login(&server, page, "doc", "doc-pw").await;
    assert_eq!(held.status, 429, "{}", held.body);
    assert!(held.body.contains("from your network"), "{}", held.body);
    // A successful sign-in gives its reservation back: doc signs in from the first host.
    let (browser, page) = &mut guessers[1];
    let doc = browser.login(&server, page, "doc", "doc-pw").await;
    assert_eq!(doc.status, 200, "{}", doc.body);
}

async fn standalone_launch_picks_the_encounter(backend: Backend) {
    let Some((server, client_id)) = setup(backend).await else {
        return;
    };
    let encounter = |id: &str, start: &str, kind: &str| {
        json!({"resourceType": "Encounter", "id": id, "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "type": [{"text": kind}],
               "subject": {"reference": "Patient/pat-a"}, "period": {"start": start}})
    };
    server.import(&[
        encounter("enc-2", "2024-06-01T09:00:00Z", "<b>Check-up</b>"),
        encounter("enc-3", "2023-01-15T09:00:00Z", "Dental"),
    ]);
    let app = smart::App {
        client_id,
        secret: None,
        redirect_uri: REDIRECT.to_string(),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = app
        .oauth(&server)
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .add_extra_param("aud", server.fhir.clone())
        .add_scopes(
            ["launch/patient", "launch/encounter", "patient/*.rs"].map(|s| Scope::new(s.into())),
        )
        .url();
    let mut browser = Browser::new();
    let login = browser.get(url.as_str()).await;
    // The patient has three encounters: the user chooses.
    let picker = browser.login(&server, &login, "alice", "alice-pw").await;
    assert_eq!(picker.status, 200, "{}", picker.body);
    assert_eq!(picker.headers[CACHE_CONTROL], "no-store");
    let radios = r#"<input type="radio" name="encounter" value="([^"]*)""#;
    let listed = |page: &Page| {
        let mut values = page.values(radios);
        values.sort();
        values
    };
    assert_eq!(listed(&picker), ["enc-1", "enc-2", "enc-3"]);
    assert_patient_banner(&picker, "Ann Alpha");
    assert!(
        picker.body.contains("Check-up") && !picker.body.contains("<b>Check"),
        "{}",
        picker.body
    );
    let csrf = picker.hidden("csrf_token");
    let pending = picker.hidden("pending");
    let picker_url = format!("{}/auth/encounter", server.base);
    let no_csrf = browser
        .post(
            &picker_url,
            &[("pending", &pending), ("encounter", "enc-3")],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    // Consent cannot skip the choice.
    let skipped = browser
        .post(
            &format!("{}/auth/consent", server.base),
            &[
                ("csrf_token", csrf.as_str()),
                ("pending", pending.as_str()),
                ("scope", "launch/encounter"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(listed(&skipped), ["enc-1", "enc-2", "enc-3"]);
    let form = |encounter: &'static str| {
        [
            ("csrf_token", csrf.clone()),
            ("pending", pending.clone()),
            ("encounter", encounter.to_string()),
        ]
    };
    let foreign = form("not-hers");
    let refused = browser
        .post(
            &picker_url,
            &foreign.each_ref().map(|(k, v)| (*k, v.as_str())),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(listed(&refused), ["enc-1", "enc-2", "enc-3"]);
    let chosen = form("enc-3");
    let consent = browser
        .post(
            &picker_url,
            &chosen.each_ref().map(|(k, v)| (*k, v.as_str())),
        )
        .await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let scopes = ["launch/patient", "launch/encounter", "patient/*.rs"];
    let done = browser.consent(&server, &consent, &scopes, "allow").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        query(&done.location(), "state").as_deref(),
        Some(state.secret().as_str())
    );
    let code = query(&done.location(), "code").expect("code");
    let token = smart::exchange(&server, &app, &code, verifier)
        .await
        .expect("token");
    let context = oauth2::TokenResponse::scopes(&token).cloned();
    assert!(context.is_some_and(|s| s.iter().any(|s| s.as_str() == "launch/encounter")));
    assert_eq!(token.extra_fields().patient.as_deref(), Some("pat-a"));
    assert_eq!(token.extra_fields().encounter.as_deref(), Some("enc-3"));
}
