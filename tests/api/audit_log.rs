//! The audit log (issue 14): an event for every FHIR interaction, refusal and security
//! event, with the right agent and patient; the switch-off recorded; the hash chain intact
//! under concurrent writes; no version without its event after a crash. Events are read
//! straight from the `audit_events` table.

use std::collections::HashSet;

use aws_lc_rs::digest::{Context, SHA256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oauth2::TokenResponse;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::audit::{Row as Event, rows};
use crate::common::smart::*;
use crate::common::*;

backend_tests!(
    every_interaction_has_its_event,
    a_read_names_the_patient_the_resource_moved_to,
    refused_requests_are_recorded_as_failures,
    security_events_are_recorded,
    switching_auditing_off_is_recorded,
    the_chain_links_under_concurrent_writes,
    a_crash_leaves_no_version_without_its_event,
    a_crash_loses_no_spooled_read,
    a_stop_loads_the_spool,
);

/// Every event in the log, in chain order.
async fn events(db: &TestDb) -> Vec<Event> {
    rows(&db.url).await
}

/// The chain head `(seq, hash)`.
async fn head(db: &TestDb) -> (i64, Vec<u8>) {
    const HEAD: &str = "SELECT seq, hash FROM audit_chain_head";
    crate::common::audit::settle(&db.url).await;
    if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query_as(HEAD).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query_as(HEAD).fetch_one(&pool).await.unwrap()
    }
}

/// Every stored version `Type/id/_history/v`.
async fn versions(db: &TestDb) -> HashSet<String> {
    const VERSIONS: &str = "SELECT resource_type, id, version_id FROM resource_versions";
    let rows: Vec<(String, String, i64)> = if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query_as(VERSIONS).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query_as(VERSIONS).fetch_all(&pool).await.unwrap()
    };
    rows.into_iter()
        .map(|(resource_type, id, version)| format!("{resource_type}/{id}/_history/{version}"))
        .collect()
}

/// The chain recomputed from the rows: seq 1, 2, 3… and each hash
/// SHA-256(previous || seq big-endian || body), ending at the head.
async fn assert_chain_intact(db: &TestDb) -> usize {
    let events = events(db).await;
    let mut previous = vec![0u8; 32];
    for (index, event) in events.iter().enumerate() {
        assert_eq!(
            event.seq,
            index as i64 + 1,
            "a gap before seq {}",
            event.seq
        );
        let mut context = Context::new(&SHA256);
        context.update(&previous);
        context.update(&event.seq.to_be_bytes());
        context.update(&event.raw);
        let hash = context.finish().as_ref().to_vec();
        assert_eq!(hash, event.hash, "seq {} does not link", event.seq);
        previous = hash;
    }
    assert_eq!(head(db).await, (events.len() as i64, previous));
    // Kiln's own check agrees: the links, and every row's columns as its AuditEvent says
    // them, for each kind of event recorded here.
    let output = std::process::Command::new(kiln_bin())
        .args(["audit", "verify"])
        .env("KILN_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.starts_with("audit log intact"), "{stdout}");
    events.len()
}

fn rest<'a>(events: &'a [Event], subtype: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|event| event.type_code == "rest" && event.subtype.as_deref() == Some(subtype))
        .collect()
}

fn security<'a>(events: &'a [Event], subtype: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|event| event.subtype.as_deref() == Some(subtype))
        .collect()
}

fn records() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "pa", "name": [{"family": "Alpha"}]}),
        json!({"resourceType": "Patient", "id": "pb", "name": [{"family": "Beta"}]}),
        json!({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Doc"}]}),
        json!({"resourceType": "Observation", "id": "obs-a", "status": "final",
               "code": {"text": "weight"}, "subject": {"reference": "Patient/pa"}}),
    ]
}

/// A secured server with [`records`], users `alice` (Patient/pa) and `doc`
/// (Practitioner/dr1).
async fn secured(backend: Backend, extra: &[&str]) -> Option<Server> {
    let server = Server::start_secured(backend, extra).await?;
    server.import(&records());
    server.add_users(&[("alice", "Patient/pa"), ("doc", "Practitioner/dr1")]);
    Some(server)
}

