//! SMART launches driven by a real OAuth client, and what their tokens may reach: no path of
//! the FHIR API may show a patient-scoped app another patient's data.

use oauth2::TokenResponse;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::smart::*;
use crate::common::*;

backend_tests!(
    patient_launch_sees_only_its_patient,
    granular_and_v2_scopes_narrow_access,
    practitioner_launches_and_user_scopes,
    refresh_rotation_replay_and_revocation,
    requests_without_a_usable_token,
);

const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
const VITALS: &str = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";

fn observation(id: &str, patient: &str, category: &str, code: &str) -> Value {
    let (system, cat) = category.split_once('|').unwrap();
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": system, "code": cat}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
    })
}

/// Two patients with records, a practitioner, and a cross-patient reference to try to leak
/// through `_include`.
fn records() -> Vec<Value> {
    let mut b_in_a = observation("obs-a-lab", "pa", LAB, "2345-7");
    b_in_a["performer"] = json!([{"reference": "Patient/pb"}]);
    vec![
        json!({"resourceType": "Patient", "id": "pa", "name": [{"family": "Alpha"}]}),
        json!({"resourceType": "Patient", "id": "pb", "name": [{"family": "Beta"}]}),
        json!({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Doc"}]}),
        b_in_a,
        observation("obs-a-vital", "pa", VITALS, "8867-4"),
        observation("obs-b-lab", "pb", LAB, "2345-7"),
        json!({"resourceType": "Condition", "id": "cond-b", "subject": {"reference": "Patient/pb"},
               "code": {"text": "secret"}}),
        json!({"resourceType": "Encounter", "id": "enc-a", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/pa"}}),
    ]
}

/// A secured server holding [`records`], with users `alice` (Patient/pa), `bob` (Patient/pb)
/// and `doc` (Practitioner/dr1).
async fn secured_with_records(backend: Backend, extra: &[&str]) -> Option<Server> {
    let server = Server::start_secured(backend, extra).await?;
    server.import(&records());
    server.add_users(&[
        ("alice", "Patient/pa"),
        ("bob", "Patient/pb"),
        ("doc", "Practitioner/dr1"),
    ]);
    Some(server)
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

/// The `type/id` of every entry of a searchset, by search mode.
async fn ids(server: &Server, token: &str, path: &str) -> (Vec<String>, Vec<String>) {
    let bundle = expect_json(get(server, token, path).await, 200).await;
    let mut matched = Vec::new();
    let mut included = Vec::new();
    for entry in bundle["entry"].as_array().cloned().unwrap_or_default() {
        let resource = &entry["resource"];
        let key = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        match entry["search"]["mode"].as_str() {
            Some("include") => included.push(key),
            Some("match") | None => matched.push(key),
            _ => {}
        }
    }
    matched.sort();
    included.sort();
    (matched, included)
}

fn strs(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn patient_launch_sees_only_its_patient(backend: Backend) {
    let Some(server) = secured_with_records(backend, &[]).await else {
        return;
    };
    let scope = "launch/patient launch/encounter openid fhirUser offline_access patient/*.rs";
    let app = App::register(&server, "public", scope, &[]);
    let token = authorize(&server, &app, scope, None, &Answers::allow("alice", "pw-1"))
        .await
        .unwrap();
    assert_eq!(token.extra_fields().patient.as_deref(), Some("pa"));
    // launch/encounter in a standalone launch: the patient's latest encounter.
    assert_eq!(token.extra_fields().encounter.as_deref(), Some("enc-a"));
    assert!(
        token.extra_fields().id_token.is_some(),
        "openid + fhirUser give an id_token"
    );
    assert!(
        token.refresh_token().is_some(),
        "offline_access gives a refresh token"
    );
    let t = access_token(&token);

    // Reads and vreads.
    assert_eq!(get(&server, &t, "Patient/pa").await.status(), 200);
    let refused = get(&server, &t, "Patient/pb").await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(
        get(&server, &t, "Observation/obs-b-lab").await.status(),
        403
    );
    assert_eq!(
        get(&server, &t, "Observation/obs-b-lab/_history/1")
            .await
            .status(),
        403
    );
    assert_eq!(get(&server, &t, "Condition/cond-b").await.status(), 403);
    // Outside every patient compartment: readable as scoped.
    assert_eq!(get(&server, &t, "Practitioner/dr1").await.status(), 200);

    // Searches, chains, _has and includes.
    let (matched, _) = ids(&server, &t, "Observation").await;
    assert_eq!(
        matched,
        strs(&["Observation/obs-a-lab", "Observation/obs-a-vital"])
    );
    assert!(
        ids(&server, &t, "Observation?patient=pb")
            .await
            .0
            .is_empty()
    );
    assert!(
        ids(&server, &t, "Observation?subject:Patient.family=Beta")
            .await
            .0
            .is_empty()
    );
    assert!(ids(&server, &t, "Condition").await.0.is_empty());
    let (matched, _) = ids(&server, &t, "Patient?_has:Observation:patient:code=2345-7").await;
    assert_eq!(matched, strs(&["Patient/pa"]));
    let (matched, included) = ids(
        &server,
        &t,
        "Observation?code=2345-7&_include=Observation:performer&_include=Observation:subject",
    )
    .await;
    assert_eq!(matched, strs(&["Observation/obs-a-lab"]));
    assert_eq!(
        included,
        strs(&["Patient/pa"]),
        "Patient/pb must not be included"
    );
    let (matched, included) = ids(
        &server,
        &t,
        "Patient?_revinclude=Observation:subject&_revinclude=Condition:subject",
    )
    .await;
    assert_eq!(matched, strs(&["Patient/pa"]));
    assert_eq!(
        included,
        strs(&["Observation/obs-a-lab", "Observation/obs-a-vital"])
    );
    let (matched, _) = ids(&server, &t, "?_type=Patient,Condition,Practitioner").await;
    assert_eq!(matched, strs(&["Patient/pa", "Practitioner/dr1"]));
    // obs-a-lab names Patient/pb as performer, so it is in both compartments.
    assert_eq!(
        ids(&server, &t, "Patient/pb/Observation").await.0,
        strs(&["Observation/obs-a-lab"])
    );

    // History and $everything.
    let history = expect_json(get(&server, &t, "Observation/_history").await, 200).await;
    let text = history.to_string();
    assert!(
        text.contains("obs-a-lab") && !text.contains("obs-b-lab"),
        "{text}"
    );
    let all = expect_json(get(&server, &t, "_history").await, 200)
        .await
        .to_string();
    assert!(!all.contains("cond-b") && !all.contains("obs-b-lab"));
    assert_eq!(
        get(&server, &t, "Observation/obs-b-lab/_history")
            .await
            .status(),
        403
    );
    assert_eq!(
        get(&server, &t, "Patient/pb/$everything").await.status(),
        403
    );
    let everything = expect_json(get(&server, &t, "Patient/pa/$everything").await, 200).await;
    let text = everything.to_string();
    assert!(text.contains("obs-a-vital") && text.contains("enc-a"));
    assert!(
        !text.contains("obs-b-lab") && !text.contains("\"pb\""),
        "{text}"
    );

    // Writes need write scopes; Bundles check every entry.
    let created = server
        .client
        .post(server.url("Observation"))
        .bearer_auth(&t)
        .json(&observation("new", "pa", LAB, "1-1"))
        .send()
        .await
        .unwrap();
    expect_outcome(created, 403).await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/obs-b-lab"}},
        {"request": {"method": "GET", "url": "Observation/obs-a-lab"}},
        {"request": {"method": "GET", "url": "Condition?subject=Patient/pb"}},
    ]});
    let response = server
        .client
        .post(server.url(""))
        .bearer_auth(&t)
        .json(&batch)
        .send()
        .await
        .unwrap();
    let response = expect_json(response, 200).await;
    assert!(
        response["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("403")
    );
    assert!(
        response["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("200")
    );
    assert_eq!(
        response["entry"][2]["resource"]["entry"]
            .as_array()
            .map_or(0, Vec::len),
        0
    );
}

async fn granular_and_v2_scopes_narrow_access(backend: Backend) {
    let Some(server) = secured_with_records(backend, &[]).await else {
        return;
    };
    let app = App::register(
        &server,
        "confidential-symmetric",
        "launch/patient patient/*.rs",
        &[],
    );
    let granular = format!("patient/Observation.rs?category={LAB}");
    // The patient shares only laboratory results: unchecks the whole-type scope, checks the
    // granular one the consent page offers.
    let answers = Answers {
        uncheck: vec!["patient/Observation.rs".into()],
        check: vec![granular.clone()],
        ..Answers::allow("alice", "pw-1")
    };
    let token = authorize(
        &server,
        &app,
        "launch/patient patient/Observation.rs",
        None,
        &answers,
    )
    .await
    .unwrap();
    assert_eq!(
        token
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["launch/patient".to_string(), granular.clone()])
    );
    let t = access_token(&token);
    assert_eq!(
        ids(&server, &t, "Observation").await.0,
        strs(&["Observation/obs-a-lab"])
    );
    assert_eq!(
        get(&server, &t, "Observation/obs-a-lab").await.status(),
        200
    );
    assert_eq!(
        get(&server, &t, "Observation/obs-a-vital").await.status(),
        403
    );
    assert_eq!(get(&server, &t, "Patient/pa").await.status(), 403);

    // v2 read without search.
    let token = authorize(
        &server,
        &app,
        "launch/patient patient/Observation.r",
        None,
        &Answers::allow("alice", "pw-1"),
    )
    .await
    .unwrap();
    let t = access_token(&token);
    assert_eq!(
        get(&server, &t, "Observation/obs-a-vital").await.status(),
        200
    );
    expect_outcome(get(&server, &t, "Observation").await, 403).await;

    // v1 names work too, and never beyond the registration.
    let token = authorize(
        &server,
        &app,
        "launch/patient patient/Condition.read patient/Observation.write",
        None,
        &Answers::allow("alice", "pw-1"),
    )
    .await
    .unwrap();
    let granted = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        !granted.contains("write") && !granted.contains(".c"),
        "{granted}"
    );
    assert_eq!(
        get(&server, &access_token(&token), "Condition")
            .await
            .status(),
        200
    );
}

async fn practitioner_launches_and_user_scopes(backend: Backend) {
    let Some(server) = secured_with_records(backend, &[]).await else {
        return;
    };
    let scope = "launch launch/patient openid fhirUser user/*.cruds patient/*.rs";
    let app = App::register(&server, "confidential-symmetric", scope, &[]);

    // Standalone: the practitioner picks a patient.
    let answers = Answers {
        patient: Some("pb".into()),
        ..Answers::allow("doc", "pw-1")
    };
    let token = authorize(
        &server,
        &app,
        "launch/patient openid fhirUser patient/*.rs",
        None,
        &answers,
    )
    .await
    .unwrap();
    assert_eq!(token.extra_fields().patient.as_deref(), Some("pb"));
    let t = access_token(&token);
    assert_eq!(get(&server, &t, "Condition/cond-b").await.status(), 200);
    assert_eq!(
        get(&server, &t, "Observation/obs-a-vital").await.status(),
        403
    );

    // EHR launch: the context comes from the launch; user scopes reach every patient.
    let launch = server.kiln(&[
        "launch",
        "create",
        "--client-id",
        &app.client_id,
        "--user",
        "doc",
        "--patient",
        "pa",
        "--encounter",
        "enc-a",
    ]);
    let launch = launch["launch"].as_str().unwrap().to_string();
    let token = authorize(
        &server,
        &app,
        "launch openid fhirUser user/*.cruds",
        Some(&launch),
        &Answers::allow("doc", "pw-1"),
    )
    .await
    .unwrap();
    assert_eq!(token.extra_fields().patient.as_deref(), Some("pa"));
    assert_eq!(token.extra_fields().encounter.as_deref(), Some("enc-a"));
    assert_eq!(token.extra_fields().need_patient_banner, Some(false));
    let t = access_token(&token);
    assert_eq!(ids(&server, &t, "Observation").await.0.len(), 3);
    let created = server
        .client
        .post(server.url("Observation"))
        .bearer_auth(&t)
        .json(&observation("by-doc", "pb", LAB, "1-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // A launch is single use, and only for its own user.
    assert!(
        authorize(
            &server,
            &app,
            "launch user/*.rs",
            Some(&launch),
            &Answers::allow("doc", "pw-1")
        )
        .await
        .is_err()
    );
    let launch = server.kiln(&[
        "launch",
        "create",
        "--client-id",
        &app.client_id,
        "--user",
        "doc",
        "--patient",
        "pa",
    ]);
    assert!(
        authorize(
            &server,
            &app,
            "launch user/*.rs",
            launch["launch"].as_str(),
            &Answers::allow("alice", "pw-1")
        )
        .await
        .is_err()
    );
}

async fn refresh_rotation_replay_and_revocation(backend: Backend) {
    let Some(server) = secured_with_records(backend, &[]).await else {
        return;
    };
    let scope = "launch/patient offline_access patient/*.rs";
    let app = App::register(&server, "public", scope, &[]);
    let answers = Answers::allow("alice", "pw-1");

    // A replayed code is refused and revokes what the first exchange issued.
    let (code, verifier) = authorize_code(&server, &app, scope, None, &answers)
        .await
        .unwrap();
    let first = exchange(&server, &app, &code, verifier).await.unwrap();
    let (_, other_verifier) = authorize_code(&server, &app, scope, None, &answers)
        .await
        .unwrap();
    assert!(
        exchange(&server, &app, &code, other_verifier)
            .await
            .is_err()
    );
    assert_eq!(
        get(&server, &access_token(&first), "Patient/pa")
            .await
            .status(),
        401
    );

    // Rotation: each refresh gives a new refresh token; reusing an old one revokes the chain.
    let token = authorize(&server, &app, scope, None, &answers)
        .await
        .unwrap();
    let old_refresh = token.refresh_token().unwrap().secret().clone();
    let rotated = refresh(&server, &app, &old_refresh).await.unwrap();
    let new_refresh = rotated.refresh_token().unwrap().secret().clone();
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(
        get(&server, &access_token(&rotated), "Patient/pa")
            .await
            .status(),
        200
    );
    assert!(
        refresh(&server, &app, &old_refresh).await.is_err(),
        "reuse is refused"
    );
    assert_eq!(
        get(&server, &access_token(&rotated), "Patient/pa")
            .await
            .status(),
        401
    );
    assert!(
        refresh(&server, &app, &new_refresh).await.is_err(),
        "the chain is revoked"
    );

    // Revocation takes effect at once.
    let token = authorize(&server, &app, scope, None, &answers)
        .await
        .unwrap();
    let t = access_token(&token);
    assert_eq!(get(&server, &t, "Patient/pa").await.status(), 200);
    let revoked = server
        .client
        .post(format!("{}/auth/revoke", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={t}&client_id={}", app.client_id))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(get(&server, &t, "Patient/pa").await.status(), 401);

    // Removing the client stops its tokens.
    let token = authorize(&server, &app, scope, None, &answers)
        .await
        .unwrap();
    server.kiln(&["client", "remove", &app.client_id]);
    assert_eq!(
        get(&server, &access_token(&token), "Patient/pa")
            .await
            .status(),
        401
    );
}

async fn requests_without_a_usable_token(backend: Backend) {
    let Some(server) = secured_with_records(backend, &["--access-token-lifetime", "1"]).await
    else {
        return;
    };
    let missing = server.get("Patient/pa").await;
    assert_eq!(missing.status(), 401);
    let challenge = missing.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    expect_outcome(missing, 401).await;
    let bogus = get(&server, "not-a-token", "Patient/pa").await;
    assert!(
        bogus.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    expect_outcome(bogus, 401).await;
    assert_eq!(server.get("metadata").await.status(), 200);

    let scope = "launch/patient patient/*.rs";
    let app = App::register(&server, "public", scope, &[]);
    let token = authorize(&server, &app, scope, None, &Answers::allow("alice", "pw-1"))
        .await
        .unwrap();
    assert_eq!(token.expires_in().map(|d| d.as_secs()), Some(1));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    expect_outcome(get(&server, &access_token(&token), "Patient/pa").await, 401).await;
}
