//! Structural validation on create and update: 422 with one issue per problem, with its path.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    invalid_resources_are_422_with_paths,
    several_problems_give_several_issues,
    contained_and_bundle_resources_are_validated,
    valid_complex_resources_are_accepted,
);

/// Posts `resource` and returns the (expression, code) pairs of the OperationOutcome.
async fn issues(server: &Server, resource: Value) -> Vec<(String, String)> {
    let resource_type = resource["resourceType"]
        .as_str()
        .unwrap_or("Patient")
        .to_string();
    let outcome = expect_outcome(server.post(&resource_type, &resource).await, 422).await;
    outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|issue| {
            (
                issue["expression"][0].as_str().unwrap_or("").to_string(),
                issue["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn invalid_resources_are_422_with_paths(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let cases = [
        (json!({"resourceType": "Patient", "foo": 1}), "Patient.foo"),
        (
            json!({"resourceType": "Patient", "birthDate": "1990-13-01"}),
            "Patient.birthDate",
        ),
        (
            json!({"resourceType": "Patient", "active": "yes"}),
            "Patient.active",
        ),
        (
            json!({"resourceType": "Patient", "multipleBirthInteger": 1.5}),
            "Patient.multipleBirthInteger",
        ),
        (
            json!({"resourceType": "Patient", "gender": ""}),
            "Patient.gender",
        ),
        (
            json!({"resourceType": "Patient", "name": {"family": "NotAnArray"}}),
            "Patient.name",
        ),
        (
            json!({"resourceType": "Patient", "birthDate": ["1990-01-01"]}),
            "Patient.birthDate",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"given": ["A", 7]}]}),
            "Patient.name[0].given[1]",
        ),
        (
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueFoo": 1}),
            "Observation.valueFoo",
        ),
        (
            json!({"resourceType": "Observation", "status": "final"}),
            "Observation.code",
        ),
        (
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "issued": "2020-01-01"}),
            "Observation.issued",
        ),
    ];
    for (resource, path) in cases {
        let found = issues(&server, resource.clone()).await;
        assert!(
            found.iter().any(|(expression, _)| expression == path),
            "expected an issue at {path} for {resource}, got {found:?}"
        );
    }
    let found = issues(
        &server,
        json!({"resourceType": "Observation", "status": "final"}),
    )
    .await;
    assert_eq!(
        found,
        [("Observation.code".to_string(), "required".to_string())]
    );
}

async fn several_problems_give_several_issues(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let found = issues(
        &server,
        json!({"resourceType": "Patient", "unknownA": 1, "birthDate": "yesterday", "active": 1}),
    )
    .await;
    let paths: Vec<&str> = found.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(found.len(), 3, "{found:?}");
    for path in ["Patient.unknownA", "Patient.birthDate", "Patient.active"] {
        assert!(paths.contains(&path), "{path} missing in {paths:?}");
    }
    // A PUT is validated the same way.
    let outcome = expect_outcome(
        server
            .put(
                "Patient/p1",
                &json!({"resourceType": "Patient", "id": "p1", "active": "no"}),
            )
            .await,
        422,
    )
    .await;
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.active");
}

async fn contained_and_bundle_resources_are_validated(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let found = issues(
        &server,
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "contained": [{"resourceType": "Patient", "id": "p", "birthDate": "bad"}]
        }),
    )
    .await;
    assert!(
        found
            .iter()
            .any(|(path, _)| path.starts_with("Observation.contained[0]")
                && path.ends_with("birthDate")),
        "{found:?}"
    );
    let found = issues(
        &server,
        json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient", "gender": 12}}]
        }),
    )
    .await;
    assert!(
        found
            .iter()
            .any(|(path, _)| path.starts_with("Bundle.entry[0].resource")
                && path.ends_with("gender")),
        "{found:?}"
    );
    let found = issues(&server, json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Nope"}}]})).await;
    assert!(!found.is_empty());
}

async fn valid_complex_resources_are_accepted(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let bundle: Value =
        serde_json::from_str(include_str!("../../fixtures/transaction-us-core-mini.json")).unwrap();
    for entry in bundle["entry"].as_array().unwrap() {
        let resource = &entry["resource"];
        let response = server
            .post(resource["resourceType"].as_str().unwrap(), resource)
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
}
