//! Every error is an OperationOutcome with the right status.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    malformed_json_is_400,
    unknown_type_and_bad_ids,
    wrong_method_is_405,
    body_too_large_is_413,
    update_id_rules_are_400,
    unknown_endpoint_is_404_outcome,
    control_characters_are_refused_not_stored,
    very_long_values_are_stored_and_searchable,
);

async fn malformed_json_is_400(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    for body in [
        "{\"resourceType\": \"Patient\",",
        "[1,2]",
        "",
        "null",
        "\u{0}",
    ] {
        let outcome = expect_outcome(server.post_raw("Patient", body).await, 400).await;
        assert_eq!(outcome["issue"][0]["severity"], "error");
    }
    expect_outcome(server.post_raw("", "{not json").await, 400).await;
}

async fn unknown_type_and_bad_ids(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let outcome = expect_outcome(server.get("Patientx/1").await, 404).await;
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Patientx")
    );
    expect_outcome(
        server
            .post("Unicorn", &json!({"resourceType": "Unicorn"}))
            .await,
        404,
    )
    .await;
    expect_outcome(server.get("Patient/bad_id!").await, 400).await;
    let long_id = "a".repeat(65);
    expect_outcome(server.get(&format!("Patient/{long_id}")).await, 400).await;
}

async fn wrong_method_is_405(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let response = server
        .client
        .post(server.url("Patient/1"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let outcome = expect_outcome(response, 405).await;
    assert_eq!(outcome["issue"][0]["code"], "not-supported");
    let response = server
        .client
        .delete(server.url("metadata"))
        .send()
        .await
        .unwrap();
    expect_outcome(response, 405).await;
}

async fn body_too_large_is_413(backend: Backend) {
    let Some(server) = Server::start_with(backend, &["--max-body-bytes", "2048"]).await else {
        return;
    };
    let mut big = patient("Big");
    big["name"][0]["text"] = json!("x".repeat(4096));
    let outcome = expect_outcome(server.post("Patient", &big).await, 413).await;
    assert_eq!(outcome["issue"][0]["code"], "too-costly");
    // Chunked bodies without a length are cut off too.
    let stream =
        futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big.to_string().into_bytes())]);
    let response = server
        .client
        .post(server.url("Patient"))
        .header("content-type", "application/fhir+json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    expect_outcome(response, 413).await;
    // Small bodies still work.
    assert_eq!(
        server.post("Patient", &patient("Small")).await.status(),
        201
    );
}

async fn update_id_rules_are_400(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut body = patient("Ids");
    body["id"] = json!("other");
    let outcome = expect_outcome(server.put("Patient/mine", &body).await, 400).await;
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.id");
    body.as_object_mut().unwrap().remove("id");
    expect_outcome(server.put("Patient/mine", &body).await, 400).await;
    let mut wrong_type = patient("Type");
    wrong_type["id"] = json!("mine");
    let outcome = expect_outcome(server.put("Observation/mine", &wrong_type).await, 400).await;
    assert_eq!(outcome["issue"][0]["expression"][0], "resourceType");
    let outcome = expect_outcome(server.post("Observation", &patient("Type2")).await, 400).await;
    assert_eq!(outcome["issue"][0]["expression"][0], "resourceType");
    // Nothing was stored by the failed writes.
    expect_outcome(server.get("Patient/mine").await, 404).await;
}

async fn unknown_endpoint_is_404_outcome(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let response = server
        .client
        .get(format!("{}/nowhere", server.base))
        .send()
        .await
        .unwrap();
    expect_outcome(response, 404).await;
    expect_outcome(server.get("Patient/1/_history/1/extra").await, 404).await;
}

async fn control_characters_are_refused_not_stored(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let body = r#"{"resourceType":"Patient","name":[{"family":"a\u0000b"}]}"#;
    let outcome = expect_outcome(server.post_raw("Patient", body).await, 422).await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Patient.name[0].family"
    );
    for query in [
        "Patient?name=%00",
        "Patient?_id=%00",
        "Patient?identifier=a%00|b",
        "Patient?na%01me=x",
    ] {
        expect_outcome(server.get(query).await, 400).await;
    }
    // Tabs and line breaks are fine.
    let response = server
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"text": "A\tB\nC"}]}),
        )
        .await;
    assert_eq!(response.status(), 201);
}

/// Index entries have a size limit (PostgreSQL B-trees): long values must still be stored.
async fn very_long_values_are_stored_and_searchable(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    // Letters that do not compress, so the index entry really is long.
    let long: String = (0..9000u32)
        .map(|i| char::from(b'a' + ((i.wrapping_mul(2_654_435_761) >> 13) % 26) as u8))
        .collect();
    let created = server
        .create(&json!({
            "resourceType": "Patient",
            "identifier": [{"system": long.clone(), "value": long.clone()}],
            "name": [{"family": long.clone()}],
            "generalPractitioner": [{"reference": format!("Practitioner/{long}")}],
            "link": [{"other": {"reference": format!("Patient/{long}")}, "type": "seealso"}]
        }))
        .await;
    assert_eq!(created["name"][0]["family"].as_str().unwrap().len(), 9000);
    let prefix = &long[..40];
    let response = server.get(&format!("Patient?name={prefix}")).await;
    let bundle = expect_json(response, 200).await;
    assert_eq!(bundle["entry"][0]["resource"]["id"], created["id"]);
}
