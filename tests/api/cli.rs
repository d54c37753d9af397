//! The command line: serve defaults and settings, migrate, import, bench, and the admin
//! commands (clients, users, launches) with the base URL the server records.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::backend_tests;
use oauth2::TokenResponse;

use crate::common::smart::{Answers, App, access_token, authorize, query_params, refresh};
use crate::common::*;

backend_tests!(
    migrate_applies_and_is_repeatable,
    import_keeps_ids_resolves_references_and_reports_bad_records,
    import_reads_gzip_and_single_files,
    import_loads_the_shared_sample_data,
    serve_loads_the_bundled_sample_once,
    launch_create_prints_the_base_url_the_server_runs_with,
    client_add_takes_the_oauth_grant_names_and_refuses_what_cannot_work,
    user_and_launch_refuse_references_to_nothing,
    user_list_passwd_and_remove,
    client_show_and_rotate_secret,
);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn kiln(args: &[&str], database_url: &str) -> Output {
    Command::new(kiln_bin())
        .args(args)
        .arg("--database-url")
        .arg(database_url)
        .env_remove("KILN_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run kiln")
}

async fn migrate_applies_and_is_repeatable(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    for _ in 0..2 {
        let output = kiln(&["migrate"], &db.url);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let server = Server::start_on(db, &["--anonymous-access"]).await;
    assert_eq!(
        server.post("Patient", &patient("Migrated")).await.status(),
        201
    );
}

async fn import_keeps_ids_resolves_references_and_reports_bad_records(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let started = std::time::SystemTime::now();
    let dir = fixtures().join("import");
    let output = kiln(&["import", dir.to_str().unwrap()], &db.url);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !output.status.success(),
        "bad records make the exit code non-zero:\n{stderr}"
    );
    let encounters = dir.join("Encounter.ndjson");
    assert!(
        stderr.contains(&format!("{}:3: ", encounters.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:4: ", encounters.display())),
        "{stderr}"
    );
    assert!(stderr.contains("2 records failed"), "{stderr}");
    for line in [
        "Encounter",
        "Observation",
        "Organization",
        "Patient",
        "Practitioner",
    ] {
        assert!(
            stderr.lines().any(|l| l.trim_start().starts_with(line)),
            "summary lacks {line}:\n{stderr}"
        );
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Encounter", "2"]),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Patient", "2"]),
        "{stderr}"
    );

    let server = Server::start_on(db, &["--anonymous-access"]).await;
    let patient = expect_json(server.get("Patient/imp-p1").await, 200).await;
    assert_eq!(patient["meta"]["versionId"], "1");
    assert_eq!(
        patient["meta"]["profile"][0],
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
    );
    let last_updated = patient["meta"]["lastUpdated"].as_str().unwrap();
    let started = time::OffsetDateTime::from(started);
    let imported =
        time::OffsetDateTime::parse(last_updated, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(
        imported >= started - time::Duration::seconds(1),
        "lastUpdated is the import time: {last_updated}"
    );
    let encounter = expect_json(server.get("Encounter/imp-enc-1").await, 200).await;
    assert_eq!(
        encounter["participant"][0]["individual"]["reference"],
        "Practitioner/imp-doc-1"
    );
    // Resolved after its target (loaded later in the run) arrived.
    let encounter = expect_json(server.get("Encounter/imp-enc-2").await, 200).await;
    assert_eq!(
        encounter["serviceProvider"]["reference"],
        "Organization/imp-org-1"
    );
    let observation = expect_json(server.get("Observation/imp-obs-1").await, 200).await;
    assert_eq!(observation["subject"]["reference"], "Patient/imp-p2");
    expect_outcome(server.get("Encounter/imp-enc-3").await, 404).await;
    expect_outcome(server.get("Encounter/imp-enc-4").await, 404).await;
}

async fn import_reads_gzip_and_single_files(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read(fixtures().join("import/nested/Patient.ndjson")).unwrap();
    let gz_path = dir.path().join("Patient.ndjson.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        flate2::Compression::default(),
    );
    std::io::Write::write_all(&mut encoder, &source).unwrap();
    encoder.finish().unwrap();
    let single = fixtures().join("import/single-resource.json");
    let output = kiln(
        &[
            "import",
            gz_path.to_str().unwrap(),
            single.to_str().unwrap(),
        ],
        &db.url,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("imported 2 resources"), "{stderr}");
    // Importing again is an update: ids stay, versions move on.
    let output = kiln(&["import", gz_path.to_str().unwrap()], &db.url);
    assert!(output.status.success());
    let server = Server::start_on(db, &["--anonymous-access"]).await;
    let patient = expect_json(server.get("Patient/imp-p1").await, 200).await;
    assert_eq!(patient["meta"]["versionId"], "2");
    expect_json(server.get("Organization/imp-org-1").await, 200).await;
    let unsupported = kiln(
        &["import", fixtures().join("README.md").to_str().unwrap()],
        &server.db.url,
    );
    assert!(!unsupported.status.success());
}

/// Everything in ../shared/data/synthea and the US Core transaction Bundles import cleanly.
async fn import_loads_the_shared_sample_data(backend: Backend) {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if !shared.exists() {
        eprintln!("../shared/data is absent: nothing to import");
        return;
    }
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let synthea = shared.join("synthea");
    let us_core = shared.join("us-core-testdata");
    let output = kiln(
        &[
            "import",
            synthea.to_str().unwrap(),
            us_core.to_str().unwrap(),
        ],
        &db.url,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("failed"), "{stderr}");
    let server = Server::start_on(db, &["--anonymous-access"]).await;
    // Spot checks: a Synthea patient, a bulk-sample conditional reference, a US Core patient.
    expect_json(
        server
            .get("Patient/2be9b668-847a-4437-b33a-bdc38c665e08")
            .await,
        200,
    )
    .await;
    expect_json(server.get("Patient/85").await, 200).await;
    expect_json(server.get("Group/1a").await, 200).await;
    let encounter = expect_json(
        server
            .get("Encounter/00c7f717-4030-5582-2ed8-888ad2bc878e")
            .await,
        200,
    )
    .await;
    let text = encounter.to_string();
    assert!(
        !text.contains("?identifier="),
        "conditional references are resolved: {text}"
    );
}

/// Starts `kiln serve` in `dir` with the given args and env; returns the child and its port.
async fn serve_in(
    dir: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> (std::process::Child, reqwest::Client) {
    let mut command = Command::new(kiln_bin());
    command
        .arg("serve")
        .arg("--anonymous-access")
        .args(args)
        .current_dir(dir)
        .env_remove("KILN_DATABASE_URL")
        .env_remove("KILN_BASE_URL")
        .env_remove("KILN_BIND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    (command.spawn().expect("spawn"), reqwest::Client::new())
}

async fn created_location(client: &reqwest::Client, port: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Ok(response) = client
            .post(format!("http://127.0.0.1:{port}/fhir/Patient"))
            .header("content-type", "application/fhir+json")
            .body(patient("Env").to_string())
            .send()
            .await
        {
            assert_eq!(response.status(), 201);
            return response.headers()["location"].to_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_uses_the_embedded_default_and_flags_beat_env() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("KILN_BIND", format!("127.0.0.1:{port}")),
        ("KILN_BASE_URL", "http://from-env.example".to_string()),
    ];
    let (mut child, client) = serve_in(dir.path(), &[], &env).await;
    let location = created_location(&client, port).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        location.starts_with("http://from-env.example/fhir/Patient/"),
        "{location}"
    );
    assert!(
        dir.path().join("kiln-data/kiln.db").exists(),
        "the default SQLite file is created"
    );

    let (mut child, client) = serve_in(
        dir.path(),
        &["--base-url", "http://from-flag.example"],
        &env,
    )
    .await;
    let location = created_location(&client, port).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        location.starts_with("http://from-flag.example/fhir/Patient/"),
        "{location}"
    );
}

async fn serve_loads_the_bundled_sample_once(backend: Backend) {
    let Some(mut server) = Server::start_with(backend, &["--load-sample-data"]).await else {
        return;
    };
    let synthea = expect_json(
        server
            .get("Patient/2be9b668-847a-4437-b33a-bdc38c665e08")
            .await,
        200,
    )
    .await;
    assert_eq!(synthea["meta"]["versionId"], "1");
    let us_core = expect_json(server.get("Patient/85").await, 200).await;
    assert_eq!(us_core["meta"]["versionId"], "1");
    expect_json(server.get("Group/1a").await, 200).await;
    let history = expect_json(server.get("Observation/_history?_count=1").await, 200).await;
    assert_eq!(history["entry"].as_array().unwrap().len(), 1);
    // A restart finds the sample and leaves it alone.
    server.restart().await;
    let again = expect_json(server.get("Patient/85").await, 200).await;
    assert_eq!(again["meta"]["versionId"], "1");
}

/// `kiln bench --export` on a small set, on PostgreSQL too when one is configured: the run
/// fails unless the downloaded files hold every resource imported, once.
#[test]
fn bench_export_gets_every_resource_back() {
    let postgres = std::env::var("KILN_TEST_DATABASE_URL").ok();
    let mut command = Command::new(kiln_bin());
    command
        .args(["bench", "--export", "--resources", "300"])
        .env("KILN_LOG", "warn")
        .env_remove("KILN_BENCH_POSTGRES_URL")
        .stdin(Stdio::null());
    if let Some(url) = &postgres {
        command.args(["--postgres-url", url]);
    }
    let output = command.output().expect("run kiln bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("| SQLite |") || line.starts_with("| PostgreSQL |"))
        .collect();
    assert_eq!(rows.len(), 1 + usize::from(postgres.is_some()), "{stdout}");
}

/// `kiln bench --import-only` imports a small set into each backend (the run fails unless
/// every resource is stored) and prints each one's figure next to its goal, nothing else.
#[test]
fn bench_import_only_prints_each_backends_import_figure() {
    let postgres = std::env::var("KILN_TEST_DATABASE_URL").ok();
    let mut command = Command::new(kiln_bin());
    command
        .args(["bench", "--import-only", "--resources", "300"])
        .env("KILN_LOG", "warn")
        .env_remove("KILN_BENCH_POSTGRES_URL")
        .stdin(Stdio::null());
    if let Some(url) = &postgres {
        command.args(["--postgres-url", url]);
    }
    let output = command.output().expect("run kiln bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains(" import: ") && line.contains(" resources/s, goal >= "))
        .collect();
    assert!(figures[0].starts_with("SQLite import: "), "{stdout}");
    if postgres.is_some() {
        assert!(figures[1].starts_with("PostgreSQL import: "), "{stdout}");
    }
    assert_eq!(
        figures.len(),
        1 + usize::from(postgres.is_some()),
        "{stdout}"
    );
    assert!(!stdout.contains("Read by id"), "{stdout}");
}

/// Runs an admin command on `server`'s database as an operator would: no `KILN_BASE_URL`
/// unless `args` give `--base-url`.
fn admin(server: &Server, args: &[&str]) -> Output {
    Command::new(kiln_bin())
        .args(args)
        .env("KILN_DATABASE_URL", &server.db.url)
        .env_remove("KILN_BASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run kiln")
}

/// The JSON lines an admin command printed; panics (with its stderr) when it failed.
fn admin_ok(server: &Server, args: &[&str]) -> Vec<Value> {
    let output = admin(server, args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kiln {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}")))
        .collect()
}

/// Asserts that an admin command fails, and returns what it wrote on stderr.
fn admin_refused(server: &Server, args: &[&str]) -> String {
    let output = admin(server, args);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !output.status.success(),
        "kiln {args:?} was accepted: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

/// A secured server holding Patient p1, Encounter e1 and Practitioner dr1.
async fn server_with_records(backend: Backend) -> Option<Server> {
    let server = Server::start_secured(backend, &[]).await?;
    server.import(&[
        json!({"resourceType": "Patient", "id": "p1"}),
        json!({"resourceType": "Practitioner", "id": "dr1"}),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/p1"}}),
    ]);
    Some(server)
}

const APP_SCOPE: &str = "launch openid fhirUser offline_access patient/*.rs user/*.rs";

async fn launch_create_prints_the_base_url_the_server_runs_with(backend: Backend) {
    let Some(server) = server_with_records(backend).await else {
        return;
    };
    server.add_users(&[("doc", "Practitioner/dr1")]);
    let app = App::register(&server, "public", APP_SCOPE, &[]);
    let launch = [
        "launch",
        "create",
        "--client-id",
        &app.client_id,
        "--user",
        "doc",
        "--patient",
        "p1",
    ];
    // Without --base-url: the URL the running server was started with, silently.
    let output = admin(&server, &launch);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let url = printed["url"].as_str().unwrap();
    assert_eq!(query_params(url)["iss"], server.fhir, "{url}");
    // The launch it printed works on that server.
    let token = authorize(
        &server,
        &app,
        "launch patient/*.rs",
        Some(&query_params(url)["launch"]),
        &Answers::allow("doc", "pw-1"),
    )
    .await
    .unwrap();
    assert_eq!(token.extra_fields().patient.as_deref(), Some("p1"));

    // Another base URL given explicitly wins, with a warning naming both.
    let mut other = launch.to_vec();
    other.extend(["--base-url", "https://elsewhere.example"]);
    let output = admin(&server, &other);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains(&server.base),
        "{stderr}"
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        query_params(printed["url"].as_str().unwrap())["iss"],
        "https://elsewhere.example/fhir"
    );
}

async fn client_add_takes_the_oauth_grant_names_and_refuses_what_cannot_work(backend: Backend) {
    let Some(server) = server_with_records(backend).await else {
        return;
    };
    for spelling in ["authorization_code", "authorization-code"] {
        let added = admin_ok(
            &server,
            &[
                "client",
                "add",
                "--name",
                "App",
                "--type",
                "public",
                "--grant-type",
                spelling,
                "--redirect-uri",
                "https://app.example/cb",
                "--scope",
                "patient/*.rs",
            ],
        );
        let id = added[0]["client_id"].as_str().unwrap();
        let shown = admin_ok(&server, &["client", "show", id]);
        assert_eq!(
            shown[0]["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let key = crate::common::backend::AppKey::es384("k1");
    std::fs::write(&jwks, json!({"keys": [key.jwk]}).to_string()).unwrap();
    let backend_service = admin_ok(
        &server,
        &[
            "client",
            "add",
            "--name",
            "Backend",
            "--type",
            "confidential-asymmetric",
            "--grant-type",
            "client_credentials",
            "--jwks-file",
            jwks.to_str().unwrap(),
            "--scope",
            "system/*.rs",
        ],
    );
    assert!(backend_service[0]["client_id"].is_string());

    // The token endpoint gives client_credentials only to private_key_jwt clients, so a
    // secret-holding backend could never get a token: refused, with the reason.
    let stderr = admin_refused(
        &server,
        &[
            "client",
            "add",
            "--name",
            "Backend",
            "--type",
            "confidential-symmetric",
            "--grant-type",
            "client-credentials",
            "--scope",
            "system/*.rs",
        ],
    );
    assert!(
        stderr.contains("confidential-asymmetric") && stderr.contains("private_key_jwt"),
        "{stderr}"
    );
    let listed = admin_ok(&server, &["client", "list"]);
    assert_eq!(listed.len(), 3, "{listed:?}");
}

async fn user_and_launch_refuse_references_to_nothing(backend: Backend) {
    let Some(server) = server_with_records(backend).await else {
        return;
    };
    let user = |username: &str, fhir_user: &str| {
        vec![
            "user".to_string(),
            "add".into(),
            "--username".into(),
            username.into(),
            "--password".into(),
            "pw-1".into(),
            "--fhir-user".into(),
            fhir_user.into(),
        ]
    };
    for missing in ["Practitioner/123", "Patient/does-not-exist", "Patient/e1"] {
        let args = user("ghost", missing);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = admin_refused(&server, &args);
        assert!(stderr.contains(missing), "{stderr}");
    }
    assert!(admin_ok(&server, &["user", "list"]).is_empty());
    let args = user("doc", "Practitioner/dr1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    admin_ok(&server, &args);

    let app = App::register(&server, "public", APP_SCOPE, &[]);
    let launch = |patient: &str, encounter: &str| {
        let mut args = vec![
            "launch".to_string(),
            "create".into(),
            "--client-id".into(),
            app.client_id.clone(),
            "--user".into(),
            "doc".into(),
            "--patient".into(),
            patient.into(),
        ];
        if !encounter.is_empty() {
            args.extend(["--encounter".to_string(), encounter.to_string()]);
        }
        args
    };
    for (patient, encounter, named) in [
        ("does-not-exist", "", "Patient/does-not-exist"),
        ("dr1", "", "Patient/dr1"),
        ("p1", "nope", "Encounter/nope"),
    ] {
        let args = launch(patient, encounter);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = admin_refused(&server, &args);
        assert!(stderr.contains(named), "{stderr}");
    }
    let args = launch("p1", "e1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    admin_ok(&server, &args);
    // A deleted patient is no launch context either.
    let deleted = server
        .client
        .delete(server.url("Patient/p1"))
        .bearer_auth(backend_token(&server).await)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let args = launch("p1", "");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    admin_refused(&server, &args);
}

/// A backend-services token that may delete anything.
async fn backend_token(server: &Server) -> String {
    let service = crate::common::backend::BackendService::register(server, "system/*.cruds").await;
    service.token(server, "system/*.cruds").await
}

async fn user_list_passwd_and_remove(backend: Backend) {
    let Some(server) = server_with_records(backend).await else {
        return;
    };
    server.add_users(&[("alice", "Patient/p1"), ("doc", "Practitioner/dr1")]);
    let listed = admin_ok(&server, &["user", "list"]);
    assert_eq!(
        listed
            .iter()
            .map(|u| (u["username"].clone(), u["fhir_user"].clone()))
            .collect::<Vec<_>>(),
        [
            (json!("alice"), json!("Patient/p1")),
            (json!("doc"), json!("Practitioner/dr1"))
        ]
    );
    assert!(
        !listed[0].to_string().contains("argon2"),
        "no password hash: {listed:?}"
    );

    let app = App::register(&server, "public", APP_SCOPE, &[]);
    let scope = "launch/patient openid fhirUser offline_access patient/*.rs";
    admin_ok(
        &server,
        &["user", "passwd", "alice", "--password", "new secret"],
    );
    assert!(
        authorize(&server, &app, scope, None, &Answers::allow("alice", "pw-1"))
            .await
            .is_err(),
        "the old password no longer signs in"
    );
    let token = authorize(
        &server,
        &app,
        scope,
        None,
        &Answers::allow("alice", "new secret"),
    )
    .await
    .unwrap();
    let read = |token: String| {
        let server = &server;
        async move {
            server
                .client
                .get(server.url("Patient/p1"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(read(access_token(&token)).await, 200);
    admin_refused(&server, &["user", "passwd", "nobody", "--password", "x"]);

    // Removing alice revokes what she allowed: her app's tokens stop working at once.
    assert_eq!(
        admin_ok(&server, &["user", "remove", "alice"])[0]["removed"],
        "alice"
    );
    assert_eq!(read(access_token(&token)).await, 401);
    let refresh_token = token.refresh_token().unwrap().secret().clone();
    assert!(refresh(&server, &app, &refresh_token).await.is_err());
    let listed = admin_ok(&server, &["user", "list"]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["username"], "doc");
    admin_refused(&server, &["user", "remove", "alice"]);
}

async fn client_show_and_rotate_secret(backend: Backend) {
    let Some(server) = server_with_records(backend).await else {
        return;
    };
    server.add_users(&[("alice", "Patient/p1")]);
    let mut app = App::register(&server, "confidential-symmetric", APP_SCOPE, &[]);
    let shown = admin_ok(&server, &["client", "show", &app.client_id]);
    assert_eq!(shown[0]["client_id"], app.client_id);
    assert_eq!(shown[0]["type"], "confidential-symmetric");
    assert_eq!(shown[0]["redirect_uris"], json!([app.redirect_uri]));
    let text = shown[0].to_string();
    let old_secret = app.secret.clone().unwrap();
    assert!(
        !text.contains(&old_secret) && !text.contains("argon2"),
        "{text}"
    );
    admin_refused(&server, &["client", "show", "no-such-client"]);

    let scope = "launch/patient offline_access patient/*.rs";
    let token = authorize(&server, &app, scope, None, &Answers::allow("alice", "pw-1"))
        .await
        .unwrap();
    let refresh_token = token.refresh_token().unwrap().secret().clone();

    let rotated = admin_ok(&server, &["client", "rotate-secret", &app.client_id]);
    let new_secret = rotated[0]["client_secret"].as_str().unwrap().to_string();
    assert_eq!(rotated[0]["client_id"], app.client_id);
    assert_ne!(new_secret, old_secret);
    // The old secret no longer authenticates the client; the new one does.
    assert!(refresh(&server, &app, &refresh_token).await.is_err());
    app.secret = Some(new_secret);
    refresh(&server, &app, &refresh_token)
        .await
        .expect("the new secret authenticates the client");
    // Only a confidential-symmetric client has a secret to rotate.
    let public = App::register(&server, "public", APP_SCOPE, &[]);
    let stderr = admin_refused(&server, &["client", "rotate-secret", &public.client_id]);
    assert!(stderr.contains("confidential-symmetric"), "{stderr}");
    admin_refused(&server, &["client", "rotate-secret", "no-such-client"]);
}
