//! Reading the audit log: AuditEvent search by every parameter and `_sort`, paging and read;
//! who may read it (admin users, `system/AuditEvent` backend services, patients only with
//! `--audit-patient-access` and then only their own events); every write to AuditEvent
//! refused with nothing written; `kiln audit verify` (a good chain, an altered and a missing
//! event), `export` and `report`; the admin console's report page and its CSV.
//!
//! Kiln records every request, so the log holds the server's own events (token issues, sign-ins,
//! the tests' own searches and refusals) besides the ones a test appends by hand. Hand-made
//! events (`common::audit`, chained as the recorder would) are all recorded before 2026, so
//! the searches over them are narrowed with [`PAST`]; the server's own events are asserted on
//! where they are the point (the refusals, and the end-to-end test).

use std::process::Command;

use crate::backend_tests;
use crate::common::audit::{Event, after, append, count, execute, seq_of};
use crate::common::backend::BackendService;
use crate::common::console::{Browser, unescape};
use crate::common::*;

backend_tests!(
    search_by_each_parameter_sort_and_page,
    only_admins_and_audit_scoped_backends_read_the_log,
    patients_see_their_own_events_when_the_operator_allows,
    every_write_to_audit_event_is_refused,
    verify_names_the_first_altered_or_missing_event,
    export_and_report_a_period,
    admin_console_reports_sorts_and_downloads_csv,
    real_requests_are_found_by_patient_verified_and_tampering_named,
);

const ADMIN_PASSWORD: &str = "root-password-1";
const HOSTILE_HTML: &str = "<script>alert(1)</script>";
const HOSTILE_CSV: &str = "=HYPERLINK(\"http://evil.example\")";
/// The period of the hand-made events: the server records its own at the current time.
const PAST: &str = "date=lt2026";

fn events() -> Vec<Event> {
    vec![
        Event {
            event_id: "e1",
            recorded: "2024-01-10T10:00:00Z",
            type_code: "rest",
            subtype: Some("read"),
            action: "R",
            outcome: "0",
            agent_who: Some("Practitioner/dr1"),
            agent_user: Some("bob"),
            agent_client: Some("app1"),
            patient: Some("p1"),
            entity: Some("Patient/p1"),
        },
        Event {
            event_id: "e2",
            recorded: "2024-01-15T12:00:00Z",
            type_code: "rest",
            subtype: Some("search-type"),
            action: "E",
            outcome: "0",
            agent_who: Some("Patient/p2"),
            agent_user: Some("carol"),
            agent_client: Some("app2"),
            patient: Some("p2"),
            entity: None,
        },
        Event {
            event_id: "e3",
            recorded: "2024-02-01T00:00:00Z",
            type_code: "rest",
            subtype: Some("create"),
            action: "C",
            outcome: "4",
            agent_who: Some("Practitioner/dr1"),
            agent_user: Some("bob"),
            agent_client: Some("app1"),
            patient: Some("p1"),
            entity: Some("Observation/o1"),
        },
        Event {
            event_id: "e4",
            recorded: "2024-03-05T08:30:00Z",
            type_code: "110114",
            subtype: Some("110122"),
            action: "E",
            outcome: "8",
            agent_who: None,
            agent_user: Some(HOSTILE_CSV),
            agent_client: None,
            patient: None,
            entity: None,
        },
        Event {
            event_id: "e5",
            recorded: "2025-06-01T00:00:00Z",
            type_code: "rest",
            subtype: Some("delete"),
            action: "D",
            outcome: "0",
            agent_who: Some("Practitioner/dr2"),
            agent_user: Some(HOSTILE_HTML),
            agent_client: Some("app1"),
            patient: Some("p2"),
            entity: Some("Observation/o9"),
        },
    ]
}

/// A secured server (`extra` arguments) with the five events, Patients p1 and p2,
/// Practitioners dr1 and dr2, the admin `root` (dr1), `bob` (dr1, no admin) and `alice` (p1),
/// and a public client allowed the AuditEvent scopes; its client id.
async fn started(backend: Backend, extra: &[&str]) -> Option<(Server, String)> {
    let server = Server::start_secured(backend, extra).await?;
    server.import(&[
        json!({"resourceType": "Patient", "id": "p1"}),
        json!({"resourceType": "Patient", "id": "p2"}),
        json!({"resourceType": "Practitioner", "id": "dr1"}),
        json!({"resourceType": "Practitioner", "id": "dr2"}),
    ]);
    server.add_admin("root", ADMIN_PASSWORD, "Practitioner/dr1");
    server.add_users(&[("bob", "Practitioner/dr1"), ("alice", "Patient/p1")]);
    let client = server.kiln(&[
        "client",
        "add",
        "--name",
        "Audit viewer",
        "--type",
        "public",
        "--redirect-uri",
        "https://oauth.pstmn.io/v1/callback",
        "--scope",
        "launch/patient openid fhirUser patient/AuditEvent.rs user/AuditEvent.rs patient/*.rs user/*.rs",
    ]);
    append(&server.db.url, &events()).await;
    let client_id = client["client_id"].as_str().unwrap().to_string();
    Some((server, client_id))
}

