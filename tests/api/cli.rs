//! The command line: serve defaults and settings, migrate, import, bench.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    migrate_applies_and_is_repeatable,
    import_keeps_ids_resolves_references_and_reports_bad_records,
    import_reads_gzip_and_single_files,
    import_loads_the_shared_sample_data,
    serve_loads_the_bundled_sample_once,
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
