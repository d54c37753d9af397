//! US Core `DocumentReference/$docref`: POST with a Parameters body answers as GET does.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    post_answers_as_get_does,
    post_pages_with_get_links,
    malformed_inputs_are_refused,
    undated_request_answers_current_or_most_recent,
);

const LOINC: &str = "http://loinc.org";

async fn seed(server: &Server) {
    for id in ["ana", "bo"] {
        let response = server
            .put(
                &format!("Patient/{id}"),
                &json!({"resourceType": "Patient", "id": id}),
            )
            .await;
        assert!(response.status().is_success());
    }
    for (id, patient, code, period) in [
        ("d1", "ana", "34133-9", Some(("2020-02-01", "2020-02-03"))),
        ("d2", "ana", "18842-5", Some(("2021-05-01", "2021-05-02"))),
        ("d3", "ana", "34133-9", None),
        ("d4", "bo", "34133-9", Some(("2020-01-01", "2020-12-31"))),
    ] {
        let mut document = json!({
            "resourceType": "DocumentReference", "id": id, "status": "current",
            "type": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}],
        });
        if let Some((start, end)) = period {
            document["context"] = json!({"period": {"start": start, "end": end}});
        }
        let response = server
            .put(&format!("DocumentReference/{id}"), &document)
            .await;
        assert!(response.status().is_success());
    }
}

fn parameters(parameters: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": parameters})
}

fn matches(bundle: &Value) -> Vec<String> {
    assert_eq!(bundle["type"], "searchset", "{bundle}");
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            assert_eq!(entry["search"]["mode"], "match");
            entry["resource"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    ids
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|link| link["relation"] == "next")
        .map(|link| link["url"].as_str().unwrap().to_string())
}

