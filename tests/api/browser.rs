//! Browser apps as browsers run them: CORS preflights answered with the headers they ask
//! for, the discovery documents at the URLs vendors write, and the official SMART
//! JavaScript client (`fhirclient`) in headless Chromium launching, reading and refreshing
//! from an origin of its own (its side lives in tests/browser/); and a developer's whole
//! journey through the portal, the admin console and the simulator (tests/browser/journey.js).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::common::*;

/// What a FHIR app sends besides the CORS-safelisted headers.
const APP_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "accept",
    "prefer",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-none-exist",
    "x-request-id",
];

async fn preflight(server: &Server, url: &str, method: &str, headers: &str) -> reqwest::Response {
    server
        .client
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", "http://app.example:3000")
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_allows_the_requested_headers_by_name() {
    let server = Server::start_secured(Backend::Sqlite, &[]).await.unwrap();
    let requested = APP_HEADERS.join(",");
    for (path, method) in [
        ("/fhir/Patient/p1", "GET"),
        ("/fhir/Observation", "POST"),
        ("/fhir/Patient/p1", "PUT"),
        ("/auth/token", "POST"),
        ("/fhir/.well-known/smart-configuration", "GET"),
    ] {
        let url = format!("{}{path}", server.base);
        let response = preflight(&server, &url, method, &requested).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        let allowed = headers
            .get("access-control-allow-headers")
            .unwrap_or_else(|| panic!("{path}: no Access-Control-Allow-Headers"))
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        let allowed: Vec<&str> = allowed.split(',').map(str::trim).collect();
        // The Fetch standard's `*` never covers Authorization: each header is named.
        assert!(!allowed.contains(&"*"), "{path}: {allowed:?}");
        for header in APP_HEADERS {
            assert!(
                allowed.contains(header),
                "{path}: {header} not in {allowed:?}"
            );
        }
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(
            methods == "*" || methods.contains(method),
            "{path}: {methods}"
        );
        // The answer depends on the request's headers, so caches must know.
        let vary: Vec<String> = headers
            .get_all("vary")
            .iter()
            .flat_map(|v| v.to_str().unwrap().split(','))
            .map(|v| v.trim().to_ascii_lowercase())
            .collect();
        assert!(
            vary.iter().any(|v| v == "access-control-request-headers"),
            "{path}: {vary:?}"
        );
    }
    // A header an app of its own invents is allowed as well.
    let response = preflight(
        &server,
        &server.url("Patient"),
        "GET",
        "authorization, x-app-trace",
    )
    .await;
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("x-app-trace"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents_answer_with_a_trailing_slash() {
    let server = Server::start_secured(Backend::Sqlite, &[]).await.unwrap();
    for document in ["smart-configuration", "openid-configuration"] {
        let plain = expect_json(server.get(&format!(".well-known/{document}")).await, 200).await;
        let slashed = expect_json(server.get(&format!(".well-known/{document}/")).await, 200).await;
        assert_eq!(slashed, plain, "{document}");
        assert_eq!(slashed["issuer"], server.fhir.as_str());
    }
}

static BROWSER_SKIP_NOTICE: Once = Once::new();

/// The browser test's folder, when node, Chromium and its npm packages are all there;
/// otherwise `None` after a notice, or a panic with `KILN_REQUIRE_BROWSER=1`.
fn browser_setup() -> Option<(PathBuf, PathBuf)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var_os("KILN_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let mut missing = Vec::new();
    if !node {
        missing.push("node (apt-get install nodejs npm)".to_string());
    }
    if !chromium.exists() {
        missing.push(format!("{} (apt-get install chromium)", chromium.display()));
    }
    for package in ["playwright-core", "fhirclient"] {
        if !folder.join("node_modules").join(package).exists() {
            missing.push(format!("{package} (npm ci in tests/browser)"));
        }
    }
    if missing.is_empty() {
        return Some((folder, chromium));
    }
    if std::env::var("KILN_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!(
            "KILN_REQUIRE_BROWSER=1 but the browser test cannot run; missing: {}",
            missing.join(", ")
        );
    }
    BROWSER_SKIP_NOTICE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** Browser tests SKIPPED: missing {} ***\n",
            missing.join(", ")
        );
    });
    None
}

