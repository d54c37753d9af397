//! What a newcomer and the HTTP edge see: plain log files, the anonymous-access warning, a
//! port clash naming its address, the README's search examples finding sample data, what
//! `DELETE` on a finished export says, and OperationOutcomes for oversized request heads.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend_tests;
use crate::bulk_export::{kickoff, load, manifest};
use crate::common::backend::BackendService;
use crate::common::*;

backend_tests!(
    readme_search_examples_find_sample_data,
    deleting_a_finished_export_says_its_files_were_deleted,
);

#[tokio::test]
async fn logs_are_plain_and_anonymous_access_is_warned() {
    let Some(open) = Server::start(Backend::Sqlite).await else {
        return;
    };
    assert_eq!(open.get("metadata").await.status(), 200);
    let log = open.log();
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes when stderr is a file:\n{log}"
    );
    let warning = log
        .lines()
        .find(|line| line.contains("WARN") && line.contains("--anonymous-access"))
        .unwrap_or_else(|| panic!("no warning about --anonymous-access:\n{log}"));
    assert!(warning.contains("without a token"), "{warning}");

    let Some(secured) = Server::start_secured(Backend::Sqlite, &[]).await else {
        return;
    };
    assert!(!secured.log().contains("--anonymous-access"));
}

#[test]
fn a_port_clash_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(kiln_bin())
        .args(["serve", "--bind", &address, "--database-url"])
        .arg(format!("sqlite://{}/kiln.db", dir.path().display()))
        .env_remove("KILN_DATABASE_URL")
        .env_remove("KILN_BIND")
        .env_remove("KILN_BASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&address) && stderr.to_lowercase().contains("in use"),
        "{stderr}"
    );
}

/// The curl lines of README's "Searching" section, as paths under the FHIR base.
fn readme_searches() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Searching\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Searching section");
    let searches: Vec<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("curl 'http://localhost:8080/fhir/"))
        .map(|rest| rest.trim_end_matches('\'').to_string())
        .collect();
    assert!(searches.len() >= 3, "{section}");
    searches
}

async fn readme_search_examples_find_sample_data(backend: Backend) {
    let Some(server) = Server::start_with(backend, &["--load-sample-data"]).await else {
        return;
    };
    for search in readme_searches() {
        let bundle = expect_json(server.get(&search).await, 200).await;
        let matches = bundle["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["search"]["mode"] != "outcome")
                    .count()
            })
            .unwrap_or(0);
        assert!(matches > 0, "README's {search} finds nothing: {bundle}");
    }
}

async fn deleting_a_finished_export_says_its_files_were_deleted(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) =
        Server::start_secured(backend, &["--export-dir", dir.path().to_str().unwrap()]).await
    else {
        return;
    };
    let service = BackendService::register(&server, "system/*.cruds").await;
    let token = service.token(&server, "system/*.cruds").await;
    load(&server, &token).await;
    let status = kickoff(&server, &token, "$export").await;
    let finished = manifest(&server, &token, &status).await;
    let file = finished["output"][0]["url"].as_str().unwrap().to_string();
    let response = server
        .client
        .delete(&status)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let outcome = expect_outcome(response, 202).await;
    let said = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        said.contains("finished")
            && said.contains("files were deleted")
            && !said.contains("cancel"),
        "{said}"
    );
    let gone = server
        .client
        .get(&file)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

/// Sends `request` over a fresh TCP connection and returns the status and the body.
async fn raw(server: &Server, request: &[u8]) -> (u16, String) {
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn outcome_of(body: &str) -> Value {
    let outcome: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    outcome
}

#[tokio::test]
async fn oversized_request_heads_get_an_operation_outcome() {
    let Some(server) = Server::start(Backend::Sqlite).await else {
        return;
    };
    // A 40 KB search URL: 414 with an outcome that says what to do instead.
    let long = format!(
        "GET /fhir/Patient?name={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(40_000)
    );
    let (status, body) = raw(&server, long.as_bytes()).await;
    assert_eq!(status, 414, "{body}");
    let outcome = outcome_of(&body);
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("_search"),
        "{outcome}"
    );
    // 40 headers of 2 KB: 431 with an outcome.
    let mut headers =
        String::from("GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..40 {
        headers.push_str(&format!("X-Filler-{i}: {}\r\n", "b".repeat(2_000)));
    }
    headers.push_str("\r\n");
    let (status, body) = raw(&server, headers.as_bytes()).await;
    assert_eq!(status, 431, "{body}");
    outcome_of(&body);
    // What hyper cannot parse it refuses itself before Kiln sees a request: a bare 400.
    let (status, body) = raw(
        &server,
        b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // The server is still fine.
    assert_eq!(server.get("metadata").await.status(), 200);
}
