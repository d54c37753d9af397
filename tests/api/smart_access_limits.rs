//! What a token may reach beyond plain reads and searches, over the US Core sample patients
//! 85 and 355: writes refused on scope before their target is looked up, resources outside
//! the Patient compartment that are still a patient's data (Device), the inner resources of
//! chains and `_has`, and conditional matches, which all see only what the token reaches.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::smart::*;
use crate::common::*;

backend_tests!(
    writes_are_refused_on_scope_before_their_target_is_looked_up,
    devices_are_their_patients_data,
    chains_and_has_see_only_what_the_token_reaches,
    conditional_matches_see_only_what_the_token_reaches,
);

/// Patient 355's implantable devices, Observation and the Location of its encounters.
const DEVICE_355: &str = "592f034c-9680-b3f2-b73d-50c743ffd096";
const OBSERVATION_355: &str = "4e425466-5d90-a9a3-8caa-53216d5430b7";
const CODE_355: &str = "77606-2";
const LOCATION_355: &str = "ecd8399c-f381-beae-9a1c-afec249d4632";
/// The Practitioner and Organization of 355's encounters at that Location.
const PRACTITIONER_355: &str = "618787f5-2588-3dca-b90e-5e8fd27b1a36";
const ORGANIZATION_355: &str = "c7459800-e42b-3144-a934-59585c9eacff";
const MRN_355: &str = "http://hospital.smarthealthit.org|e91975f5-9445-c11f-cabf-c3c6dae161f2";
/// Where patient 85 was seen.
const LOCATION_85: &str = "690866aa-d2fd-8074-b448-3b7b0f1c84ad";

/// A secured server holding the US Core sample patients 85 and 355 (the bundled sample
/// Bundles, loaded with `kiln import`), with users `p85` (Patient/85), `p355` (Patient/355)
/// and `doc` (a practitioner of 355).
async fn secured_with_samples(backend: Backend) -> Option<Server> {
    let server = Server::start_secured(backend, &[]).await?;
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for id in ["85", "355"] {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("sample-data/uscore_bundle_patient_{id}.json.gz"));
        let compressed = std::fs::read(&source).unwrap();
        let mut bundle = String::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_string(&mut bundle)
            .unwrap();
        let path = dir.path().join(format!("patient_{id}.json"));
        std::fs::write(&path, bundle).unwrap();
        paths.push(path);
    }
    let output = Command::new(kiln_bin())
        .arg("import")
        .args(&paths)
        .env("KILN_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kiln import failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.add_users(&[
        ("p85", "Patient/85"),
        ("p355", "Patient/355"),
        ("doc", &format!("Practitioner/{PRACTITIONER_355}")),
    ]);
    Some(server)
}

/// A token of `username` (a patient user: their own record) with `scope`.
async fn patient_token(server: &Server, username: &str, scope: &str) -> String {
    let scope = format!("launch/patient openid fhirUser {scope}");
    let app = App::register(server, "public", &scope, &[]);
    let token = authorize(
        server,
        &app,
        &scope,
        None,
        &Answers::allow(username, "pw-1"),
    )
    .await
    .unwrap();
    access_token(&token)
}

async fn send(
    server: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = server
        .client
        .request(method, server.url(path))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .json(body);
    }
    request.send().await.unwrap()
}

async fn get(server: &Server, token: &str, path: &str) -> reqwest::Response {
    send(server, token, reqwest::Method::GET, path, None, &[]).await
}

/// The `Type/id` of every match of a searchset, and of every include.
async fn found(server: &Server, token: &str, path: &str) -> (Vec<String>, Vec<String>) {
    let bundle = expect_json(get(server, token, path).await, 200).await;
    let mut matched = Vec::new();
    let mut included = Vec::new();
    for entry in bundle["entry"].as_array().cloned().unwrap_or_default() {
        let resource = &entry["resource"];
        let key = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap_or_default(),
            resource["id"].as_str().unwrap_or_default()
        );
        match entry["search"]["mode"].as_str() {
            Some("match") => matched.push(key),
            Some("include") => included.push(key),
            _ => {}
        }
    }
    matched.sort();
    included.sort();
    (matched, included)
}

fn observation_of(patient: &str, code: &str) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
    })
}

/// A request to try: method, path, body, headers.
type Write<'a> = (
    reqwest::Method,
    String,
    Option<&'a Value>,
    Vec<(&'a str, &'a str)>,
);