/// Runs tests/browser/`script` with `env`; returns the JSON line it printed.
fn run_driver(folder: &Path, chromium: &Path, script: &str, env: &[(&str, &str)]) -> Value {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(folder)
        .env("CHROMIUM", chromium)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().expect("wait for node").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("node output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("{script} printed {stdout}"))
}

/// fhirclient at its defaults, served from its own loopback origin: standalone launch,
/// sign-in and consent on Kiln's pages, a read, a refresh (a public client's bare
/// `grant_type=refresh_token&refresh_token=…`), and a read with the new access token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhirclient_in_chromium_launches_reads_and_refreshes() {
    let Some((folder, chromium)) = browser_setup() else {
        return;
    };
    let server = Server::start_secured(Backend::Sqlite, &[]).await.unwrap();
    server.import(&[json!({
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Rivera", "given": ["Ana"]}]
    })]);
    server.add_users(&[("alice", "Patient/p1")]);
    let scope = "launch/patient openid fhirUser offline_access patient/*.rs";
    let app_port = free_port();
    let app_origin = format!("http://127.0.0.1:{app_port}");
    let redirect = format!("{app_origin}/index.html");
    let client = server.kiln(&[
        "client",
        "add",
        "--name",
        "Browser app",
        "--type",
        "public",
        "--redirect-uri",
        &redirect,
        "--scope",
        scope,
    ]);
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let port = app_port.to_string();
    let fhir = server.fhir.clone();
    let env = [
        ("KILN_FHIR", fhir.as_str()),
        ("CLIENT_ID", client_id.as_str()),
        ("SCOPE", scope),
        ("APP_PORT", port.as_str()),
        ("KILN_USERNAME", "alice"),
        ("KILN_PASSWORD", "pw-1"),
    ]
    .map(|(name, value)| (name.to_string(), value.to_string()));
    let report = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        run_driver(&folder, &chromium, "smart_app.js", &env)
    })
    .await
    .unwrap();

    let app = &report["app"];
    assert_eq!(app["ok"], true, "the app failed: {report:#}");
    assert_eq!(report["appOrigin"], app_origin.as_str());
    assert_ne!(
        app_origin, server.base,
        "the app runs on an origin of its own"
    );
    assert_eq!(app["patient"], "p1");
    assert_eq!(app["firstRead"], "p1");
    assert_eq!(app["secondRead"], "p1");
    let (before, after) = (
        app["tokenBefore"].as_str().unwrap(),
        app["tokenAfter"].as_str().unwrap(),
    );
    assert_ne!(before, after, "the refresh gave a new access token");
    assert_eq!(app["refreshTokenKept"], true, "{report:#}");
    // The browser's requests: the reads carried the old token, then the new one.
    let reads = report["fhirReads"].as_array().unwrap();
    assert_eq!(reads.len(), 2, "{report:#}");
    assert_eq!(reads[0]["status"], 200);
    assert_eq!(reads[0]["token"], before);
    assert_eq!(reads[1]["status"], 200);
    assert_eq!(reads[1]["token"], after);
    // fhirclient's default refresh request names no client.
    assert_eq!(
        report["refreshes"],
        json!([{"status": 200, "params": ["grant_type", "refresh_token"], "authorization": false}]),
        "{report:#}"
    );
    assert_eq!(report["blocked"], json!([]), "only loopback is reached");
}

