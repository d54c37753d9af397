//! Native TLS: with `--tls-cert`/`--tls-key` Kiln speaks HTTPS (TLS 1.2 and 1.3) itself.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(kiln_bin())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--base-url")
        .arg(format!("https://127.0.0.1:{port}"))
        .arg("--database-url")
        .arg(format!("sqlite://{}/kiln.db", dir.path().display()))
        .arg("--tls-cert")
        .arg(tls.join("cert.pem"))
        .arg("--tls-key")
        .arg(tls.join("key.pem"))
        .env_remove("KILN_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let certificate = std::fs::read(tls.join("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&certificate).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/fhir/.well-known/smart-configuration");
    let deadline = Instant::now() + Duration::from_secs(60);
    let config = loop {
        match client.get(&url).send().await {
            Ok(response) => break expect_json(response, 200).await,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(error) => panic!("no HTTPS answer: {error}"),
        }
    };
    assert_eq!(config["issuer"], format!("https://127.0.0.1:{port}/fhir"));
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    child.kill().unwrap();
    child.wait().unwrap();
}