/// A 403 OperationOutcome whose issues carry no Bundle path (the request was not a Bundle).
async fn refused_plainly(response: reqwest::Response, what: &str) {
    let outcome = expect_outcome(response, 403).await;
    assert!(
        !outcome.to_string().contains("Bundle.entry"),
        "{what}: a plain request's outcome points into a Bundle: {outcome}"
    );
}

async fn writes_are_refused_on_scope_before_their_target_is_looked_up(backend: Backend) {
    let Some(server) = secured_with_samples(backend).await else {
        return;
    };
    use reqwest::Method;
    let reader = patient_token(&server, "p85", "patient/*.rs").await;
    let observation_85 = found(&server, &reader, "Observation?_count=1").await.0[0].clone();

    // Delete: the same 403 for a missing id and for an existing one (it was 204 and 403).
    for path in ["Observation/nope", observation_85.as_str()] {
        let response = send(&server, &reader, Method::DELETE, path, None, &[]).await;
        refused_plainly(response, path).await;
    }
    // Every other write kind, on missing and existing targets alike.
    let body = observation_of("85", "8867-4");
    let mut existing = body.clone();
    existing["id"] = json!(observation_85.trim_start_matches("Observation/"));
    let new_patient = patient("Newcomer");
    let missing = json!({"resourceType": "Observation", "id": "nope", "status": "final",
                         "code": {"text": "x"}, "subject": {"reference": "Patient/85"}});
    let writes: Vec<Write> = vec![
        (Method::POST, "Observation".into(), Some(&body), vec![]),
        (Method::POST, "Patient".into(), Some(&new_patient), vec![]),
        (
            Method::POST,
            "Observation".into(),
            Some(&body),
            vec![("if-none-exist", "code=8867-4")],
        ),
        (Method::PUT, observation_85.clone(), Some(&existing), vec![]),
        (
            Method::PUT,
            "Observation/nope".into(),
            Some(&missing),
            vec![],
        ),
        (
            Method::PUT,
            "Observation?code=nothing-has-this".into(),
            Some(&body),
            vec![],
        ),
        (
            Method::DELETE,
            "Observation?code=nothing-has-this".into(),
            None,
            vec![],
        ),
        (
            Method::DELETE,
            format!("Observation?_id={OBSERVATION_355}"),
            None,
            vec![],
        ),
    ];
    for (method, path, body, headers) in &writes {
        let response = send(&server, &reader, method.clone(), path, *body, headers).await;
        refused_plainly(response, &format!("{method} {path}")).await;
    }

    // In a transaction the first refused entry fails it, pointed at that entry; in a batch
    // each entry fails on its own, missing target or not.
    let entries = json!([
        {"request": {"method": "DELETE", "url": "Observation/nope"}},
        {"request": {"method": "DELETE", "url": observation_85}},
    ]);
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let response = send(&server, &reader, Method::POST, "", Some(&transaction), &[]).await;
    let outcome = expect_outcome(response, 403).await;
    assert_eq!(
        outcome["issue"][0]["expression"],
        json!(["Bundle.entry[0]"]),
        "{outcome}"
    );
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
    let response = send(&server, &reader, Method::POST, "", Some(&batch), &[]).await;
    let response = expect_json(response, 200).await;
    for entry in response["entry"].as_array().unwrap() {
        assert!(
            entry["response"]["status"]
                .as_str()
                .unwrap()
                .starts_with("403"),
            "{response}"
        );
    }
    // Reads in a Bundle: the scope before the lookup too.
    let writer = patient_token(&server, "p85", "patient/Observation.cud").await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/nope"}},
    ]});
    let response = send(&server, &writer, Method::POST, "", Some(&batch), &[]).await;
    let response = expect_json(response, 200).await;
    assert!(
        response["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("403"),
        "{response}"
    );

    // A token with write scopes: a delete of a missing id is a 204, of another patient's
    // resource a 403 without a Bundle path; creating their data is refused the same way.
    let response = send(
        &server,
        &writer,
        Method::DELETE,
        "Observation/nope",
        None,
        &[],
    )
    .await;
    assert_eq!(response.status(), 204);
    let path = format!("Observation/{OBSERVATION_355}");
    let response = send(&server, &writer, Method::DELETE, &path, None, &[]).await;
    refused_plainly(response, &path).await;
    let response = send(
        &server,
        &writer,
        Method::POST,
        "Observation",
        Some(&observation_of("355", "8867-4")),
        &[],
    )
    .await;
    refused_plainly(response, "POST Observation for 355").await;
    // SMART: the update scope covers an update that creates.
    let response = send(
        &server,
        &writer,
        Method::PUT,
        "Observation/made-by-put",
        Some(
            &json!({"resourceType": "Observation", "id": "made-by-put", "status": "final",
                     "code": {"text": "x"}, "subject": {"reference": "Patient/85"}}),
        ),
        &[],
    )
    .await;
    assert_eq!(response.status(), 201);
}

