//! Scale-out on real parts: three `kiln serve` replicas on one PostgreSQL database behind
//! HAProxy (round robin per request, health checks on `/readyz`). HAProxy's log says which
//! replica answered each request. PostgreSQL only: SQLite serves a single process (the
//! drain on shutdown, which a load balancer relies on, is checked on both backends).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::backend_tests;
use crate::bulk_export::{ALL, contents, expected, kickoff, manifest};
use crate::common::backend::BackendService;
use crate::common::haproxy::Balancer;
use crate::common::smart::{Answers, App, access_token, authorize};
use crate::common::*;

/// Three replicas on one fresh database behind a running HAProxy; `None` when HAProxy or
/// PostgreSQL is not there (and not required).
struct Cluster {
    balancer: Balancer,
    replicas: Vec<Server>,
}

impl Cluster {
    async fn start(extra_args: &[&str]) -> Option<Cluster> {
        let mut balancer = Balancer::plan()?;
        let db = TestDb::new(Backend::Postgres).await?;
        let first = Server::start_behind(db, &balancer.base, extra_args, &[]).await;
        let mut replicas = vec![first];
        for _ in 1..3 {
            let shared = replicas[0].db.shared();
            replicas.push(Server::start_behind(shared, &balancer.base, extra_args, &[]).await);
        }
        balancer.start(&replicas.iter().collect::<Vec<_>>()).await;
        Some(Cluster { balancer, replicas })
    }

    /// Any replica, for the helpers that take a `Server`: its `base` is the balancer's.
    fn front(&self) -> &Server {
        &self.replicas[0]
    }

    fn logs(&self) -> String {
        let mut all = self.balancer.log();
        for (index, replica) in self.replicas.iter().enumerate() {
            all.push_str(&format!("\n--- kiln{index} ---\n{}", replica.log()));
        }
        all
    }
}

/// The header of a JWT, decoded.
fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// A patient with an observation, and the user `alice` who is that patient.
fn records(server: &Server) {
    server.import(&[
        json!({"resourceType": "Patient", "id": "pa", "name": [{"family": "A"}]}),
        json!({"resourceType": "Observation", "id": "oa", "status": "final",
               "code": {"text": "weight"}, "subject": {"reference": "Patient/pa"}}),
    ]);
    server.add_users(&[("alice", "Patient/pa")]);
}

const SCOPE: &str = "launch/patient openid fhirUser patient/*.rs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smart_launch_spans_replicas() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    let front = cluster.front();
    records(front);
    let app = App::register(front, "public", SCOPE, &[]);
    let token = authorize(front, &app, SCOPE, None, &Answers::allow("alice", "pw-1"))
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", cluster.logs()));
    assert_eq!(token.extra_fields().patient.as_deref(), Some("pa"));
    let bearer = access_token(&token);
    for path in ["Patient/pa", "Observation?patient=pa", "Observation/oa"] {
        let response = front
            .client
            .get(front.url(path))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }

    // Every step of the flow (authorize, login form, consent, token, reads) went to another
    // replica than the step before it, and every replica took part.
    cluster
        .balancer
        .wait_count("GET", "/fhir/Observation/oa", 1)
        .await;
    let served = cluster.balancer.served();
    let start = served
        .iter()
        .position(|s| s.method == "GET" && s.path == "/auth/authorize")
        .unwrap_or_else(|| panic!("{}", cluster.logs()));
    let flow = &served[start..];
    assert!(
        flow.iter()
            .any(|s| s.method == "POST" && s.path == "/auth/token"),
        "{flow:?}"
    );
    assert!(flow.len() >= 6, "{flow:?}");
    for pair in flow.windows(2) {
        assert_ne!(pair[0].server, pair[1].server, "{flow:?}");
    }
    for step in flow {
        assert!(step.status < 400, "{flow:?}");
        assert_eq!(step.retries, "0", "{flow:?}");
    }
    let mut replicas: Vec<&str> = flow.iter().map(|s| s.server.as_str()).collect();
    replicas.sort();
    replicas.dedup();
    assert_eq!(replicas, ["kiln0", "kiln1", "kiln2"], "{flow:?}");
    // The replicas' own logs agree: each handled part of the flow.
    for replica in &cluster.replicas {
        assert!(replica.log().contains("/auth/"), "{}", cluster.logs());
    }
}

