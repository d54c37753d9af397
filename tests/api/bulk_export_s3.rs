//! Bulk Data export into an S3-compatible bucket (moto's server): the objects land in the
//! bucket, Kiln serves them (plain and gzip) behind the token, DELETE removes them, and a
//! second replica on the same PostgreSQL database and bucket serves a job the first one ran.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::bulk_export::{ALL, contents, expected, kickoff, load, manifest};
use crate::common::backend::BackendService;
use crate::common::s3::S3Server;
use crate::common::*;

backend_tests!(exports_into_a_bucket);

const BUCKET: &str = "kiln-exports";
const PREFIX: &str = "exports/test";
const SECRET: &str = "moto-secret-access-key";

/// The `KILN_EXPORT_S3_*` settings for `bucket` on `s3`.
fn s3_env(s3: &S3Server, bucket: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KILN_EXPORT_S3_BUCKET", bucket.to_string()),
        ("KILN_EXPORT_S3_ENDPOINT", s3.endpoint.clone()),
        ("KILN_EXPORT_S3_REGION", "us-east-1".to_string()),
        ("KILN_EXPORT_S3_PREFIX", PREFIX.to_string()),
        (
            "KILN_EXPORT_S3_ACCESS_KEY_ID",
            "moto-access-key-id".to_string(),
        ),
        ("KILN_EXPORT_S3_SECRET_ACCESS_KEY", SECRET.to_string()),
    ]
}

/// A server that needs tokens, with its own export directory and the S3 settings.
async fn start(db: TestDb, export_dir: &Path, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_on_with_env(db, &["--export-dir", export_dir.to_str().unwrap()], &env).await
}

/// A file's bytes as served, decompressed when asked for gzip.
async fn served(server: &Server, token: &str, url: &str, gzip: bool) -> Vec<u8> {
    let mut request = server.client.get(url).bearer_auth(token);
    if gzip {
        request = request.header("accept-encoding", "gzip");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let encoded = response.headers().get("content-encoding").cloned();
    let body = response.bytes().await.unwrap();
    if !gzip {
        assert!(encoded.is_none());
        return body.to_vec();
    }
    assert_eq!(encoded.unwrap(), "gzip");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut plain)
        .unwrap();
    plain
}

/// Every manifest file is served exactly as its object reads in the bucket.
async fn serves_the_objects(
    server: &Server,
    token: &str,
    done: &Value,
    s3: &S3Server,
    keys: &[String],
) {
    for file in done["output"].as_array().unwrap() {
        let url = file["url"].as_str().unwrap();
        assert!(url.starts_with(&server.fhir), "{url}");
        let suffix = format!("/{}.1.ndjson", file["type"].as_str().unwrap());
        let key = keys.iter().find(|key| key.ends_with(&suffix)).unwrap();
        let object = s3.object(BUCKET, key).await;
        assert!(!object.is_empty());
        assert_eq!(served(server, token, url, false).await, object, "{url}");
        assert_eq!(served(server, token, url, true).await, object, "{url}");
    }
}

