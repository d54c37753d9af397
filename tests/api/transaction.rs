//! transaction and batch Bundles.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    transaction_rewrites_urn_uuid_references,
    transaction_is_all_or_nothing,
    batch_reports_each_entry,
    transaction_resolves_conditional_references,
    transaction_rejects_malformed_bundles,
    us_core_reference_bundles_load_as_transactions,
    bundles_refuse_a_repeated_full_url,
);

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

async fn transaction_rewrites_urn_uuid_references(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let patient_urn = "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0";
    let bundle = transaction(vec![
        json!({
            "fullUrl": "urn:uuid:9b1d7a2e-2f6e-4d6b-8f5e-0c2b1a3d4e5f",
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "weight"},
                "subject": {"reference": patient_urn}
            },
            "request": {"method": "POST", "url": "Observation"}
        }),
        json!({
            "fullUrl": patient_urn,
            "resource": patient("Txn"),
            "request": {"method": "POST", "url": "Patient"}
        }),
        json!({
            "resource": {"resourceType": "Organization", "id": "org-1", "name": "Clinic"},
            "request": {"method": "PUT", "url": "Organization/org-1"}
        }),
    ]);
    let response = expect_json(server.post("", &bundle).await, 200).await;
    assert_eq!(response["type"], "transaction-response");
    let entries = response["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    assert_eq!(entries[1]["response"]["status"], "201 Created");
    assert_eq!(entries[2]["response"]["status"], "201 Created");
    assert_eq!(entries[2]["response"]["etag"], "W/\"1\"");
    let patient_location = entries[1]["response"]["location"].as_str().unwrap();
    let patient_id = patient_location
        .strip_prefix(&format!("{}/Patient/", server.fhir))
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let observation = &entries[0]["resource"];
    assert_eq!(
        observation["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    let stored = expect_json(
        server
            .get(&format!(
                "Observation/{}",
                observation["id"].as_str().unwrap()
            ))
            .await,
        200,
    )
    .await;
    assert_eq!(
        stored["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    expect_json(server.get(&format!("Patient/{patient_id}")).await, 200).await;
}

async fn transaction_is_all_or_nothing(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let existing = server.create(&patient("Keep")).await;
    let id = existing["id"].as_str().unwrap();
    let mut changed = existing.clone();
    changed["gender"] = json!("male");
    let bundle = transaction(vec![
        json!({
            "resource": {"resourceType": "Organization", "id": "never", "name": "Never"},
            "request": {"method": "PUT", "url": "Organization/never"}
        }),
        json!({
            "resource": changed,
            "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"5\""}
        }),
    ]);
    let outcome = expect_outcome(server.post("", &bundle).await, 412).await;
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("If-Match")
    );
    expect_outcome(server.get("Organization/never").await, 404).await;
    let unchanged = expect_json(server.get(&format!("Patient/{id}")).await, 200).await;
    assert_eq!(unchanged["gender"], "female");
    assert_eq!(unchanged["meta"]["versionId"], "1");

    // An invalid resource anywhere fails the whole transaction with its path.
    let bundle = transaction(vec![
        json!({
            "resource": {"resourceType": "Organization", "id": "never", "name": "Never"},
            "request": {"method": "PUT", "url": "Organization/never"}
        }),
        json!({
            "resource": {"resourceType": "Patient", "birthDate": "not-a-date"},
            "request": {"method": "POST", "url": "Patient"}
        }),
    ]);
    let outcome = expect_outcome(server.post("", &bundle).await, 422).await;
    let expression = outcome["issue"][0]["expression"][0].as_str().unwrap();
    assert!(
        expression.starts_with("Bundle.entry[1].resource"),
        "{expression}"
    );
    assert!(expression.contains("birthDate"), "{expression}");
    expect_outcome(server.get("Organization/never").await, 404).await;
}

async fn batch_reports_each_entry(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let existing = server.create(&patient("Batch")).await;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient("B1"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "gender": 5}, "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": format!("Patient/{}", existing["id"].as_str().unwrap())}},
            {"request": {"method": "GET", "url": "Patient/missing"}},
            {"request": {"method": "DELETE", "url": format!("Patient/{}", existing["id"].as_str().unwrap())}},
            {"request": {"method": "GET", "url": "Patient?family=B1"}},
            {"request": {"method": "GET", "url": "Patient?birthdate=not-a-date"}}
        ]
    });
    let response = expect_json(server.post("", &bundle).await, 200).await;
    assert_eq!(response["type"], "batch-response");
    let entries = response["entry"].as_array().unwrap();
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    assert!(
        entries[1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("422")
    );
    assert_eq!(
        entries[1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(entries[2]["response"]["status"], "200 OK");
    assert_eq!(entries[2]["resource"]["name"][0]["family"], "Batch");
    assert!(
        entries[3]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("404")
    );
    assert_eq!(entries[4]["response"]["status"], "204 No Content");
    assert_eq!(entries[5]["response"]["status"], "200 OK");
    assert_eq!(entries[5]["resource"]["type"], "searchset");
    assert_eq!(entries[5]["resource"]["total"], 1);
    assert!(
        entries[6]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("400")
    );
    let created = entries[0]["response"]["location"].as_str().unwrap();
    assert_eq!(
        server.client.get(created).send().await.unwrap().status(),
        200
    );
}

async fn transaction_resolves_conditional_references(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let practitioner = server
        .create(&json!({
            "resourceType": "Practitioner",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9999974493"}],
            "name": [{"family": "Doc"}]
        }))
        .await;
    let bundle = transaction(vec![json!({
        "resource": {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "participant": [{"individual": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974493"}}]
        },
        "request": {"method": "POST", "url": "Encounter"}
    })]);
    let response = expect_json(server.post("", &bundle).await, 200).await;
    let encounter = &response["entry"][0]["resource"];
    assert_eq!(
        encounter["participant"][0]["individual"]["reference"],
        format!("Practitioner/{}", practitioner["id"].as_str().unwrap())
    );
    let unresolved = transaction(vec![json!({
        "resource": {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "participant": [{"individual": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|0000"}}]
        },
        "request": {"method": "POST", "url": "Encounter"}
    })]);
    let outcome = expect_outcome(server.post("", &unresolved).await, 412).await;
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("matches no resource")
    );
}

async fn transaction_rejects_malformed_bundles(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let not_bundle = expect_outcome(server.post("", &patient("X")).await, 400).await;
    assert_eq!(not_bundle["issue"][0]["expression"][0], "resourceType");
    let collection = json!({"resourceType": "Bundle", "type": "collection"});
    expect_outcome(server.post("", &collection).await, 400).await;
    let no_request = transaction(vec![json!({"resource": patient("Y")})]);
    let outcome = expect_outcome(server.post("", &no_request).await, 400).await;
    assert_eq!(outcome["issue"][0]["expression"][0], "Bundle.entry[0]");
    let twice = transaction(vec![
        json!({"resource": {"resourceType": "Organization", "id": "a", "name": "A"}, "request": {"method": "PUT", "url": "Organization/a"}}),
        json!({"resource": {"resourceType": "Organization", "id": "a", "name": "B"}, "request": {"method": "PUT", "url": "Organization/a"}}),
    ]);
    expect_outcome(server.post("", &twice).await, 400).await;
    let unknown_type = transaction(vec![
        json!({"request": {"method": "DELETE", "url": "Nope/1"}}),
    ]);
    expect_outcome(server.post("", &unknown_type).await, 404).await;
    // A PATCH entry needs its patch document as the resource.
    let patch = transaction(vec![
        json!({"request": {"method": "PATCH", "url": "Patient/1"}}),
    ]);
    let outcome = expect_outcome(server.post("", &patch).await, 400).await;
    assert_eq!(outcome["issue"][0]["expression"][0], "Bundle.entry[0]");
    let trace = transaction(vec![
        json!({"request": {"method": "TRACE", "url": "Patient/1"}}),
    ]);
    expect_outcome(server.post("", &trace).await, 405).await;
}

async fn us_core_reference_bundles_load_as_transactions(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let bundle: Value =
        serde_json::from_str(include_str!("../../fixtures/transaction-us-core-mini.json")).unwrap();
    let response = expect_json(server.post("", &bundle).await, 200).await;
    let entries = response["entry"].as_array().unwrap();
    assert_eq!(entries.len(), bundle["entry"].as_array().unwrap().len());
    for entry in entries {
        assert!(
            entry["response"]["status"]
                .as_str()
                .unwrap()
                .starts_with("201"),
            "{entry}"
        );
    }
    let condition = expect_json(server.get("Condition/mini-condition").await, 200).await;
    assert_eq!(condition["subject"]["reference"], "Patient/mini-patient");
}

/// bdl-7: a fullUrl names one resource in a Bundle (versions of it aside); two entries with
/// the same one make references to it ambiguous, so the Bundle is refused.
async fn bundles_refuse_a_repeated_full_url(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let urn = "urn:uuid:5e0b2f4c-8d1a-4c3e-9f7b-2a6d1e0c3b4a";
    let entry = |family: &str| {
        json!({
            "fullUrl": urn,
            "resource": patient(family),
            "request": {"method": "POST", "url": "Patient"}
        })
    };
    for bundle_type in ["transaction", "batch"] {
        let bundle = json!({"resourceType": "Bundle", "type": bundle_type,
                            "entry": [entry("First"), entry("Second")]});
        let outcome = expect_outcome(server.post("", &bundle).await, 400).await;
        assert_eq!(
            outcome["issue"][0]["expression"],
            json!(["Bundle.entry[1].fullUrl"]),
            "{outcome}"
        );
        let text = outcome["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(text.contains(urn) && text.contains("bdl-7"), "{text}");
    }
    // Nothing was written.
    let found = expect_json(server.get("Patient?family=First,Second").await, 200).await;
    assert_eq!(found["entry"].as_array().map_or(0, Vec::len), 0);
    // Different versions of one resource may share it.
    let mut first = entry("First");
    first["resource"]["meta"] = json!({"versionId": "1"});
    let mut second = entry("Second");
    second["resource"]["meta"] = json!({"versionId": "2"});
    second["request"] = json!({"method": "POST", "url": "Patient"});
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [first, second]});
    expect_json(server.post("", &bundle).await, 200).await;
}