/// A developer's whole way through Kiln's pages in Chromium (tests/browser/journey.js), on a
/// sandbox where an admin reviews: sign-up with the link from the mail a real SMTP sink
/// caught, an app registered in the form, changes requested and resubmitted, approval, an
/// EHR launch from the simulator and a standalone launch of a fhirclient app (reads and a
/// refresh), suspension and the app's token refused. Screenshots of every page are kept
/// (`KILN_SCREENSHOTS`, else target/screenshots/journey).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn developer_journey_from_sign_up_to_suspension() {
    let Some((folder, chromium)) = browser_setup() else {
        return;
    };
    let Some((server, sink)) = crate::common::portal::with_smtp_args(
        Backend::Sqlite,
        &["--sandbox", "--approval-policy", "review"],
    )
    .await
    else {
        return;
    };
    // The sandbox notice says how apps are approved under the policy in force.
    let signin = server
        .client
        .get(format!("{}/developer/signin", server.base))
        .send()
        .await
        .unwrap();
    let signin = signin.text().await.unwrap();
    assert!(
        signin.contains("apps are reviewed by this server's administrators"),
        "{signin}"
    );
    server.import(&[json!({
        "resourceType": "Practitioner",
        "id": "reviewer",
        "name": [{"family": "Reviewer", "given": ["Rita"]}]
    })]);
    server.kiln(&[
        "user",
        "add",
        "--username",
        "reviewer",
        "--password",
        "reviewer-pw-1",
        "--fhir-user",
        "Practitioner/reviewer",
        "--role",
        "admin",
    ]);
    let shots = std::env::var_os("KILN_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/journey")
        });
    let _ = std::fs::remove_dir_all(&shots);
    let scratch = tempfile::tempdir().unwrap();
    let logo = scratch.path().join("logo.png");
    std::fs::write(&logo, tiny_png()).unwrap();
    let app_port = free_port();
    let app_origin = format!("http://127.0.0.1:{app_port}");
    let email = "ada@journey.example.org";
    let env = [
        ("KILN_BASE", server.base.clone()),
        ("KILN_FHIR", server.fhir.clone()),
        ("APP_PORT", app_port.to_string()),
        ("MAILBOX", sink.mailbox().display().to_string()),
        ("EMAIL", email.to_string()),
        ("ADMIN_USERNAME", "reviewer".to_string()),
        ("ADMIN_PASSWORD", "reviewer-pw-1".to_string()),
        ("LOGO", logo.display().to_string()),
        ("SCREENSHOTS", shots.display().to_string()),
    ];
    let report = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
        run_driver(&folder, &chromium, "journey.js", &env)
    })
    .await
    .unwrap();
    println!("journey screenshots: {}", shots.display());
    assert!(report["error"].is_null(), "the journey stopped: {report:#}");

    // Sign-up: the link came by mail, to the address given.
    let link = report["verificationLink"].as_str().unwrap();
    assert!(link.starts_with(&format!("{}/developer/verify?token=", server.base)));
    // The mail along the way: the link, then each decision with its reason.
    let mails = sink.messages_to(email);
    let subjects: Vec<&str> = mails.iter().map(|mail| mail.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "Verify your Kiln developer account",
            "Changes requested for your app Journey Labs",
            "Your app Journey Labs is approved",
            "Your app Journey Labs is suspended",
        ],
        "{mails:?}"
    );
    assert!(mails[0].body.contains(link), "{:?}", mails[0]);
    assert!(
        mails[1]
            .body
            .contains("Please describe how long lab results are kept.")
    );
    assert!(mails[3].body.contains("Reported misuse."));
    assert!(report["homeUrl"].as_str().unwrap().ends_with("/developer"));
    let personas = report["personas"].as_array().unwrap();
    assert_eq!(personas.len(), 2, "{report:#}");

    // The review: each status as the developer's page shows it, and the reason.
    assert_eq!(
        report["statuses"],
        json!([
            "PENDING REVIEW",
            "CHANGES REQUESTED",
            "PENDING REVIEW",
            "ACTIVE",
            "SUSPENDED"
        ]),
        "{report:#}"
    );
    assert_eq!(
        report["reasonShown"],
        "Please describe how long lab results are kept."
    );
    assert_eq!(report["logoShown"], true, "{report:#}");
    let client_id = report["clientId"].as_str().unwrap();
    assert!(!client_id.is_empty());
    assert_eq!(report["secretButton"], false, "a public app has no secret");

    // The EHR launch: the simulator opened launch.html with iss and launch; the app read
    // the chosen patient and refreshed its token.
    let chosen = report["chosenPatient"].as_str().unwrap();
    let launches = report["launches"].as_array().unwrap();
    let ehr_launch = reqwest::Url::parse(launches[0].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<_, _> = ehr_launch.query_pairs().collect();
    assert_eq!(query["iss"], server.fhir.as_str(), "{ehr_launch}");
    assert!(query.contains_key("launch"), "{ehr_launch}");
    for (name, patient) in [("ehr", Some(chosen)), ("standalone", None)] {
        let run = &report[name];
        let app = &run["app"];
        assert_eq!(app["ok"], true, "{name}: {report:#}");
        assert_eq!(run["appOrigin"], app_origin.as_str(), "{name}");
        if let Some(patient) = patient {
            assert_eq!(app["patient"], patient, "{name}");
        }
        assert_eq!(app["firstRead"], app["patient"], "{name}");
        assert_eq!(app["secondRead"], app["patient"], "{name}");
        assert_ne!(
            app["tokenBefore"], app["tokenAfter"],
            "{name}: the refresh gave a new access token"
        );
    }

    // Each launch signed in as the developer's persona of its kind.
    assert!(
        report["ehr"]["app"]["user"]
            .as_str()
            .unwrap()
            .starts_with("Practitioner/"),
        "{report:#}"
    );
    let standalone = &report["standalone"]["app"];
    assert_eq!(
        standalone["user"].as_str().unwrap(),
        format!("Patient/{}", standalone["patient"].as_str().unwrap()),
        "the patient persona reads its own record"
    );

    // Suspended: the developer sees why, and the token the app last got is refused.
    assert_eq!(report["suspensionShown"], "Reported misuse.");
    assert_eq!(report["readAfterSuspension"], 401, "{report:#}");

    let files = report["screenshots"].as_array().unwrap();
    assert!(files.len() >= 20, "{files:?}");
    for file in files {
        let file = Path::new(file.as_str().unwrap());
        assert!(file.starts_with(&shots), "{}", file.display());
        let bytes = std::fs::read(file).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{}", file.display());
    }
}

/// A 1×1 PNG.
fn tiny_png() -> Vec<u8> {
    const BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(BASE64)
        .unwrap()
}