/// `url` (of any server) on `server`.
fn rebase(url: &str, server: &Server) -> String {
    let path = &url[url.find("/fhir/").unwrap()..];
    format!("{}{path}", server.base)
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

async fn exports_into_a_bucket(backend: Backend) {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    s3.create_bucket(BUCKET).await;
    let env = s3_env(&s3, BUCKET);
    let first_dir = tempfile::tempdir().unwrap();
    let first = start(db, first_dir.path(), &env).await;
    let service = BackendService::register(&first, ALL).await;
    let token = service.token(&first, ALL).await;
    load(&first, &token).await;

    let status = kickoff(&first, &token, "$export").await;
    let done = manifest(&first, &token, &status).await;
    assert_eq!(done["requiresAccessToken"], true);
    let job = status.rsplit('/').next().unwrap();
    let job_prefix = format!("{PREFIX}/{job}/");

    // One object per type under the prefix, and nothing in the export directory.
    let keys = s3.keys(BUCKET, &job_prefix).await;
    let names: Vec<&str> = keys
        .iter()
        .map(|key| key.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Group.1.ndjson",
            "Observation.1.ndjson",
            "Organization.1.ndjson",
            "Patient.1.ndjson"
        ]
    );
    assert!(is_empty(first_dir.path()));
    assert_eq!(
        contents(&first, &token, &done, "output").await,
        expected(&[
            ("Group", &["g1"]),
            ("Observation", &["o1", "o2", "o3", "o4"]),
            ("Organization", &["org1"]),
            ("Patient", &["p1", "p2", "p3"]),
        ])
    );
    serves_the_objects(&first, &token, &done, &s3, &keys).await;
    let url = done["output"][0]["url"].as_str().unwrap().to_string();
    assert_eq!(first.client.get(&url).send().await.unwrap().status(), 401);

    // A second replica (same database and bucket, its own empty export directory) serves
    // the job the first one ran; the SQLite file is not shared between processes.
    let (server, _replica_dir) = if backend == Backend::Postgres {
        let replica_dir = tempfile::tempdir().unwrap();
        let replica = start(first.db.shared(), replica_dir.path(), &env).await;
        let again = manifest(&replica, &token, &rebase(&status, &replica)).await;
        assert_eq!(again["output"].as_array().unwrap().len(), 4);
        serves_the_objects(&replica, &token, &again, &s3, &keys).await;
        assert!(is_empty(replica_dir.path()));
        (replica, Some(replica_dir))
    } else {
        (first, None)
    };

    // DELETE of the status URL removes the objects; the files are gone.
    let response = server
        .client
        .delete(rebase(&status, &server))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(s3.keys(BUCKET, &job_prefix).await, Vec::<String>::new());
    let response = server
        .client
        .get(rebase(&url, &server))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(!server.log().contains(SECRET), "the secret key was logged");
}

/// `kiln serve` with these settings must stop at start; returns what it printed.
async fn fails_to_start(env: &[(&str, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(kiln_bin())
        .arg("serve")
        .args(["--bind", "127.0.0.1:0"])
        .arg("--database-url")
        .arg(format!("sqlite://{}/kiln.db", dir.path().display()))
        .arg("--export-dir")
        .arg(dir.path().join("exports"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kiln serve started with {env:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!printed.contains("kiln listening"), "{printed}");
    assert!(
        !printed.contains(SECRET),
        "the secret key was printed: {printed}"
    );
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_s3_settings_stop_kiln_at_start() {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let settings = s3_env(&s3, "no-such-bucket");
    let with = |name: &'static str, value: &str| {
        let mut changed: Vec<(&str, String)> = settings
            .iter()
            .filter(|(k, _)| *k != name)
            .cloned()
            .collect();
        changed.push((name, value.to_string()));
        changed
    };

    let printed = fails_to_start(&settings).await;
    assert!(printed.contains("no-such-bucket"), "{printed}");
    let printed = fails_to_start(&with("KILN_EXPORT_S3_ENDPOINT", "ftp://127.0.0.1:1")).await;
    assert!(
        printed.contains("KILN_EXPORT_S3_ENDPOINT must be an http:// or https:// URL"),
        "{printed}"
    );
    let printed = fails_to_start(&with("KILN_EXPORT_S3_ENDPOINT", "not a url")).await;
    assert!(
        printed.contains("KILN_EXPORT_S3_ENDPOINT is not a URL"),
        "{printed}"
    );
    let without_secret: Vec<(&str, String)> = settings
        .iter()
        .filter(|(k, _)| *k != "KILN_EXPORT_S3_SECRET_ACCESS_KEY")
        .cloned()
        .collect();
    let printed = fails_to_start(&without_secret).await;
    assert!(
        printed.contains("--export-s3-secret-access-key"),
        "{printed}"
    );
}
