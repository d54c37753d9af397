//! `/metrics` (Prometheus text format) scraped from the real server: request counts by
//! route template, method and status with latency histograms, database pool gauges, export
//! jobs by state, the import counter; outside the SMART token, behind its own secret when
//! one is set, on its own listener when one is given, and absent when turned off.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::common::*;

backend_tests!(counts_requests_by_route_template_pool_and_exports);

/// One sample line of the text exposition: its name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a scrape (comment lines skipped).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let value = match value {
                "+Inf" => f64::INFINITY,
                value => value.parse().unwrap_or_else(|_| panic!("value of {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => {
                    let rest = rest.strip_suffix('}').expect("closing brace");
                    (name, parse_labels(rest))
                }
            };
            Sample {
                name: name.to_string(),
                labels,
                value,
            }
        })
        .collect()
}

/// `a="x",b="y"` (values may hold `{`, `}` and `,`; Kiln's never hold quotes).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("label name");
        let (value, after) = after.split_once('"').expect("label value");
        labels.insert(name.to_string(), value.to_string());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    labels
}

/// The value of the one sample named `name` whose labels include `labels`; 0 when there is
/// none (a counter not yet moved).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        })
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
    matching.first().map_or(0.0, |sample| sample.value)
}

async fn scrape_at(client: &reqwest::Client, url: &str) -> Vec<Sample> {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&response.text().await.unwrap())
}

async fn scrape(server: &Server) -> Vec<Sample> {
    scrape_at(&server.client, &format!("{}/metrics", server.base)).await
}

const READ: &str = "/fhir/{resource_type}/{id}";

async fn counts_requests_by_route_template_pool_and_exports(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server
        .put(
            "Patient/m1",
            &json!({"resourceType": "Patient", "id": "m1"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let before = scrape(&server).await;
    for _ in 0..3 {
        assert_eq!(server.get("Patient/m1").await.status(), 200);
    }
    assert_eq!(server.get("Patient/nobody").await.status(), 404);
    let unknown = server
        .client
        .get(format!("{}/no/such/page", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let after = scrape(&server).await;

    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let read_ok = [("route", READ), ("method", "GET"), ("status", "200")];
    let read_missing = [("route", READ), ("method", "GET"), ("status", "404")];
    assert_eq!(moved("kiln_http_requests_total", &read_ok), 3.0);
    assert_eq!(moved("kiln_http_requests_total", &read_missing), 1.0);
    assert_eq!(
        moved(
            "kiln_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "kiln_http_requests_total",
            &[("route", READ), ("method", "PUT"), ("status", "201")]
        ),
        0.0,
        "the PUT came before the first scrape"
    );
    // The latency histogram counted the same requests, each in a bucket.
    assert_eq!(
        moved("kiln_http_request_duration_seconds_count", &read_ok),
        3.0
    );
    assert_eq!(
        moved(
            "kiln_http_request_duration_seconds_bucket",
            &[read_ok[0], read_ok[1], read_ok[2], ("le", "+Inf")]
        ),
        3.0
    );
    assert!(value(&after, "kiln_http_request_duration_seconds_sum", &read_ok) > 0.0);
    // Raw paths never become labels.
    assert!(
        after.iter().all(
            |sample| sample.labels.values().all(|value| !value.contains("m1")
                && !value.contains("nobody")
                && !value.contains("such"))
        ),
        "a raw path became a label"
    );

    // The pool, read at scrape time.
    let pool = [("pool", "primary")];
    let size = value(&after, "kiln_db_pool_size", &pool);
    assert!(size >= 1.0, "pool size {size}");
    let idle = value(
        &after,
        "kiln_db_pool_connections",
        &[pool[0], ("state", "idle")],
    );
    let in_use = value(
        &after,
        "kiln_db_pool_connections",
        &[pool[0], ("state", "in_use")],
    );
    assert_eq!(idle + in_use, size);
    assert!(value(&after, "kiln_db_pool_max_connections", &pool) >= size);

    // Export jobs by state: none, then one that runs to the end.
    for state in ["queued", "running", "done", "failed"] {
        assert_eq!(value(&after, "kiln_export_jobs", &[("state", state)]), 0.0);
    }
    let kickoff = server
        .client
        .get(server.url("$export"))
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(kickoff.status(), 202);
    let jobs = |samples: &[Sample]| -> f64 {
        ["queued", "running", "done", "failed"]
            .iter()
            .map(|state| value(samples, "kiln_export_jobs", &[("state", state)]))
            .sum()
    };
    assert_eq!(jobs(&scrape(&server).await), 1.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let samples = scrape(&server).await;
        if value(&samples, "kiln_export_jobs", &[("state", "done")]) == 1.0 {
            assert_eq!(jobs(&samples), 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "the export did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With a secret, `/metrics` needs it as a bearer token (and never a SMART token); without
/// one it is open even on a server whose FHIR API needs tokens. The sample patients loaded
/// at start show in the import counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_secret_and_the_smart_token_are_separate() {
    let Some(open) = Server::start_secured(Backend::Sqlite, &["--load-sample-data"]).await else {
        return;
    };
    let no_token = open.get("Patient").await;
    assert_eq!(no_token.status(), 401, "the FHIR API still needs a token");
    let samples = scrape(&open).await;
    let imported = value(&samples, "kiln_import_resources_total", &[]);
    assert!(imported > 100.0, "sample resources imported: {imported}");
    assert_eq!(value(&samples, "kiln_build_info", &[]), 1.0);
    drop(open);

    let Some(server) =
        Server::start_secured(Backend::Sqlite, &["--metrics-token", "scrape-secret-1"]).await
    else {
        return;
    };
    let url = format!("{}/metrics", server.base);
    let without = server.client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), 401);
    assert!(without.headers().contains_key("www-authenticate"));
    let body = without.text().await.unwrap();
    assert!(body.contains("OperationOutcome"), "{body}");
    assert!(!body.contains("kiln_http_requests_total"));
    for wrong in ["scrape-secret-2", "scrape-secret-1x", "", "Scrape-secret-1"] {
        let response = server
            .client
            .get(&url)
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{wrong:?}");
    }
    let basic = server
        .client
        .get(&url)
        .basic_auth("scrape-secret-1", None::<&str>)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    let right = server
        .client
        .get(&url)
        .bearer_auth("scrape-secret-1")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let samples = parse(&right.text().await.unwrap());
    // The refused scrapes are counted, under their own route.
    assert_eq!(
        value(
            &samples,
            "kiln_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ),
        6.0
    );
}

/// `--metrics-bind` moves `/metrics` to its own listener, which sees the main listener's
/// requests; the main listener then answers 404 for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_listener() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let Some(server) = Server::start_with(Backend::Sqlite, &["--metrics-bind", &bind]).await else {
        return;
    };
    let main = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    let samples = scrape_at(&server.client, &format!("http://{bind}/metrics")).await;
    assert_eq!(
        value(
            &samples,
            "kiln_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
    assert!(value(&samples, "kiln_db_pool_size", &[("pool", "primary")]) >= 1.0);
}

/// `--disable-metrics`: no `/metrics` anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_turned_off() {
    let Some(server) = Server::start_with(Backend::Sqlite, &["--disable-metrics"]).await else {
        return;
    };
    let response = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