/// A token minted with `kiln token create` (`--user` or `--patient` in `context`).
fn token(server: &Server, client_id: &str, scope: &str, context: &[&str]) -> String {
    let mut args = vec![
        "token",
        "create",
        "--client-id",
        client_id,
        "--scope",
        scope,
    ];
    args.extend_from_slice(context);
    server.kiln(&args)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn get(server: &Server, token: &str, path: &str) -> reqwest::Response {
    server
        .client
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["search"]["mode"] == "match")
        .map(|entry| entry["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

async fn search_ids(server: &Server, token: &str, query: &str) -> Vec<String> {
    let bundle = expect_json(
        get(server, token, &format!("AuditEvent?{query}")).await,
        200,
    )
    .await;
    assert_eq!(bundle["type"], "searchset", "{bundle}");
    ids(&bundle)
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|link| link["relation"] == relation)
        .map(|link| link["url"].as_str().unwrap().to_string())
}

async fn admin_token(server: &Server, client_id: &str) -> String {
    token(server, client_id, "user/AuditEvent.rs", &["--user", "root"])
}

async fn search_by_each_parameter_sort_and_page(backend: Backend) {
    let Some((server, client_id)) = started(backend, &[]).await else {
        return;
    };
    let token = admin_token(&server, &client_id).await;
    let bundle = expect_json(
        get(&server, &token, &format!("AuditEvent?{PAST}")).await,
        200,
    )
    .await;
    assert_eq!(ids(&bundle), ["e1", "e2", "e3", "e4", "e5"]);
    assert_eq!(bundle["total"], 5);
    assert_eq!(
        bundle["entry"][0]["fullUrl"],
        format!("{}/AuditEvent/e1", server.fhir)
    );
    assert_eq!(bundle["entry"][0]["resource"], events()[0].body());
    let cases: &[(&str, &[&str])] = &[
        ("date=2024-01", &["e1", "e2"]),
        ("date=eq2024-01-15", &["e2"]),
        ("date=ge2024-02", &["e3", "e4", "e5"]),
        ("date=lt2024-01-15T12:00:00Z", &["e1"]),
        ("date=ne2024", &["e5"]),
        ("date=gt2024-01-15&date=le2024-03", &["e3", "e4"]),
        ("date=2024-01-10,2025", &["e1", "e5"]),
        ("patient=Patient/p1", &["e1", "e3"]),
        ("patient=p2", &["e2", "e5"]),
        ("patient=p1,p2&action=C,D", &["e3", "e5"]),
        ("agent=Practitioner/dr1", &["e1", "e3"]),
        ("agent=dr2", &["e5"]),
        ("agent:identifier=app2", &["e2"]),
        ("agent:identifier=carol", &["e2"]),
        ("entity=Observation/o1", &["e3"]),
        ("action=E", &["e2", "e4"]),
        ("outcome=4", &["e3"]),
        ("outcome=0,8", &["e1", "e2", "e4", "e5"]),
        ("type=rest", &["e1", "e2", "e3", "e5"]),
        (
            "type=http://dicom.nema.org/resources/ontology/DCM|110114",
            &["e4"],
        ),
        ("subtype=read", &["e1"]),
        ("subtype=create,delete", &["e3", "e5"]),
        ("_sort=-date", &["e5", "e4", "e3", "e2", "e1"]),
        ("_sort=outcome", &["e1", "e2", "e5", "e3", "e4"]),
        ("_sort=-outcome", &["e4", "e3", "e5", "e2", "e1"]),
        ("_sort=patient", &["e1", "e3", "e2", "e5", "e4"]),
        ("_sort=agent", &["e2", "e1", "e3", "e5", "e4"]),
        ("_sort=action,-date", &["e3", "e5", "e4", "e2", "e1"]),
        ("_sort=subtype", &["e4", "e3", "e5", "e1", "e2"]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            search_ids(&server, &token, &format!("{query}&{PAST}")).await,
            *expected,
            "AuditEvent?{query}"
        );
    }
    // Paging: next links until the end, the total counted on request.
    let first = expect_json(
        get(
            &server,
            &token,
            &format!("AuditEvent?_count=2&_total=accurate&{PAST}"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ids(&first), ["e1", "e2"]);
    assert_eq!(first["total"], 5);
    let next = link(&first, "next").expect("a next link");
    let second = expect_json(
        server
            .client
            .get(&next)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(ids(&second), ["e3", "e4"]);
    assert!(link(&second, "previous").is_some());
    let third = expect_json(
        server
            .client
            .get(link(&second, "next").unwrap())
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(ids(&third), ["e5"]);
    assert_eq!(link(&third, "next"), None);
    // POST _search with a form body.
    let posted = server
        .client
        .post(server.url("AuditEvent/_search"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("patient=p1&_sort=-date&{PAST}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ids(&expect_json(posted, 200).await), ["e3", "e1"]);
    // Unknown parameters: a warning, or a 400 under handling=strict; bad values: 400.
    let lenient = expect_json(
        get(&server, &token, &format!("AuditEvent?color=red&{PAST}")).await,
        200,
    )
    .await;
    assert_eq!(ids(&lenient).len(), 5);
    let outcome = lenient["entry"].as_array().unwrap().last().unwrap();
    assert_eq!(outcome["search"]["mode"], "outcome");
    assert_eq!(outcome["resource"]["issue"][0]["severity"], "warning");
    let strict = server
        .client
        .get(server.url("AuditEvent?color=red"))
        .bearer_auth(&token)
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    expect_outcome(strict, 400).await;
    for bad in [
        "date=yesterday",
        "date=sa2024",
        "_sort=color",
        "entity=o1",
        "patient:missing=true",
    ] {
        expect_outcome(
            get(&server, &token, &format!("AuditEvent?{bad}")).await,
            400,
        )
        .await;
    }
    // Read: the stored body; an unknown id is a 404.
    let read = expect_json(get(&server, &token, "AuditEvent/e3").await, 200).await;
    assert_eq!(read, events()[2].body());
    expect_outcome(get(&server, &token, "AuditEvent/nope").await, 404).await;
    // The CapabilityStatement lists read and search with exactly these parameters.
    let capability = expect_json(server.get("metadata").await, 200).await;
    let audit = capability["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resource| resource["type"] == "AuditEvent")
        .unwrap();
    let interactions: Vec<&str> = audit["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(interactions, ["read", "search-type"]);
    let params: Vec<&str> = audit["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        [
            "date", "patient", "agent", "entity", "action", "type", "subtype", "outcome"
        ]
    );
}

async fn only_admins_and_audit_scoped_backends_read_the_log(backend: Backend) {
    let Some((server, client_id)) = started(backend, &[]).await else {
        return;
    };
    // No token: 401.
    expect_outcome(server.get("AuditEvent").await, 401).await;
    // An admin user: everything.
    let admin = admin_token(&server, &client_id).await;
    assert_eq!(search_ids(&server, &admin, PAST).await.len(), 5);
    // A practitioner without the admin role, with the same scope: 403, on search and read.
    let bob = token(
        &server,
        &client_id,
        "user/AuditEvent.rs",
        &["--user", "bob"],
    );
    expect_outcome(get(&server, &bob, "AuditEvent").await, 403).await;
    expect_outcome(get(&server, &bob, "AuditEvent/e1").await, 403).await;
    expect_outcome(get(&server, &bob, "AuditEvent/nope").await, 403).await;
    // A patient token: 403 while the operator has not opened the log to patients.
    let patient = token(
        &server,
        &client_id,
        "patient/AuditEvent.rs",
        &["--patient", "p1"],
    );
    expect_outcome(get(&server, &patient, "AuditEvent").await, 403).await;
    let alice = token(
        &server,
        &client_id,
        "user/AuditEvent.rs",
        &["--user", "alice"],
    );
    expect_outcome(get(&server, &alice, "AuditEvent?patient=p1").await, 403).await;
    // An admin whose scopes do not name AuditEvent: 403.
    let wildcard = token(&server, &client_id, "user/*.rs", &["--user", "root"]);
    expect_outcome(get(&server, &wildcard, "AuditEvent").await, 403).await;
    // Backend services: system/AuditEvent.rs reads everything, system/*.rs nothing.
    let service = BackendService::register(&server, "system/AuditEvent.rs system/*.rs").await;
    let audit = service.token(&server, "system/AuditEvent.rs").await;
    assert_eq!(
        search_ids(&server, &audit, &format!("_sort=-date&{PAST}")).await,
        ["e5", "e4", "e3", "e2", "e1"]
    );
    expect_json(get(&server, &audit, "AuditEvent/e4").await, 200).await;
    // Bob's refusals above are in the log, as failures (the hand-made e1 and e3 name bob too,
    // in 2024).
    let refused = expect_json(
        get(
            &server,
            &audit,
            "AuditEvent?agent:identifier=bob&date=ge2026&_sort=date",
        )
        .await,
        200,
    )
    .await;
    let refused: Vec<_> = refused["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| summary(&entry["resource"]))
        .collect();
    let failed = |subtype: &str, entity: Option<&str>| {
        (
            subtype.to_string(),
            "4".to_string(),
            None::<String>,
            entity.map(str::to_string),
        )
    };
    assert_eq!(
        refused,
        [
            failed("search-type", None),
            failed("read", Some("AuditEvent/e1")),
            failed("read", Some("AuditEvent/nope")),
        ]
    );
    let everything = service.token(&server, "system/*.rs").await;
    expect_outcome(get(&server, &everything, "AuditEvent").await, 403).await;
    // The admin role taken away: refused at once.
    server.kiln(&[
        "user",
        "add",
        "--username",
        "root",
        "--password",
        ADMIN_PASSWORD,
        "--fhir-user",
        "Practitioner/dr1",
        "--role",
        "user",
    ]);
    expect_outcome(get(&server, &admin, "AuditEvent").await, 403).await;
}

async fn patients_see_their_own_events_when_the_operator_allows(backend: Backend) {
    let Some((server, client_id)) = started(backend, &["--audit-patient-access"]).await else {
        return;
    };
    let patient = token(
        &server,
        &client_id,
        "patient/AuditEvent.rs",
        &["--patient", "p1"],
    );
    assert_eq!(search_ids(&server, &patient, "").await, ["e1", "e3"]);
    assert_eq!(
        search_ids(&server, &patient, "patient=p2").await,
        Vec::<String>::new()
    );
    assert_eq!(search_ids(&server, &patient, "action=C").await, ["e3"]);
    expect_json(get(&server, &patient, "AuditEvent/e1").await, 200).await;
    expect_outcome(get(&server, &patient, "AuditEvent/e2").await, 404).await;
    // A patient user (alice is Patient/p1) with a user scope: the same limit.
    let alice = token(
        &server,
        &client_id,
        "user/AuditEvent.rs",
        &["--user", "alice"],
    );
    assert_eq!(
        search_ids(&server, &alice, "_sort=-date").await,
        ["e3", "e1"]
    );
    // Practitioners without the admin role stay refused.
    let bob = token(
        &server,
        &client_id,
        "user/AuditEvent.rs",
        &["--user", "bob"],
    );
    expect_outcome(get(&server, &bob, "AuditEvent").await, 403).await;
}

async fn every_write_to_audit_event_is_refused(backend: Backend) {
    // Anonymous access reaches every other type, and no write to AuditEvent.
    let Some(server) = Server::start(backend).await else {
        return;
    };
    server.import(&[json!({"resourceType": "Patient", "id": "p1"})]);
    append(&server.db.url, &events()).await;
    let url = &server.db.url;
    let before = count(url, "SELECT MAX(seq) FROM audit_events").await;
    let event = json!({"resourceType": "AuditEvent", "id": "e1",
        "type": {"code": "rest"}, "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"requestor": true}], "source": {"observer": {"display": "x"}}});
    let client = &server.client;
    let fhir_json = "application/fhir+json";
    let requests = vec![
        client
            .post(server.url("AuditEvent"))
            .header("content-type", fhir_json)
            .body(event.to_string()),
        client
            .put(server.url("AuditEvent/e1"))
            .header("content-type", fhir_json)
            .body(event.to_string()),
        client
            .put(server.url("AuditEvent?patient=p1"))
            .header("content-type", fhir_json)
            .body(event.to_string()),
        client.delete(server.url("AuditEvent/e1")),
        client.delete(server.url("AuditEvent?patient=p1")),
        client
            .patch(server.url("AuditEvent/e1"))
            .header("content-type", "application/json-patch+json")
            .body(r#"[{"op": "replace", "path": "/outcome", "value": "0"}]"#),
        client
            .patch(server.url("AuditEvent?patient=p1"))
            .header("content-type", "application/json-patch+json")
            .body("[]"),
        client.get(server.url("AuditEvent/e1/_history")),
    ];
    for request in requests {
        let outcome = expect_outcome(request.send().await.unwrap(), 405).await;
        assert!(
            outcome["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("append-only"),
            "{outcome}"
        );
    }
    // Bundles: a transaction with an AuditEvent entry fails whole; a batch's entry fails.
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("Kept"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": event, "request": {"method": "POST", "url": "AuditEvent"}},
    ]});
    expect_outcome(server.post("", &transaction).await, 405).await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "DELETE", "url": "AuditEvent/e1"}},
        {"resource": event, "request": {"method": "PUT", "url": "AuditEvent/e1"}},
    ]});
    let answered = expect_json(server.post("", &batch).await, 200).await;
    for entry in answered["entry"].as_array().unwrap() {
        assert!(
            entry["response"]["status"]
                .as_str()
                .unwrap()
                .starts_with("405"),
            "{answered}"
        );
    }
    // kiln import: the line fails. (Its event goes straight into the table: the server's
    // refusals are loaded from its spool first, so they come before it.)
    crate::common::audit::settle(url).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ndjson");
    std::fs::write(&path, event.to_string()).unwrap();
    let output = Command::new(kiln_bin())
        .arg("import")
        .arg(&path)
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "the import of an AuditEvent succeeded"
    );
    // Nothing written anywhere: the log holds the hand-made events, unaltered (the chain
    // verifies), and after them only the refusals' own records — one failed event per
    // refused request (a transaction refused whole: one; a batch: one per entry), none of
    // them the posted AuditEvent — and the import's own event, its record failed.
    let (intact, out) = audit_cli(&server, &["verify"]).await;
    assert!(intact, "{out}");
    for (offset, event) in events().iter().enumerate() {
        assert_eq!(
            seq_of(url, event.event_id).await,
            before - 4 + offset as i64,
            "{}",
            event.event_id
        );
    }
    let mut refusals = after(url, before).await;
    let (subtype, outcome, import) = refusals.pop().unwrap();
    assert_eq!(subtype.as_deref(), Some("admin-action"), "{import}");
    assert_eq!(outcome, "4", "{import}");
    let description = import["outcomeDesc"].as_str().unwrap();
    assert!(description.contains("1 records failed"), "{import}");
    let subtypes: Vec<&str> = refusals
        .iter()
        .map(|(subtype, _, _)| subtype.as_deref().unwrap())
        .collect();
    assert_eq!(
        subtypes,
        [
            "create",
            "update",
            "update",
            "delete",
            "delete",
            "patch",
            "patch",
            "history-instance",
            "transaction",
            "delete",
            "batch",
        ]
    );
    for (_, outcome, body) in &refusals {
        assert_eq!(outcome, "4", "{body}");
        assert_eq!(body["outcome"], "4", "{body}");
        assert_ne!(body["source"]["observer"]["display"], "x", "{body}");
        assert_ne!(body["recorded"], event["recorded"], "{body}");
    }
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) FROM resources WHERE resource_type = 'AuditEvent'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) FROM resources WHERE resource_type = 'Patient'"
        )
        .await,
        1
    );
    // The events about p1 are not in its compartment or $everything.
    let compartment = expect_json(server.get("Patient/p1/AuditEvent").await, 200).await;
    assert_eq!(ids(&compartment), Vec::<String>::new());
    let everything = expect_json(server.get("Patient/p1/$everything").await, 200).await;
    let types: Vec<&str> = everything["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Patient"]);
    // Reading is not for anonymous access either.
    expect_outcome(server.get("AuditEvent").await, 403).await;
}

/// Runs `kiln audit …` on the server's database: exit success, stdout.
/// Runs `kiln audit ARGS` on `server`'s database once the server has loaded its spool.
async fn audit_cli(server: &Server, args: &[&str]) -> (bool, String) {
    crate::common::audit::settle(&server.db.url).await;
    let output = Command::new(kiln_bin())
        .arg("audit")
        .args(args)
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

async fn verify_names_the_first_altered_or_missing_event(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let url = server.db.url.clone();
    assert_eq!(
        audit_cli(&server, &["verify"]).await,
        (true, "audit log intact: 0 events, last seq 0\n".to_string())
    );
    append(&url, &events()).await;
    assert_eq!(
        audit_cli(&server, &["verify"]).await,
        (true, "audit log intact: 5 events, last seq 5\n".to_string())
    );
    // A body altered in place (its hash left): event 3 named.
    let original = serde_json::to_vec(&events()[2].body()).unwrap();
    let mut altered = events()[2].body();
    altered["outcome"] = json!("0");
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let set_body = |bytes: Vec<u8>| {
        if url.starts_with("postgres") {
            format!(
                "UPDATE audit_events SET body = '\\x{}' WHERE seq = 3",
                hex(&bytes)
            )
        } else {
            format!(
                "UPDATE audit_events SET body = X'{}' WHERE seq = 3",
                hex(&bytes)
            )
        }
    };
    execute(&url, &set_body(serde_json::to_vec(&altered).unwrap())).await;
    let (ok, out) = audit_cli(&server, &["verify"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("event seq 3 (event_id e3, recorded 2024-02-01T00:00:00Z) was altered"),
        "{out}"
    );
    // Put back: intact again. A row deleted: named as missing, between its neighbours.
    execute(&url, &set_body(original)).await;
    assert!(audit_cli(&server, &["verify"]).await.0);
    execute(&url, "DELETE FROM audit_events WHERE seq = 4").await;
    let (ok, out) = audit_cli(&server, &["verify"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("event seq 4 is missing"), "{out}");
    assert!(out.contains("between seq 3 (event_id e3"), "{out}");
    assert!(out.contains("and seq 5 (event_id e5"), "{out}");
    // The last rows cut off: the head still names them.
    execute(&url, "DELETE FROM audit_events WHERE seq >= 4").await;
    let (ok, out) = audit_cli(&server, &["verify"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("events seq 4 to 5 are missing"), "{out}");
}

async fn export_and_report_a_period(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    append(&server.db.url, &events()).await;
    let (ok, out) = audit_cli(
        &server,
        &["export", "--since", "2024-01-15", "--until", "2024-02"],
    )
    .await;
    assert!(ok);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, [events()[1].body(), events()[2].body()]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.ndjson");
    let (ok, out) = audit_cli(
        &server,
        &[
            "export",
            "--since",
            "2024-03-05T08:30:00Z",
            "--output",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok && out.is_empty(), "{out}");
    let written = std::fs::read_to_string(&file).unwrap();
    let ids: Vec<String> = written
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["e4", "e5"]);
    assert!(
        !audit_cli(&server, &["export", "--since", "last week"])
            .await
            .0
    );
    // The report: sorted, CSV cells that cannot run as formulas.
    let (ok, csv) = audit_cli(
        &server,
        &["report", "--until", "2024-12-31", "--sort", "-outcome,date"],
    )
    .await;
    assert!(ok);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "seq,date,type,subtype,action,outcome,agent,user,client,patient,entity,event_id"
    );
    let order: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.rsplit(',').next().unwrap())
        .collect();
    assert_eq!(order, ["e4", "e3", "e1", "e2"]);
    assert!(
        rows[1].contains(r#""'=HYPERLINK(""http://evil.example"")""#),
        "{}",
        rows[1]
    );
    let (ok, table) = audit_cli(
        &server,
        &["report", "--sort", "patient", "--format", "table"],
    )
    .await;
    assert!(ok);
    assert!(table.lines().next().unwrap().starts_with("seq "), "{table}");
    assert_eq!(table.lines().count(), 6, "{table}");
    assert!(!audit_cli(&server, &["report", "--sort", "color"]).await.0);
}

async fn admin_console_reports_sorts_and_downloads_csv(backend: Backend) {
    let Some((server, _)) = started(backend, &[]).await else {
        return;
    };
    // Not an admin: refused.
    let mut bob = Browser::new(&server);
    bob.sign_in("bob", "pw-1").await;
    assert_eq!(bob.get("/admin/audit").await.status, 403);
    let mut browser = Browser::new(&server);
    let signed_in = browser.sign_in("root", ADMIN_PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let home = browser.get("/admin").await;
    assert!(
        home.body.contains("/admin/audit\""),
        "the nav links the report"
    );
    // Newest first by default; hostile text escaped. The period keeps to the hand-made
    // events (the sign-ins above are recorded too, now).
    let page = browser.get("/admin/audit?to=2025-12-31").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("5 events"), "{}", page.body);
    assert!(!page.body.contains(HOSTILE_HTML));
    assert!(unescape(&page.body).contains(HOSTILE_HTML), "{}", page.body);
    let mut seqs = Vec::new();
    for event in events() {
        seqs.push((event.event_id, seq_of(&server.db.url, event.event_id).await));
    }
    let order = |body: &str| -> Vec<String> {
        seqs.iter()
            .filter_map(|(id, seq)| body.find(&format!("<tr><td>{seq}</td>")).map(|at| (at, id)))
            .collect::<std::collections::BTreeMap<_, _>>()
            .values()
            .map(|id| id.to_string())
            .collect()
    };
    assert_eq!(order(&page.body), ["e5", "e4", "e3", "e2", "e1"]);
    // A header sorts by its column; the same header again reverses.
    let by_outcome = browser.get("/admin/audit?sort=outcome&to=2025-12-31").await;
    assert_eq!(order(&by_outcome.body), ["e1", "e2", "e5", "e3", "e4"]);
    assert!(
        by_outcome.body.contains("sort=-outcome"),
        "the header reverses"
    );
    let reversed = browser
        .get("/admin/audit?sort=-outcome&to=2025-12-31")
        .await;
    assert_eq!(order(&reversed.body), ["e4", "e3", "e5", "e2", "e1"]);
    // Filters: period, patient, agent, type, outcome.
    let filtered = browser
        .get("/admin/audit?from=2024-01-01&to=2024-02-01&patient=p1&agent=bob&type=rest&outcome=4")
        .await;
    assert!(filtered.body.contains("1 event."), "{}", filtered.body);
    assert_eq!(order(&filtered.body), ["e3"]);
    let bad = browser.get("/admin/audit?from=someday").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("is not a date"), "{}", bad.body);
    // The CSV: the same filter and order, formula cells neutralised.
    let csv = browser
        .get("/admin/audit/csv?sort=-outcome&to=2024-12-31")
        .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let rows: Vec<&str> = csv.body.lines().collect();
    assert_eq!(rows.len(), 5, "{}", csv.body);
    let e4 = seq_of(&server.db.url, "e4").await;
    assert!(rows[1].starts_with(&format!("{e4},")), "{}", csv.body);
    assert!(
        rows[1].contains(r#""'=HYPERLINK(""http://evil.example"")""#),
        "{}",
        csv.body
    );
    assert!(!csv.body.contains(",=HYPERLINK"), "{}", csv.body);
}

/// An event as a search answers it: its subtype code, outcome, the patient it is about and
/// the resource (`Type/id`, its version left off).
fn summary(event: &Value) -> (String, String, Option<String>, Option<String>) {
    let role = |code: &str| {
        event["entity"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entity| entity["role"]["code"] == code)
            .map(|entity| {
                let reference = entity["what"]["reference"].as_str().unwrap();
                reference.split("/_history/").next().unwrap().to_string()
            })
    };
    (
        event["subtype"][0]["code"].as_str().unwrap().to_string(),
        event["outcome"].as_str().unwrap().to_string(),
        role("1"),
        role("4"),
    )
}

async fn real_requests_are_found_by_patient_verified_and_tampering_named(backend: Backend) {
    // No hand-made events: everything in the log is the server's own.
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    server.import(&[
        json!({"resourceType": "Patient", "id": "p1"}),
        json!({"resourceType": "Patient", "id": "p2"}),
        json!({"resourceType": "Practitioner", "id": "dr1"}),
    ]);
    server.add_admin("root", ADMIN_PASSWORD, "Practitioner/dr1");
    server.add_users(&[("bob", "Practitioner/dr1")]);
    let client = server.kiln(&[
        "client",
        "add",
        "--name",
        "Chart",
        "--type",
        "public",
        "--redirect-uri",
        "https://oauth.pstmn.io/v1/callback",
        "--scope",
        "openid fhirUser user/*.cruds user/*.rs user/AuditEvent.rs",
    ]);
    let client_id = client["client_id"].as_str().unwrap();
    let writer = token(&server, client_id, "user/*.cruds", &["--user", "bob"]);
    let reader = token(&server, client_id, "user/*.rs", &["--user", "bob"]);
    let send = |request: reqwest::RequestBuilder, token: &str| request.bearer_auth(token).send();
    let fhir = |request: reqwest::RequestBuilder, body: &Value| {
        request
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
    };
    let client = &server.client;
    // Bob's request with his writing token, answered with `status` and JSON.
    let as_writer = async |request: reqwest::RequestBuilder, status: u16| {
        expect_json(send(request, &writer).await.unwrap(), status).await
    };
    // Bob reads p1, writes an Observation about p1, searches p1's Observations, reads p2,
    // is refused an update of p1 with a read-only token, and deletes the Observation.
    as_writer(client.get(server.url("Patient/p1")), 200).await;
    let observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "weight"}, "subject": {"reference": "Patient/p1"}});
    let created = as_writer(
        fhir(client.post(server.url("Observation")), &observation),
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let obs = format!("Observation/{id}");
    let mut amended = created.clone();
    amended["status"] = json!("amended");
    as_writer(fhir(client.put(server.url(&obs)), &amended), 200).await;
    as_writer(client.get(server.url("Observation?patient=p1")), 200).await;
    as_writer(client.get(server.url("Patient/p2")), 200).await;
    let p1 = json!({"resourceType": "Patient", "id": "p1", "active": false});
    expect_outcome(
        send(fhir(client.put(server.url("Patient/p1")), &p1), &reader)
            .await
            .unwrap(),
        403,
    )
    .await;
    let deleted = send(client.delete(server.url(&obs)), &writer)
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());

    // The admin's search by patient answers exactly those events about p1, in order.
    let admin = admin_token(&server, client_id).await;
    let bundle = expect_json(
        get(&server, &admin, "AuditEvent?patient=p1&_sort=date").await,
        200,
    )
    .await;
    let found: Vec<_> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["search"]["mode"] == "match")
        .map(|entry| summary(&entry["resource"]))
        .collect();
    let p1 = Some("Patient/p1".to_string());
    let event = |subtype: &str, outcome: &str, entity: Option<&str>| {
        (
            subtype.to_string(),
            outcome.to_string(),
            p1.clone(),
            entity.map(str::to_string),
        )
    };
    assert_eq!(
        found,
        [
            event("read", "0", Some("Patient/p1")),
            event("create", "0", Some(obs.as_str())),
            event("update", "0", Some(obs.as_str())),
            event("search-type", "0", None),
            event("update", "4", Some("Patient/p1")),
            event("delete", "0", Some(obs.as_str())),
        ],
        "{bundle}"
    );
    for entry in bundle["entry"].as_array().unwrap() {
        let agent = &entry["resource"]["agent"];
        assert!(agent.to_string().contains("Practitioner/dr1"), "{agent}");
    }

    // The Observation's whole life by entity, its delete included.
    let life = expect_json(
        get(
            &server,
            &admin,
            &format!("AuditEvent?entity={obs}&_sort=date"),
        )
        .await,
        200,
    )
    .await;
    let life: Vec<_> = life["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| summary(&entry["resource"]))
        .map(|(subtype, outcome, _, entity)| (subtype, outcome, entity))
        .collect();
    let written = |subtype: &str| (subtype.to_string(), "0".to_string(), Some(obs.clone()));
    assert_eq!(
        life,
        [written("create"), written("update"), written("delete")]
    );

    // The chain verifies; a body changed in place (the create's outcome) is named. (The
    // reads just made are loaded first: `kiln audit verify` sees the table only.)
    let url = &server.db.url;
    crate::common::audit::settle(url).await;
    let (intact, out) = audit_cli(&server, &["verify"]).await;
    assert!(intact, "{out}");
    let last = count(url, "SELECT MAX(seq) FROM audit_events").await;
    assert!(
        out.starts_with(&format!("audit log intact: {last} events, last seq {last}")),
        "{out}"
    );
    let seq = count(
        url,
        "SELECT seq FROM audit_events WHERE subtype = 'create' AND patient = 'p1'",
    )
    .await;
    let altered = if url.starts_with("postgres") {
        "convert_to(replace(convert_from(body, 'UTF8'), '\"outcome\":\"0\"', \
         '\"outcome\":\"8\"'), 'UTF8')"
    } else {
        "CAST(replace(CAST(body AS TEXT), '\"outcome\":\"0\"', '\"outcome\":\"8\"') AS BLOB)"
    };
    execute(
        url,
        &format!("UPDATE audit_events SET body = {altered} WHERE seq = {seq}"),
    )
    .await;
    let read = expect_json(
        get(&server, &admin, "AuditEvent?patient=p1&subtype=create").await,
        200,
    )
    .await;
    assert_eq!(read["entry"][0]["resource"]["outcome"], "8", "{read}");
    let (intact, out) = audit_cli(&server, &["verify"]).await;
    assert!(!intact, "{out}");
    assert!(
        out.contains(&format!("event seq {seq} (event_id ")),
        "{out}"
    );
    assert!(out.contains(") was altered"), "{out}");
}
