//! Database trouble as clients see it: an outage answers 503 with `Retry-After` and recovers
//! by itself; a full database refuses the one write (507) and leaves every pooled connection
//! usable.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::common::{Backend, Server, TestDb, expect_outcome, json, patient};

/// A TCP relay between Kiln and PostgreSQL that can cut the database off: while down it
/// drops every relayed connection and closes new ones at once, as a database that restarts
/// or a broken network would.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let up = up.clone();
            let links = links.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            }
        });
        Relay {
            port,
            up,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// PostgreSQL cut off, then back: reads, writes, the token endpoint and `/readyz` answer 503
/// with `Retry-After` (never 500) while it is away, and everything works again after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_and_recovers() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let mut url = reqwest::Url::parse(&db.url).expect("database URL");
    let upstream = url.socket_addrs(|| Some(5432)).expect("database address")[0];
    let relay = Relay::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(relay.port)).unwrap();
    let mut relayed = db.shared();
    relayed.url = url.to_string();
    let server = Server::start_on(relayed, &["--anonymous-access"]).await;
    let created = server.create(&patient("Outage")).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    assert_eq!(server.get(&path).await.status(), 200);

    relay.cut();
    let read = server.get(&path).await;
    assert_eq!(retry_after(&read), Some(5), "{}", server.log());
    let outcome = expect_outcome(read, 503).await;
    assert_eq!(outcome["issue"][0]["code"], "no-store", "{outcome}");
    let write = server.post("Patient", &patient("Lost")).await;
    assert_eq!(retry_after(&write), Some(5), "{}", server.log());
    expect_outcome(write, 503).await;
    let token = server
        .client
        .post(format!("{}/auth/token", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&code=abc&client_id=some-app\
             &redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={}",
            "v".repeat(43)
        ))
        .send()
        .await
        .expect("token request");
    assert_eq!(token.status(), 503);
    assert!(retry_after(&token).is_some());
    let error: serde_json::Value = token.json().await.expect("OAuth error JSON");
    assert_eq!(error["error"], "temporarily_unavailable", "{error}");
    let ready = server
        .client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = server
            .client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .expect("readyz");
        if ready.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readyz stayed {}",
            ready.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.get(&path).await.status(), 200);
    assert_eq!(server.post("Patient", &patient("Back")).await.status(), 201);
    drop(server);
    drop(db);
}

/// SQLite with its size capped (`--sqlite-max-bytes`): a write larger than the room left is
/// refused with 507 and an OperationOutcome and stores nothing. SQLite rolls such a
/// transaction back by itself, so the connection it ran on must not go back to the pool as
/// if still inside it: every pooled connection takes later writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sqlite_refuses_the_write_and_every_connection_recovers() {
    let server = Server::start_with(
        Backend::Sqlite,
        &[
            "--sqlite-max-bytes",
            "8388608",
            "--database-max-connections",
            "3",
        ],
    )
    .await
    .expect("SQLite server");
    // About 5 MB: its current row fits in the 8 MB, its history row no longer does.
    let big = json!({"resourceType": "Binary", "contentType": "application/octet-stream",
                     "data": "QUFB".repeat(1_300_000)});
    let too_big = server.post("Binary", &big).await;
    let outcome = expect_outcome(too_big, 507).await;
    assert_eq!(outcome["issue"][0]["code"], "no-store", "{outcome}");
    let stored = server.get("Binary?_summary=count").await;
    assert_eq!(
        crate::common::expect_json(stored, 200).await["total"],
        0,
        "the refused write stored nothing"
    );
    // One after another (each pooled connection in turn), then all at once.
    for n in 0..9 {
        let response = server.post("Patient", &patient(&format!("After{n}"))).await;
        let status = response.status();
        assert_eq!(status, 201, "write {n}: {}", response.text().await.unwrap());
    }
    let writes = (0..6).map(|n| {
        let body = patient(&format!("Together{n}"));
        let server = &server;
        async move { server.post("Patient", &body).await.status() }
    });
    let statuses = futures_util::future::join_all(writes).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
}
