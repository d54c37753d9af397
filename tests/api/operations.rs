//! Health probes, request ids, JSON logs and graceful shutdown.

use std::time::Duration;

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    health_and_readiness_probes,
    every_response_carries_a_request_id,
    json_logs_carry_the_request_id,
    sigterm_finishes_in_flight_requests,
);

async fn health_and_readiness_probes(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let health = server
        .client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = server
        .client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let response = server.get("metadata").await;
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let failing = server.get("Patient/missing").await;
    assert!(failing.headers().contains_key("x-request-id"));
    let given = server
        .client
        .get(server.url("metadata"))
        .header("x-request-id", "client-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "client-chosen-id");
}

async fn json_logs_carry_the_request_id(backend: Backend) {
    let Some(server) = Server::start_with(backend, &["--log-format", "json"]).await else {
        return;
    };
    let response = server
        .client
        .get(server.url("Patient/nobody"))
        .header("x-request-id", "trace-me-123")
        .header("authorization", "Bearer secret-token-value")
        .send()
        .await
        .unwrap();
    // An unknown token is refused even under anonymous access.
    assert_eq!(response.status(), 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
        })
        .collect();
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .any(|line| line.to_string().contains("trace-me-123")),
        "no log line names the request id:\n{log}"
    );
    assert!(
        !log.contains("secret-token-value"),
        "a bearer token reached the log"
    );
}

async fn sigterm_finishes_in_flight_requests(backend: Backend) {
    let Some(mut server) = Server::start(backend).await else {
        return;
    };
    let body = patient("Slow").to_string().into_bytes();
    let (first, rest) = body.split_at(10);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    sender.send(Ok(first.to_vec())).await.unwrap();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let request = server
        .client
        .post(server.url("Patient"))
        .header("content-type", "application/fhir+json")
        .header("content-length", body.len().to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let in_flight = tokio::spawn(request);
    // The server is now reading the body; ask it to stop, then finish the body.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut child = server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sender.send(Ok(rest.to_vec())).await.unwrap();
    drop(sender);
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 201);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "kiln exited with {status}");
    // New connections are refused once it has stopped.
    assert!(
        server
            .client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_err()
    );
}