async fn post_answers_as_get_does(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let ccd = json!({"system": LOINC, "code": "34133-9"});
    let discharge = json!({"system": LOINC, "code": "18842-5"});
    let cases = [
        (
            "patient=ana",
            json!([{"name": "patient", "valueId": "ana"}]),
            vec!["d1", "d2", "d3"],
        ),
        (
            "patient=ana&start=2020-01-01&end=2020-12-31T23:59:59Z",
            json!([
                {"name": "patient", "valueId": "ana"},
                {"name": "start", "valueDateTime": "2020-01-01"},
                {"name": "end", "valueDateTime": "2020-12-31T23:59:59Z"}
            ]),
            vec!["d1"],
        ),
        (
            "patient=ana&start=2021-01-01",
            json!([
                {"name": "start", "valueDateTime": "2021-01-01"},
                {"name": "patient", "valueId": "ana"}
            ]),
            vec!["d2"],
        ),
        (
            "patient=ana&type=http://loinc.org|34133-9",
            json!([
                {"name": "patient", "valueId": "ana"},
                {"name": "type", "valueCoding": ccd}
            ]),
            vec!["d1", "d3"],
        ),
        (
            "patient=ana&type=http://loinc.org|34133-9&type=http://loinc.org|18842-5",
            json!([
                {"name": "patient", "valueId": "ana"},
                {"name": "type", "valueCoding": ccd},
                {"name": "type", "valueCoding": discharge}
            ]),
            vec!["d1", "d2", "d3"],
        ),
        (
            "patient=ana&type=18842-5&on-demand=true&profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference",
            json!([
                {"name": "patient", "valueId": "ana"},
                {"name": "type", "valueCoding": {"code": "18842-5"}},
                {"name": "on-demand", "valueBoolean": true},
                {"name": "profile", "valueCanonical": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference"}
            ]),
            vec!["d2"],
        ),
        (
            "patient=bo&end=2019-12-31",
            json!([
                {"name": "patient", "valueId": "bo"},
                {"name": "end", "valueDateTime": "2019-12-31"}
            ]),
            vec![],
        ),
        (
            "patient=nobody",
            json!([{"name": "patient", "valueId": "nobody"}]),
            vec![],
        ),
    ];
    for (query, body, expected) in cases {
        let get = expect_json(
            server
                .get(&format!("DocumentReference/$docref?{query}"))
                .await,
            200,
        )
        .await;
        let post = expect_json(
            server
                .post("DocumentReference/$docref", &parameters(body))
                .await,
            200,
        )
        .await;
        assert_eq!(matches(&get), expected, "GET {query}");
        assert_eq!(matches(&post), expected, "POST for {query}");
    }
}

async fn post_pages_with_get_links(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let body = parameters(json!([{"name": "patient", "valueId": "ana"}]));
    let mut bundle = expect_json(
        server
            .post("DocumentReference/$docref?_count=2", &body)
            .await,
        200,
    )
    .await;
    let mut walked = matches(&bundle);
    while let Some(next) = next_link(&bundle) {
        assert!(
            next.contains("DocumentReference/$docref?patient=ana"),
            "{next}"
        );
        bundle = expect_json(server.client.get(&next).send().await.unwrap(), 200).await;
        walked.extend(matches(&bundle));
        assert!(walked.len() < 10);
    }
    walked.sort();
    assert_eq!(walked, ["d1", "d2", "d3"]);
}

async fn malformed_inputs_are_refused(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let patient = json!({"name": "patient", "valueId": "ana"});
    let cases = [
        (json!({"resourceType": "Patient"}), "resourceType"),
        (
            json!({"resourceType": "Parameters", "parameter": {}}),
            "parameter",
        ),
        (
            json!({"resourceType": "Parameters", "parameter": [1]}),
            "parameter",
        ),
        (parameters(json!([{"valueId": "ana"}])), "parameter"),
        (parameters(json!([])), "patient"),
        (
            parameters(json!([{"name": "patient", "valueString": "ana"}])),
            "patient",
        ),
        (
            parameters(json!([{"name": "patient", "valueId": 7}])),
            "patient",
        ),
        (
            parameters(json!([{"name": "patient", "valueId": "a b"}])),
            "patient",
        ),
        (parameters(json!([{"name": "patient"}])), "patient"),
        (
            parameters(json!([{"name": "patient", "valueId": "ana", "valueString": "x"}])),
            "patient",
        ),
        (parameters(json!([patient, patient])), "patient"),
        (
            parameters(json!([patient, {"name": "start", "valueDate": "2020-01-01"}])),
            "start",
        ),
        (
            parameters(json!([patient, {"name": "end", "valueDateTime": "2020-13-01"}])),
            "end",
        ),
        (
            parameters(json!([patient, {"name": "type", "valueCode": "34133-9"}])),
            "type",
        ),
        (
            parameters(json!([patient, {"name": "type", "valueCoding": {}}])),
            "type",
        ),
        (
            parameters(json!([patient, {"name": "type", "valueCoding": {"code": 1}}])),
            "type",
        ),
        (
            parameters(json!([patient, {"name": "on-demand", "valueString": "yes"}])),
            "on-demand",
        ),
        (
            parameters(json!([patient, {"name": "on-demand", "valueBoolean": "true"}])),
            "on-demand",
        ),
        (
            parameters(json!([patient, {"name": "profile", "valueBoolean": true}])),
            "profile",
        ),
        (
            parameters(json!([patient, {"name": "color", "valueString": "red"}])),
            "color",
        ),
    ];
    for (body, name) in cases {
        let outcome =
            expect_outcome(server.post("DocumentReference/$docref", &body).await, 400).await;
        assert_eq!(outcome["issue"][0]["expression"][0], name, "{body}");
    }
    let outcome = expect_outcome(
        server
            .post(
                "DocumentReference/$docref?patient=ana",
                &parameters(json!([patient])),
            )
            .await,
        400,
    )
    .await;
    assert_eq!(outcome["issue"][0]["expression"][0], "patient");
    expect_outcome(
        server
            .post_raw("DocumentReference/$docref", "{\"resourceType\": ")
            .await,
        400,
    )
    .await;
    for (query, name) in [
        ("start=2020-01-01", "patient"),
        ("patient=ana&start=yesterday", "start"),
        ("patient=ana&end=2020-02-30", "end"),
        ("patient=Patient/ana", "patient"),
        ("patient=ana&patient=bo", "patient"),
        ("patient=ana&on-demand=maybe", "on-demand"),
        ("patient=ana&color=red", "color"),
    ] {
        let outcome = expect_outcome(
            server
                .get(&format!("DocumentReference/$docref?{query}"))
                .await,
            400,
        )
        .await;
        assert_eq!(outcome["issue"][0]["expression"][0], name, "{query}");
    }
    let capability = expect_json(server.get("metadata").await, 200).await;
    let document_reference = capability["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resource| resource["type"] == "DocumentReference")
        .unwrap();
    let operation = &document_reference["operation"][0];
    assert_eq!(operation["name"], "docref");
    assert_eq!(
        operation["definition"],
        "http://hl7.org/fhir/us/core/OperationDefinition/docref"
    );
}

/// US Core: "the most recent or current document is in scope if neither a start date nor an
/// end date is provided": the current documents, or the most recent one when none is.
async fn undated_request_answers_current_or_most_recent(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    seed(&server).await;
    let response = server
        .put(
            "Patient/cy",
            &json!({"resourceType": "Patient", "id": "cy"}),
        )
        .await;
    assert!(response.status().is_success());
    for (id, patient, status, code, date) in [
        ("d5", "ana", "superseded", "34133-9", "2022-01-01T00:00:00Z"),
        ("e1", "cy", "superseded", "18842-5", "2019-01-01T00:00:00Z"),
        ("e2", "cy", "superseded", "34133-9", "2021-06-01T00:00:00Z"),
        (
            "e3",
            "cy",
            "entered-in-error",
            "34133-9",
            "2020-03-01T00:00:00Z",
        ),
    ] {
        let document = json!({
            "resourceType": "DocumentReference", "id": id, "status": status,
            "type": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "date": date,
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}],
            "context": {"period": {"start": "2020-01-01", "end": "2020-01-02"}},
        });
        let response = server
            .put(&format!("DocumentReference/{id}"), &document)
            .await;
        assert!(response.status().is_success());
    }
    let get = |query: &str| {
        let url = server.url(&format!("DocumentReference/$docref?{query}"));
        let client = server.client.clone();
        async move { expect_json(client.get(url).send().await.unwrap(), 200).await }
    };
    // ana has current documents: those, not the superseded one.
    assert_eq!(matches(&get("patient=ana").await), ["d1", "d2", "d3"]);
    // A date range puts every document of the range in scope, superseded ones too.
    assert_eq!(
        matches(&get("patient=ana&start=2019-12-01&end=2020-12-31").await),
        ["d1", "d5"]
    );
    // cy has none current: the most recent one alone, without a next page.
    let latest = get("patient=cy&_count=1").await;
    assert_eq!(matches(&latest), ["e2"]);
    assert_eq!(latest["total"], 1);
    assert!(next_link(&latest).is_none(), "{latest}");
    // Of the types asked for.
    assert_eq!(
        matches(&get(&format!("patient=cy&type={LOINC}|18842-5")).await),
        ["e1"]
    );
    // POST answers the same.
    let body = parameters(json!([{"name": "patient", "valueId": "cy"}]));
    let posted = expect_json(server.post("DocumentReference/$docref", &body).await, 200).await;
    assert_eq!(matches(&posted), ["e2"]);
    // A patient without documents still gets an empty searchset.
    assert!(matches(&get("patient=bo&type=nothing").await).is_empty());
}
