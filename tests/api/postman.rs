//! The generated Postman collection run by newman against a live server with the sample data:
//! a token minted by `kiln token create` for a client registered by `kiln client add`, the
//! collection and environment downloaded from the server, every request's test passing
//! (metadata, discovery, a read, every US Core search example, a Bulk Data export).
//! newman comes from tests/postman (`npm ci` there); without it the test is skipped, unless
//! `KILN_REQUIRE_POSTMAN=1` (CI), which makes a missing newman a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn newman() -> Option<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/postman");
    let newman = folder.join("node_modules/.bin/newman");
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if node && newman.exists() {
        return Some(newman);
    }
    let missing = "newman (node, and `npm ci` in tests/postman)";
    if std::env::var("KILN_REQUIRE_POSTMAN").is_ok_and(|v| v == "1") {
        panic!("KILN_REQUIRE_POSTMAN=1 but the Postman test cannot run; missing {missing}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n*** Postman test SKIPPED: missing {missing} ***\n"
    );
    None
}

/// Requests in a collection item tree (folders are not requests).
fn requests(item: &Value) -> usize {
    match item.get("item").and_then(Value::as_array) {
        Some(items) => items.iter().map(requests).sum(),
        None => usize::from(item.get("request").is_some()),
    }
}

async fn download(server: &Server, path: &str, to: &Path) -> Value {
    let response = server
        .client
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    std::fs::write(to, body.to_string()).unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newman_runs_the_generated_collection_green() {
    let Some(newman) = newman() else {
        return;
    };
    let Some(server) = Server::start_secured(Backend::Sqlite, &["--load-sample-data"]).await else {
        return;
    };
    let client = server.kiln(&[
        "client",
        "add",
        "--name",
        "Postman",
        "--type",
        "public",
        "--redirect-uri",
        "https://oauth.pstmn.io/v1/callback",
        "--scope",
        "system/*.read",
    ]);
    let client_id = client["client_id"].as_str().unwrap();
    let minted = server.kiln(&[
        "token",
        "create",
        "--client-id",
        client_id,
        "--scope",
        "system/*.read",
    ]);
    let token = minted["access_token"].as_str().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let collection_path = dir.path().join("collection.json");
    let environment_path = dir.path().join("environment.json");
    let report_path = dir.path().join("report.json");
    let collection = download(&server, "/docs/postman/collection.json", &collection_path).await;
    let environment = download(&server, "/docs/postman/environment.json", &environment_path).await;
    let in_collection = requests(&collection);
    assert!(in_collection > 100, "{in_collection} requests");
    assert!(
        environment["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["key"] == "fhirBaseUrl" && v["value"] == server.fhir.as_str()),
        "{environment}"
    );

    let mut child = Command::new(&newman)
        .arg("run")
        .arg(&collection_path)
        .arg("--environment")
        .arg(&environment_path)
        .arg("--env-var")
        .arg(format!("accessToken={token}"))
        .args(["--reporters", "cli,json", "--reporter-json-export"])
        .arg(&report_path)
        .args(["--timeout-request", "30000", "--color", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run newman");
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "newman failed:\n{said}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let stats = &report["run"]["stats"];
    assert_eq!(stats["assertions"]["failed"], 0, "{said}");
    assert_eq!(stats["requests"]["failed"], 0, "{said}");
    assert!(
        stats["assertions"]["total"].as_u64().unwrap() >= in_collection as u64,
        "{stats}"
    );
    assert!(
        stats["requests"]["total"].as_u64().unwrap() >= in_collection as u64,
        "newman ran {} of {in_collection} requests",
        stats["requests"]["total"]
    );
}