async fn call(
    server: &Server,
    method: reqwest::Method,
    token: Option<&str>,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = server.client.request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
    }
    request.send().await.unwrap()
}

/// A public app granted `scope` by `user` (password `pw-1`), with its access token.
async fn signed_in(server: &Server, scope: &str, user: &str) -> (App, String) {
    let app = App::register(server, "public", scope, &[]);
    let token = authorize(server, &app, scope, None, &Answers::allow(user, "pw-1"))
        .await
        .unwrap();
    let bearer = access_token(&token);
    (app, bearer)
}

async fn every_interaction_has_its_event(backend: Backend) {
    let Some(server) = secured(backend, &[]).await else {
        return;
    };
    let (app, bearer) = signed_in(&server, "openid fhirUser user/*.cruds", "doc").await;
    let t = Some(bearer.as_str());
    use reqwest::Method;
    let ok = |status: u16| assert!((200..300).contains(&status), "status {status}");
    ok(call(&server, Method::GET, t, "metadata", None)
        .await
        .status()
        .as_u16());
    ok(call(&server, Method::GET, t, "Observation/obs-a", None)
        .await
        .status()
        .as_u16());
    ok(call(
        &server,
        Method::GET,
        t,
        "Observation/obs-a/_history/1",
        None,
    )
    .await
    .status()
    .as_u16());
    ok(
        call(&server, Method::GET, t, "Observation?patient=pa", None)
            .await
            .status()
            .as_u16(),
    );
    ok(call(&server, Method::GET, t, "Patient/pa/_history", None)
        .await
        .status()
        .as_u16());
    ok(
        call(&server, Method::GET, t, "Patient/pa/$everything", None)
            .await
            .status()
            .as_u16(),
    );
    // A search whose criteria travel in a form body: the URL's query alone would hide them.
    let posted = server
        .client
        .post(server.url("Observation/_search?patient=pa"))
        .bearer_auth(&bearer)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("code=height&status=final")
        .send()
        .await
        .unwrap();
    ok(posted.status().as_u16());
    let observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "height"}, "subject": {"reference": "Patient/pa"}});
    let created = expect_json(
        call(&server, Method::POST, t, "Observation", Some(&observation)).await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut changed = created.clone();
    changed["status"] = json!("amended");
    ok(call(
        &server,
        Method::PUT,
        t,
        &format!("Observation/{id}"),
        Some(&changed),
    )
    .await
    .status()
    .as_u16());
    ok(call(
        &server,
        Method::DELETE,
        t,
        &format!("Observation/{id}"),
        None,
    )
    .await
    .status()
    .as_u16());
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
         "resource": {"resourceType": "Patient", "name": [{"family": "Gamma"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
                      "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}},
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    let response = expect_json(call(&server, Method::POST, t, "", Some(&bundle)).await, 200).await;
    // Location: [base/]Patient/{id}/_history/1.
    let location = response["entry"][0]["response"]["location"]
        .as_str()
        .unwrap();
    let gamma = location
        .split("Patient/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();

    let events = events(&server.db).await;
    assert!(rest(&events, "capabilities").is_empty());
    // Every FHIR event names doc, the app and the token.
    for event in events.iter().filter(|event| event.type_code == "rest") {
        assert_eq!(
            event.agent_client.as_deref(),
            Some(app.client_id.as_str()),
            "{event:?}"
        );
        assert_eq!(event.agent_user.as_deref(), Some("doc"));
        assert_eq!(event.agent_who.as_deref(), Some("Practitioner/dr1"));
        assert_eq!(event.outcome, "0");
        assert_eq!(
            event.body["agent"][1]["policy"][0].as_str().unwrap().len(),
            64
        );
    }
    let one = |subtype: &str| {
        let found = rest(&events, subtype);
        assert_eq!(found.len(), 1, "{subtype}: {found:?}");
        found[0].clone()
    };
    let read = one("read");
    assert_eq!(read.action, "R");
    assert_eq!(read.entity.as_deref(), Some("Observation/obs-a"));
    assert_eq!(read.patient.as_deref(), Some("pa"));
    assert_eq!(
        read.body["meta"]["profile"][0],
        "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
    );
    let vread = one("vread");
    assert_eq!(vread.patient.as_deref(), Some("pa"));
    assert_eq!(
        vread.body["entity"][1]["what"]["reference"],
        "Observation/obs-a/_history/1"
    );
    let searches = rest(&events, "search-type");
    assert_eq!(searches.len(), 2, "{searches:?}");
    let queries: Vec<String> = searches
        .iter()
        .map(|search| {
            assert_eq!(search.action, "E");
            assert_eq!(search.patient.as_deref(), Some("pa"));
            assert_eq!(search.entity, None);
            let query = search.body["entity"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|entity| entity["query"].as_str())
                .expect("a query entity");
            String::from_utf8(STANDARD.decode(query).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(
        queries,
        ["patient=pa", "patient=pa&code=height&status=final"]
    );
    let history = one("history-instance");
    assert_eq!(history.patient.as_deref(), Some("pa"));
    let everything = one("operation");
    assert_eq!(everything.patient.as_deref(), Some("pa"));
    let update = one("update");
    assert_eq!(update.action, "U");
    assert_eq!(
        update.entity.as_deref(),
        Some(format!("Observation/{id}").as_str())
    );
    assert_eq!(update.patient.as_deref(), Some("pa"));
    assert_eq!(
        update.body["entity"][1]["what"]["reference"],
        format!("Observation/{id}/_history/2")
    );
    let delete = one("delete");
    assert_eq!(delete.action, "D");
    assert_eq!(
        delete.entity.as_deref(),
        Some(format!("Observation/{id}").as_str())
    );
    // The plain create and the transaction's two entries.
    let creates = rest(&events, "create");
    assert_eq!(creates.len(), 3, "{creates:?}");
    assert!(creates.iter().all(|event| event.action == "C"));
    assert_eq!(
        creates[0].entity.as_deref(),
        Some(format!("Observation/{id}").as_str())
    );
    assert_eq!(creates[0].patient.as_deref(), Some("pa"));
    assert_eq!(
        creates[1].entity.as_deref(),
        Some(format!("Patient/{gamma}").as_str())
    );
    assert_eq!(creates[1].patient.as_deref(), Some(gamma.as_str()));
    assert_eq!(creates[2].patient.as_deref(), Some(gamma.as_str()));
    assert!(
        rest(&events, "transaction").is_empty(),
        "a successful transaction is its entries"
    );
    assert_chain_intact(&server.db).await;
}

/// A read's event names the Patient of the version it read (stored with the version): after
/// an update moves the Observation from `pa` to `pb`, the next read names `pb`.
async fn a_read_names_the_patient_the_resource_moved_to(backend: Backend) {
    let Some(server) = secured(backend, &[]).await else {
        return;
    };
    let (_, bearer) = signed_in(&server, "openid fhirUser user/*.cruds", "doc").await;
    let t = Some(bearer.as_str());
    use reqwest::Method;
    let moved = json!({"resourceType": "Observation", "id": "obs-a", "status": "final",
                       "code": {"text": "weight"}, "subject": {"reference": "Patient/pb"}});
    let status = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(
        status(call(&server, Method::GET, t, "Observation/obs-a", None).await),
        200
    );
    assert_eq!(
        status(call(&server, Method::PUT, t, "Observation/obs-a", Some(&moved)).await),
        200
    );
    assert_eq!(
        status(call(&server, Method::GET, t, "Observation/obs-a", None).await),
        200
    );
    let events = events(&server.db).await;
    let patients: Vec<Option<&str>> = rest(&events, "read")
        .iter()
        .map(|event| event.patient.as_deref())
        .collect();
    assert_eq!(patients, [Some("pa"), Some("pb")]);
}

async fn refused_requests_are_recorded_as_failures(backend: Backend) {
    let Some(server) = secured(backend, &[]).await else {
        return;
    };
    let (app, t) = signed_in(
        &server,
        "launch/patient openid fhirUser patient/*.rs",
        "alice",
    )
    .await;
    use reqwest::Method;
    // 403: another patient; 403: a write the scopes do not allow; 401: no token; 404.
    let forbidden = call(&server, Method::GET, Some(&t), "Patient/pb", None).await;
    assert_eq!(forbidden.status(), 403);
    let write = json!({"resourceType": "Patient", "id": "pa", "name": [{"family": "X"}]});
    let refused_write = call(&server, Method::PUT, Some(&t), "Patient/pa", Some(&write)).await;
    assert_eq!(refused_write.status(), 403);
    assert_eq!(
        call(&server, Method::GET, None, "Patient/pa", None)
            .await
            .status(),
        401
    );
    assert_eq!(
        call(&server, Method::GET, Some(&t), "Observation/nope", None)
            .await
            .status(),
        404
    );
    let events = events(&server.db).await;
    let reads = rest(&events, "read");
    assert_eq!(reads.len(), 3, "{reads:?}");
    let (forbidden, anonymous, missing) = (reads[0], reads[1], reads[2]);
    assert_eq!(forbidden.outcome, "4");
    assert_eq!(forbidden.entity.as_deref(), Some("Patient/pb"));
    assert_eq!(forbidden.patient.as_deref(), Some("pb"));
    assert_eq!(forbidden.agent_user.as_deref(), Some("alice"));
    assert_eq!(forbidden.agent_who.as_deref(), Some("Patient/pa"));
    assert_eq!(
        forbidden.agent_client.as_deref(),
        Some(app.client_id.as_str())
    );
    assert!(
        forbidden.body["outcomeDesc"]
            .as_str()
            .unwrap()
            .starts_with("403")
    );
    assert_eq!(anonymous.outcome, "4");
    assert_eq!(anonymous.agent_client, None);
    assert!(
        anonymous.body["outcomeDesc"]
            .as_str()
            .unwrap()
            .starts_with("401")
    );
    assert_eq!(missing.outcome, "4");
    assert_eq!(missing.entity.as_deref(), Some("Observation/nope"));
    assert!(
        missing.body["outcomeDesc"]
            .as_str()
            .unwrap()
            .starts_with("404")
    );
    let update = rest(&events, "update");
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].outcome, "4");
    assert_eq!(update[0].agent_user.as_deref(), Some("alice"));
    // Nothing was written, so nothing else claims a success.
    assert!(
        events
            .iter()
            .filter(|event| event.type_code == "rest")
            .all(|event| event.outcome == "4")
    );
    assert_chain_intact(&server.db).await;
}

async fn security_events_are_recorded(backend: Backend) {
    let Some(server) = secured(backend, &[]).await else {
        return;
    };
    let scope = "openid fhirUser user/*.rs offline_access";
    let app = App::register(&server, "public", scope, &[]);
    // A failed sign-in, then a successful one with consent and a token.
    let wrong = Answers::allow("doc", "wrong-password");
    assert!(authorize(&server, &app, scope, None, &wrong).await.is_err());
    let token = authorize(&server, &app, scope, None, &Answers::allow("doc", "pw-1"))
        .await
        .unwrap();
    // A refused token request: a code that was never issued.
    let form = format!(
        "grant_type=authorization_code&code=bogus&client_id={}&redirect_uri={}&code_verifier={}",
        app.client_id,
        "http%3A%2F%2F127.0.0.1%3A9%2Fcallback",
        "v".repeat(43)
    );
    let refused = server
        .client
        .post(format!("{}/auth/token", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // Revoking the refresh token.
    let refresh = token.refresh_token().unwrap().secret().clone();
    let revoked = server
        .client
        .post(format!("{}/auth/revoke", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={refresh}&client_id={}", app.client_id))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);

    let events = events(&server.db).await;
    let logins = security(&events, "110122");
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert_eq!(logins[0].type_code, "110114");
    assert_eq!(logins[0].outcome, "4");
    assert_eq!(logins[0].agent_user.as_deref(), Some("doc"));
    assert_eq!(logins[1].outcome, "0");
    let consent = security(&events, "consent-approved");
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0].type_code, "110113");
    assert_eq!(
        consent[0].agent_client.as_deref(),
        Some(app.client_id.as_str())
    );
    assert_eq!(consent[0].agent_user.as_deref(), Some("doc"));
    let issued = security(&events, "token-issued");
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].outcome, "0");
    assert_eq!(issued[0].agent_who.as_deref(), Some("Practitioner/dr1"));
    assert_eq!(
        issued[0].agent_client.as_deref(),
        Some(app.client_id.as_str())
    );
    let refusal = security(&events, "token-refused");
    assert_eq!(refusal.len(), 1);
    assert_eq!(refusal[0].outcome, "4");
    assert!(
        refusal[0].body["outcomeDesc"]
            .as_str()
            .unwrap()
            .starts_with("invalid_grant")
    );
    let revocation = security(&events, "token-revoked");
    assert_eq!(revocation.len(), 1);
    assert_eq!(
        revocation[0].agent_client.as_deref(),
        Some(app.client_id.as_str())
    );
    // No secret in any event: neither token nor the password.
    let access = access_token(&token);
    for event in &events {
        let text = String::from_utf8_lossy(&event.raw);
        assert!(!text.contains(&access) && !text.contains(&refresh));
        assert!(!text.contains("pw-1") && !text.contains("wrong-password"));
    }
    assert_chain_intact(&server.db).await;
}

async fn switching_auditing_off_is_recorded(backend: Backend) {
    let Some(mut off) = Server::start_with(backend, &["--disable-audit"]).await else {
        return;
    };
    off.create(&patient("Quiet")).await;
    let events_off = events(&off.db).await;
    assert_eq!(events_off.len(), 1, "{events_off:?}");
    assert_eq!(events_off[0].subtype.as_deref(), Some("audit-disabled"));
    assert_eq!(events_off[0].type_code, "110113");
    off.kill9();
    let on = Server::start_on(off.db.shared(), &["--anonymous-access"]).await;
    on.create(&patient("Loud")).await;
    let events_on = events(&on.db).await;
    let subtypes: Vec<_> = events_on
        .iter()
        .map(|event| event.subtype.clone())
        .collect();
    assert_eq!(
        subtypes,
        [
            Some("audit-disabled".to_owned()),
            Some("audit-enabled".to_owned()),
            Some("create".to_owned())
        ]
    );
    assert_chain_intact(&on.db).await;
}

async fn the_chain_links_under_concurrent_writes(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let server = std::sync::Arc::new(server);
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                let created = server.create(&patient(&format!("W{worker}-{n}"))).await;
                let id = created["id"].as_str().unwrap();
                let read = server.get(&format!("Patient/{id}")).await;
                assert_eq!(read.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let count = assert_chain_intact(&server.db).await;
    assert_eq!(count, 120);
    assert_eq!(rest(&events(&server.db).await, "create").len(), 60);
}

async fn a_crash_leaves_no_version_without_its_event(backend: Backend) {
    let Some(mut server) = Server::start(backend).await else {
        return;
    };
    let url = server.url("Patient");
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (client, url) = (server.client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let body = patient(&format!("C{worker}-{n}")).to_string();
                let sent = client
                    .post(&url)
                    .header("content-type", "application/fhir+json")
                    .body(body)
                    .send()
                    .await;
                if sent.is_err() {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill9();
    for task in tasks {
        task.await.unwrap();
    }
    server.restart().await;
    let versions = versions(&server.db).await;
    assert!(!versions.is_empty(), "writes happened before the crash");
    let recorded: HashSet<String> = rest(&events(&server.db).await, "create")
        .iter()
        .map(|event| {
            event.body["entity"][1]["what"]["reference"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let missing: Vec<_> = versions.difference(&recorded).collect();
    assert!(
        missing.is_empty(),
        "versions without their event: {missing:?}"
    );
    assert_chain_intact(&server.db).await;
}

/// A server with its audit spool in `spool`, and the URL of a Patient it holds.
async fn spooled_server(backend: Backend, spool: &tempfile::TempDir) -> Option<(Server, String)> {
    let spool_dir = spool.path().to_str().unwrap();
    let server = Server::start_with(backend, &["--audit-spool-dir", spool_dir]).await?;
    let created = expect_json(server.post("Patient", &patient("Spooled")).await, 201).await;
    let read_url = server.url(&format!("Patient/{}", created["id"].as_str().unwrap()));
    Some((server, read_url))
}

/// Reads `url` with `X-Request-ID: request_id`; it must answer 200.
async fn read_as(server: &Server, url: &str, request_id: &str) {
    let response = server
        .client
        .get(url)
        .header("x-request-id", request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The request ids of `answered` reads that have no read event in the log of `db`.
async fn unrecorded(db: &TestDb, answered: &[String]) -> Vec<String> {
    let events = events(db).await;
    let recorded: HashSet<&str> = events
        .iter()
        .filter(|event| event.subtype.as_deref() == Some("read"))
        .filter_map(|event| {
            event.body["entity"]
                .as_array()?
                .iter()
                .find(|entity| entity["type"]["code"] == "XrequestId")?["what"]["identifier"]
                ["value"]
                .as_str()
        })
        .collect();
    answered
        .iter()
        .filter(|id| !recorded.contains(id.as_str()))
        .cloned()
        .collect()
}

/// The events of answered reads wait in the spool until the server loads them into the
/// table. A server killed (kill -9) while some wait loads them at its next start: after the
/// restart every answered read has its event, and the chain is intact.
async fn a_crash_loses_no_spooled_read(backend: Backend) {
    let spool = tempfile::tempdir().unwrap();
    let Some((mut server, read_url)) = spooled_server(backend, &spool).await else {
        return;
    };
    // Read until some answered reads are known to wait in the spool, then crash at once.
    let mut answered = Vec::new();
    let mut waiting = false;
    for round in 0..200 {
        let request_id = format!("spooled-read-{round}");
        read_as(&server, &read_url, &request_id).await;
        answered.push(request_id);
        if crate::common::audit::backlog(&server.direct()).await > Some(0.0) {
            waiting = true;
            break;
        }
    }
    assert!(waiting, "no answered read ever waited in the spool");
    server.kill9();
    server.restart().await;
    let missing = unrecorded(&server.db, &answered).await;
    assert!(
        missing.is_empty(),
        "answered reads without their event: {missing:?}"
    );
    assert_chain_intact(&server.db).await;
    assert!(
        server
            .log()
            .contains("loaded audit events an earlier run left"),
        "the restart loaded the spool:\n{}",
        server.log()
    );
}

/// A server stopped gracefully (SIGTERM) loads what its spool holds before it exits: right
/// after the exit, with no server running, every answered read has its event in the table.
async fn a_stop_loads_the_spool(backend: Backend) {
    let spool = tempfile::tempdir().unwrap();
    let Some((mut server, read_url)) = spooled_server(backend, &spool).await else {
        return;
    };
    let mut answered = Vec::new();
    for round in 0..20 {
        let request_id = format!("stopped-read-{round}");
        read_as(&server, &read_url, &request_id).await;
        answered.push(request_id);
    }
    let status = server.terminate().wait().unwrap();
    assert!(status.success(), "{status}");
    let missing = unrecorded(&server.db, &answered).await;
    assert!(
        missing.is_empty(),
        "reads without their event after the stop: {missing:?}"
    );
}
