//! `KILN_DATABASE_READ_URL`: searches, history and export reads go to a real streaming
//! standby (a second PostgreSQL cluster made with `pg_basebackup` by the test), while a
//! client that wrote reads its own writes. The proof that reads go to the standby: with
//! replay paused there, another client's search misses a resource the primary holds.

use std::time::{Duration, Instant};

use crate::bulk_export::{ALL, kickoff, manifest};
use crate::common::backend::BackendService;
use crate::common::standby::Replicated;
use crate::common::*;

async fn send(server: &Server, token: &str, path: &str) -> Value {
    let response = server
        .client
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await
}

/// The ids of a Bundle's resources.
async fn ids(server: &Server, token: &str, path: &str) -> Vec<String> {
    send(server, token, path).await["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["resource"]["id"].as_str().map(str::to_string))
        .collect()
}

async fn create(server: &Server, token: &str, family: &str) -> String {
    let response = server
        .client
        .post(server.url("Patient"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(patient(family).to_string())
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn replay(standby: &sqlx::PgPool, paused: bool) {
    let call = if paused {
        "SELECT pg_wal_replay_pause()"
    } else {
        "SELECT pg_wal_replay_resume()"
    };
    sqlx::query(call).execute(standby).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_use_the_standby_and_writers_read_their_writes() {
    let Some(pg) = Replicated::start() else {
        return;
    };
    let exports = tempfile::tempdir().unwrap();
    let server = Server::start_on_with_env(
        TestDb::existing(&pg.primary_url),
        &["--export-dir", exports.path().to_str().unwrap()],
        &[("KILN_DATABASE_READ_URL", pg.standby_url.as_str())],
    )
    .await;
    let writer = BackendService::register(&server, ALL).await;
    let a = writer.token(&server, ALL).await;
    let reader = BackendService::register(&server, ALL).await;
    let b = reader.token(&server, ALL).await;
    let standby = sqlx::PgPool::connect(&pg.standby_url).await.unwrap();

    // The standby stops applying what the primary sends.
    replay(&standby, true).await;
    let first = create(&server, &a, "Fence1").await;

    // The writer sees its write everywhere at once: read, search, history.
    assert_eq!(
        send(&server, &a, &format!("Patient/{first}")).await["id"],
        first.as_str()
    );
    assert_eq!(
        ids(&server, &a, "Patient?family=Fence1").await,
        [first.as_str()]
    );
    assert!(ids(&server, &a, "Patient/_history").await.contains(&first));

    // The fence is kept in the primary database: another Kiln replica (as behind a load
    // balancer) also sends the writer's search to the primary.
    let second_replica = Server::start_on_with_env(
        TestDb::existing(&pg.primary_url),
        &["--export-dir", exports.path().to_str().unwrap()],
        &[("KILN_DATABASE_READ_URL", pg.standby_url.as_str())],
    )
    .await;
    assert_eq!(
        ids(&second_replica, &a, "Patient?family=Fence1").await,
        [first.as_str()]
    );
    assert_eq!(
        ids(&second_replica, &b, "Patient?family=Fence1").await,
        Vec::<String>::new()
    );
    drop(second_replica);

    // Another client reads by id from the primary, but searches and history come from the
    // standby, which has not replayed the write.
    assert_eq!(
        send(&server, &b, &format!("Patient/{first}")).await["id"],
        first.as_str()
    );
    assert_eq!(
        ids(&server, &b, "Patient?family=Fence1").await,
        Vec::<String>::new()
    );
    assert!(!ids(&server, &b, "Patient/_history").await.contains(&first));

    // Once replay goes on, the standby catches up and the other client finds it too.
    replay(&standby, false).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ids(&server, &b, "Patient?family=Fence1").await.is_empty() {
        assert!(Instant::now() < deadline, "{}", pg.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The writer's write is replayed: it reads from the standby again, and so misses the
    // other client's new write while replay is paused, which that client itself finds.
    replay(&standby, true).await;
    let second = create(&server, &b, "Fence2").await;
    assert_eq!(
        ids(&server, &a, "Patient?family=Fence2").await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&server, &b, "Patient?family=Fence2").await,
        [second.as_str()]
    );

    // An export waits for the standby to hold every earlier write; a standby that lags
    // that long leaves the export to the primary, so nothing written before it is missing.
    let status = kickoff(&server, &a, "Patient/$export").await;
    let done = manifest(&server, &a, &status).await;
    let url = done["output"][0]["url"].as_str().unwrap();
    let text = server
        .client
        .get(url)
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(&first) && text.contains(&second), "{text}");
    assert!(
        server.log().contains("the read replica lags"),
        "{}",
        server.log()
    );
    replay(&standby, false).await;
    standby.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_url_needs_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(kiln_bin())
        .arg("serve")
        .args(["--bind", "127.0.0.1:0"])
        .arg("--database-url")
        .arg(format!("sqlite://{}/kiln.db", dir.path().display()))
        .arg("--export-dir")
        .arg(dir.path().join("exports"))
        .args(["--database-read-url", "sqlite://elsewhere.db"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let printed = String::from_utf8_lossy(&output.stderr);
    assert!(
        printed.contains("--database-read-url needs PostgreSQL"),
        "{printed}"
    );
}