async fn devices_are_their_patients_data(backend: Backend) {
    let Some(server) = secured_with_samples(backend).await else {
        return;
    };
    let token_85 = patient_token(&server, "p85", "patient/*.rs").await;
    let token_355 = patient_token(&server, "p355", "patient/*.rs").await;
    let devices_355 = found(&server, &token_355, "Device").await.0;
    assert_eq!(devices_355.len(), 2, "{devices_355:?}");
    assert_eq!(
        found(&server, &token_355, "Device?patient=355").await.0,
        devices_355
    );
    assert_eq!(
        get(&server, &token_355, &format!("Device/{DEVICE_355}"))
            .await
            .status(),
        200
    );

    // Patient 85 has no devices, and sees none of 355's by any path.
    for path in [
        "Device",
        "Device?patient=355",
        "Device?patient=Patient/355&_include:iterate=*",
        "Device?_id=592f034c-9680-b3f2-b73d-50c743ffd096",
        "?_type=Device",
    ] {
        let (matched, included) = found(&server, &token_85, path).await;
        assert!(
            matched.is_empty() && included.is_empty(),
            "{path}: {matched:?} {included:?}"
        );
    }
    let read = get(&server, &token_85, &format!("Device/{DEVICE_355}")).await;
    expect_outcome(read, 403).await;
    let history = get(&server, &token_85, &format!("Device/{DEVICE_355}/_history")).await;
    expect_outcome(history, 403).await;
    // Nor by iterating includes through 355's records from a Location both may read.
    let path = format!("Location?_id={LOCATION_355}&_revinclude:iterate=*&_include:iterate=*");
    let (matched, included) = found(&server, &token_85, &path).await;
    assert_eq!(matched, vec![format!("Location/{LOCATION_355}")]);
    // Only what the Location itself leads to (its Organization, PractitionerRoles…).
    let patient_data = [
        "Device/",
        "Encounter/",
        "Patient/",
        "Observation/",
        "Procedure/",
    ];
    assert!(
        included
            .iter()
            .all(|key| !patient_data.iter().any(|kind| key.starts_with(kind))),
        "{included:?}"
    );
    let (_, included) = found(&server, &token_355, &path).await;
    assert!(
        included.contains(&format!("Device/{DEVICE_355}")),
        "{included:?}"
    );
    let everything = expect_json(get(&server, &token_85, "_history").await, 200).await;
    assert!(!everything.to_string().contains(DEVICE_355));
}

async fn chains_and_has_see_only_what_the_token_reaches(backend: Backend) {
    let Some(server) = secured_with_samples(backend).await else {
        return;
    };
    let token_85 = patient_token(&server, "p85", "patient/*.rs").await;
    let token_355 = patient_token(&server, "p355", "patient/*.rs").await;
    // The unrestricted types, reached through the other patient's Encounters.
    let leaks = [
        (
            "Location?_has:Encounter:location:patient=355",
            format!("Location/{LOCATION_355}"),
        ),
        (
            "Practitioner?_has:Encounter:participant:patient=355",
            format!("Practitioner/{PRACTITIONER_355}"),
        ),
        (
            "Organization?_has:Encounter:service-provider:patient=355",
            format!("Organization/{ORGANIZATION_355}"),
        ),
        (
            "Location?_has:Encounter:location:subject:Patient.identifier=e91975f5-9445-c11f-cabf-c3c6dae161f2",
            format!("Location/{LOCATION_355}"),
        ),
        (
            "Organization?_has:Encounter:service-provider:_has:Observation:encounter:code=77606-2",
            format!("Organization/{ORGANIZATION_355}"),
        ),
    ];
    for (path, expected) in &leaks {
        // Patient 355 finds it: the search itself works.
        assert!(
            found(&server, &token_355, path).await.0.contains(expected),
            "{path}"
        );
        let (matched, _) = found(&server, &token_85, path).await;
        assert!(matched.is_empty(), "{path}: 85's token sees {matched:?}");
    }
    // Through their own encounters, a patient finds where they were seen.
    let (matched, _) = found(
        &server,
        &token_85,
        "Location?_has:Encounter:location:patient=85",
    )
    .await;
    assert!(
        matched.contains(&format!("Location/{LOCATION_85}")),
        "{matched:?}"
    );
    // A type the token cannot search is never reached through a chain either.
    let observations_only = patient_token(&server, "p85", "patient/Observation.rs").await;
    let (matched, _) = found(
        &server,
        &observations_only,
        "Observation?subject:Patient.identifier=d831ec91-c7a3-4a61-9312-7ff0c4a32134",
    )
    .await;
    assert!(matched.is_empty(), "{matched:?}");
    let (matched, _) = found(
        &server,
        &observations_only,
        "Observation?subject=Patient/85&_count=1",
    )
    .await;
    assert_eq!(matched.len(), 1);
}