/// The kids of the JWKS one replica serves.
async fn jwks_kids(front: &Server) -> Vec<String> {
    let jwks: Value = front
        .client
        .get(format!("{}/auth/jwks", front.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_used_by_every_replica() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    let front = cluster.front();
    records(front);
    let app = App::register(front, "public", SCOPE, &[]);
    // Every replica has read (and keeps) the first key.
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(jwks_kids(front).await);
    }
    assert!(
        first
            .iter()
            .all(|kids| kids.len() == 1 && *kids == first[0])
    );
    let old = first[0][0].clone();

    let rotated = front.kiln(&["keys", "rotate"]);
    let new = rotated["kid"].as_str().unwrap().to_string();
    assert_ne!(new, old);

    // Each replica at once publishes the new key, and still the old one.
    for _ in 0..3 {
        let kids = jwks_kids(front).await;
        assert!(kids.contains(&new), "{kids:?}");
        assert!(kids.contains(&old), "{kids:?}");
    }
    let jwks = cluster.balancer.wait_count("GET", "/auth/jwks", 6).await;
    let mut servers: Vec<String> = jwks[3..6].iter().map(|s| s.server.clone()).collect();
    servers.sort();
    assert_eq!(servers, ["kiln0", "kiln1", "kiln2"]);

    // And signs id_tokens with it, whichever replica answers the token request.
    let mut issuers: Vec<String> = Vec::new();
    for issued in 1..=9 {
        let token = authorize(front, &app, SCOPE, None, &Answers::allow("alice", "pw-1"))
            .await
            .unwrap();
        let id_token = token.extra_fields().id_token.clone().unwrap();
        assert_eq!(jwt_header(&id_token)["kid"], new.as_str());
        let tokens = cluster
            .balancer
            .wait_count("POST", "/auth/token", issued)
            .await;
        issuers.push(tokens[issued - 1].server.clone());
        issuers.sort();
        issuers.dedup();
        if issuers.len() == 3 {
            break;
        }
        // One more request moves the round robin along, so the next token request lands
        // on another replica.
        jwks_kids(front).await;
    }
    assert_eq!(issuers, ["kiln0", "kiln1", "kiln2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_outlives_its_worker() {
    let exports = tempfile::tempdir().unwrap();
    let dir = exports.path().to_str().unwrap().to_string();
    // One resource per page, the lease renewed after each: a run takes a while, and a
    // killed worker's job is free again two seconds later. The export directory is shared
    // (a bucket in a real deployment).
    let args = [
        "--export-dir",
        dir.as_str(),
        "--export-batch",
        "1",
        "--export-lease",
        "2",
        "--export-file-lines",
        "500",
    ];
    let Some(mut cluster) = Cluster::start(&args).await else {
        return;
    };
    let front = cluster.front();
    let mut resources = vec![json!({"resourceType": "Patient", "id": "p1"})];
    let observations: Vec<String> = (0..1500).map(|n| format!("o{n}")).collect();
    for id in &observations {
        resources.push(
            json!({"resourceType": "Observation", "id": id, "status": "final",
                              "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}),
        );
    }
    front.import(&resources);
    let service = BackendService::register(front, ALL).await;
    let token = service.token(front, ALL).await;

    let status = kickoff(front, &token, "$export").await;
    let job = status.rsplit('/').next().unwrap().to_string();
    let started = |log: &str| {
        log.lines()
            .filter(|line| line.contains("export started") && line.contains(&job))
            .count()
    };
    // The replica whose worker took the job is killed while it runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    let worker = loop {
        if let Some(index) = cluster.replicas.iter().position(|r| started(&r.log()) > 0) {
            break index;
        }
        assert!(Instant::now() < deadline, "{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cluster.replicas[worker].kill9();
    let front = cluster.front();
    let response = front
        .client
        .get(&status)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "the export was not cut short");
    assert!(!cluster.replicas[worker].log().contains("export complete"));

    // Another replica takes the job over when the lease runs out and finishes it.
    let survivor = &cluster.replicas[(worker + 1) % 3];
    let done = manifest(survivor, &token, &status).await;
    let others: usize = cluster
        .replicas
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != worker)
        .map(|(_, replica)| started(&replica.log()))
        .sum();
    assert_eq!(others, 1, "{}", cluster.logs());
    let mut ids: Vec<&str> = observations.iter().map(String::as_str).collect();
    ids.sort();
    assert_eq!(
        contents(survivor, &token, &done, "output").await,
        expected(&[("Observation", ids.as_slice()), ("Patient", &["p1"])]),
        "every resource exactly once"
    );
}

/// Reads (and writes) through the balancer until `stop`; returns the failures.
async fn load(front: Arc<(reqwest::Client, String, String)>, stop: Arc<AtomicBool>) -> Vec<String> {
    let (client, fhir, token) = &*front;
    let mut failures = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let request = if n.is_multiple_of(4) {
            client
                .post(format!("{fhir}/Observation"))
                .header("content-type", "application/fhir+json")
                .body(
                    json!({"resourceType": "Observation", "status": "final",
                           "code": {"text": "x"}, "subject": {"reference": "Patient/pa"}})
                    .to_string(),
                )
        } else {
            client.get(format!("{fhir}/Patient/pa"))
        };
        match request.bearer_auth(token).send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => failures.push(format!("status {}", response.status())),
            Err(error) => failures.push(error.to_string()),
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarts_under_load() {
    let Some(mut cluster) = Cluster::start(&["--shutdown-drain-secs", "2"]).await else {
        return;
    };
    let front = cluster.front();
    records(front);
    let service = BackendService::register(front, ALL).await;
    let token = service.token(front, ALL).await;
    let shared = Arc::new((reqwest::Client::new(), front.fhir.clone(), token));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(load(shared.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // SIGTERM: /readyz fails at once, HAProxy takes the replica out while it still serves,
    // then it closes and exits.
    let mut child = cluster.replicas[1].terminate();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.balancer.up().await.contains(&"kiln1".to_string()) {
        assert!(Instant::now() < deadline, "{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the replica was out of the balancer only after it had stopped"
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let served_before = cluster.balancer.served().len();

    // Back on the same port: HAProxy's checks bring it back in.
    cluster.replicas[1].restart().await;
    cluster.balancer.wait_up(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    assert_eq!(failures, Vec::<String>::new(), "{}", cluster.logs());
    let served = cluster.balancer.served();
    assert!(served.len() > 100, "too little load: {}", served.len());
    assert!(
        served.iter().all(|s| s.status < 500),
        "{}",
        cluster.balancer.log()
    );
    assert!(
        served[served_before..].iter().any(|s| s.server == "kiln1"),
        "the restarted replica took requests again"
    );
}

backend_tests!(readyz_fails_while_draining);

/// From SIGTERM on, `/readyz` answers 503 while requests are still served for the drain
/// time; then the process exits cleanly.
async fn readyz_fails_while_draining(backend: Backend) {
    let Some(mut server) = Server::start_with(backend, &["--shutdown-drain-secs", "3"]).await
    else {
        return;
    };
    let created = server.create(&patient("Drain")).await;
    let ready = server.client.get(format!("{}/readyz", server.base));
    assert_eq!(ready.send().await.unwrap().status(), 200);
    let mut child = server.terminate();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = server
            .client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            expect_outcome(response, 503).await;
            break;
        }
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    assert_eq!(server.get(&path).await.status(), 200);
    assert!(child.try_wait().unwrap().is_none());
    assert!(child.wait().unwrap().success());
}