async fn conditional_matches_see_only_what_the_token_reaches(backend: Backend) {
    let Some(server) = secured_with_samples(backend).await else {
        return;
    };
    use reqwest::Method;
    let token = patient_token(&server, "p85", "patient/*.cruds").await;
    let doctor = {
        let scope = "openid fhirUser user/*.rs";
        let app = App::register(&server, "public", scope, &[]);
        access_token(
            &authorize(&server, &app, scope, None, &Answers::allow("doc", "pw-1"))
                .await
                .unwrap(),
        )
    };
    let body = observation_of("85", CODE_355);

    // If-None-Exist naming 355's data finds nothing: the create goes ahead (no 200 with
    // 355's Observation, no 412).
    let if_none_exist = format!("patient=355&code={CODE_355}");
    for _ in 0..2 {
        let response = send(
            &server,
            &token,
            Method::POST,
            "Observation",
            Some(&body),
            &[("if-none-exist", &if_none_exist)],
        )
        .await;
        let created = expect_json(response, 201).await;
        assert_eq!(created["subject"]["reference"], "Patient/85");
    }
    // Its own data it does find.
    let own = format!("patient=85&code={CODE_355}&_count=1");
    let response = send(
        &server,
        &token,
        Method::POST,
        "Observation",
        Some(&body),
        &[("if-none-exist", own.as_str())],
    )
    .await;
    assert_eq!(response.status(), 412, "two of its own now match");

    // A conditional update or delete aimed at 355's Observation does not see it.
    let path = format!("Observation?_id={OBSERVATION_355}");
    let response = send(&server, &token, Method::PUT, &path, Some(&body), &[]).await;
    let created = expect_json(response, 201).await;
    assert_ne!(created["id"], OBSERVATION_355);
    let response = send(&server, &token, Method::DELETE, &path, None, &[]).await;
    assert_eq!(response.status(), 204);
    let still_there = get(&server, &doctor, &format!("Observation/{OBSERVATION_355}")).await;
    let still_there = expect_json(still_there, 200).await;
    assert_eq!(still_there["meta"]["versionId"], "1");

    // Conditional references in a transaction resolve only to what the token reaches.
    for reference in [
        format!("Patient?identifier={MRN_355}"),
        format!("Observation?_id={OBSERVATION_355}"),
    ] {
        let mut observation = observation_of("85", "8867-4");
        observation["hasMember"] = json!([{"reference": reference}]);
        if reference.starts_with("Patient") {
            observation["subject"] = json!({"reference": reference});
        }
        let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:0f4ed1a2-3c1b-4b7e-9d76-1b2b0c3d4e5f", "resource": observation,
             "request": {"method": "POST", "url": "Observation"}},
        ]});
        let response = send(&server, &token, Method::POST, "", Some(&transaction), &[]).await;
        let outcome = expect_outcome(response, 412).await;
        assert!(
            outcome.to_string().contains("matches no resource"),
            "{reference}: {outcome}"
        );
    }
    // The same references resolve for the practitioner who may see 355's record.
    let found_by_doctor = found(&server, &doctor, &format!("Patient?identifier={MRN_355}"))
        .await
        .0;
    assert_eq!(found_by_doctor, vec!["Patient/355".to_string()]);
}
