//! FHIR PATCH: JSON Patch and FHIRPath Patch on `[type]/[id]` and conditionally, with
//! `If-Match`, in transactions and batches; failures write nothing; scopes are checked as
//! for an update, before the target is looked up.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    json_patch_changes_the_resource_as_a_new_version,
    fhirpath_patch_runs_every_operation_type,
    conditional_patch_needs_exactly_one_match,
    if_match_guards_a_patch,
    failing_patches_write_nothing,
    patch_entries_in_transactions_and_batches,
    read_only_token_is_refused_before_the_target_is_looked_up,
    capability_statement_lists_patch,
);

const JSON_PATCH: &str = "application/json-patch+json";
const FHIR_JSON: &str = "application/fhir+json";

async fn send_patch(
    server: &Server,
    path: &str,
    content_type: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = server
        .client
        .patch(server.url(path))
        .header("content-type", content_type)
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("PATCH")
}

/// A FHIRPath Patch `Parameters` resource of `operations`, each a list of parts.
fn fhirpath_patch(operations: &[Value]) -> Value {
    json!({
        "resourceType": "Parameters",
        "parameter": operations
            .iter()
            .map(|parts| json!({"name": "operation", "part": parts}))
            .collect::<Vec<_>>(),
    })
}

async fn created_patient(server: &Server, family: &str) -> (String, Value) {
    let created = server.create(&patient(family)).await;
    (created["id"].as_str().unwrap().to_string(), created)
}

async fn current(server: &Server, path: &str) -> Value {
    expect_json(server.get(path).await, 200).await
}

async fn json_patch_changes_the_resource_as_a_new_version(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let (id, _) = created_patient(&server, "Before").await;
    let path = format!("Patient/{id}");
    let document = json!([
        {"op": "test", "path": "/name/0/family", "value": "Before"},
        {"op": "replace", "path": "/name/0/family", "value": "After"},
        {"op": "add", "path": "/name/0/given/-", "value": "Second"},
        {"op": "add", "path": "/active", "value": true},
        {"op": "remove", "path": "/birthDate"},
    ]);
    let response = send_patch(&server, &path, JSON_PATCH, &document, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    assert_eq!(
        response.headers()["location"],
        format!("{}/Patient/{id}/_history/2", server.fhir).as_str()
    );
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["meta"]["versionId"], "2");
    assert_eq!(patched["name"][0]["family"], "After");
    assert_eq!(patched["name"][0]["given"], json!(["Test", "Second"]));
    assert_eq!(patched["active"], true);
    assert!(patched.get("birthDate").is_none(), "{patched}");
    assert_eq!(current(&server, &path).await, patched);

    // The first version is kept, and history records the PATCH.
    let v1 = current(&server, &format!("{path}/_history/1")).await;
    assert_eq!(v1["name"][0]["family"], "Before");
    assert_eq!(v1["birthDate"], "1970-01-01");
    let history = current(&server, &format!("{path}/_history")).await;
    assert_eq!(history["entry"].as_array().unwrap().len(), 2, "{history}");
    assert_eq!(history["entry"][0]["request"]["method"], "PATCH");
    assert_eq!(
        history["entry"][0]["resource"]["name"][0]["family"],
        "After"
    );

    // Index rows follow the new version.
    let found = current(&server, "Patient?family=After").await;
    assert_eq!(found["entry"][0]["resource"]["id"], id.as_str(), "{found}");
    let gone = current(&server, "Patient?family=Before").await;
    assert_eq!(gone["total"], 0, "{gone}");

    // Prefer: return=minimal answers without a body, as an update does.
    let response = send_patch(
        &server,
        &path,
        JSON_PATCH,
        &json!([{"op": "replace", "path": "/gender", "value": "male"}]),
        &[("prefer", "return=minimal")],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"3\"");
    assert!(response.text().await.unwrap().is_empty());
    assert_eq!(current(&server, &path).await["gender"], "male");
}

async fn fhirpath_patch_runs_every_operation_type(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut body = patient("Path");
    body["name"] = json!([
        {"use": "usual", "family": "Path", "given": ["Usual"]},
        {"use": "official", "family": "Path", "given": ["First", "Middle"]},
    ]);
    body["telecom"] = json!([
        {"system": "phone", "value": "1"},
        {"system": "email", "value": "a@example.org"},
    ]);
    let created = server.create(&body).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("Patient/{id}");
    let document = fhirpath_patch(&[
        // add: a repeating element gets an array, a single one a value.
        json!([{"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Patient"},
               {"name": "name", "valueString": "address"},
               {"name": "value", "valueAddress": {"city": "Springfield"}}]),
        json!([{"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Patient"},
               {"name": "name", "valueString": "deceased"},
               {"name": "value", "valueBoolean": false}]),
        json!([{"name": "type", "valueCode": "add"},
               {"name": "path", "valueString": "Patient.name.where(use='official')"},
               {"name": "name", "valueString": "given"},
               {"name": "value", "valueString": "Last"}]),
        // insert into a list, and into a list that is not there yet.
        json!([{"name": "type", "valueCode": "insert"},
               {"name": "path", "valueString": "Patient.name.where(use='official').given"},
               {"name": "index", "valueInteger": 0},
               {"name": "value", "valueString": "Zeroth"}]),
        json!([{"name": "type", "valueCode": "insert"},
               {"name": "path", "valueString": "Patient.communication"},
               {"name": "index", "valueInteger": 0},
               {"name": "value", "part": [
                   {"name": "language", "valueCodeableConcept": {"text": "English"}},
                   {"name": "preferred", "valueBoolean": true}]}]),
        // replace, delete (a missing element is no error), move.
        json!([{"name": "type", "valueCode": "replace"},
               {"name": "path", "valueString": "Patient.telecom.where(system='email').value"},
               {"name": "value", "valueString": "b@example.org"}]),
        json!([{"name": "type", "valueCode": "delete"},
               {"name": "path", "valueString": "Patient.name[0]"}]),
        json!([{"name": "type", "valueCode": "delete"},
               {"name": "path", "valueString": "Patient.maritalStatus"}]),
        json!([{"name": "type", "valueCode": "move"},
               {"name": "path", "valueString": "Patient.telecom"},
               {"name": "source", "valueInteger": 1},
               {"name": "destination", "valueInteger": 0}]),
    ]);
    let patched = expect_json(
        send_patch(&server, &path, FHIR_JSON, &document, &[]).await,
        200,
    )
    .await;
    assert_eq!(patched["meta"]["versionId"], "2", "{patched}");
    assert_eq!(patched["address"], json!([{"city": "Springfield"}]));
    assert_eq!(patched["deceasedBoolean"], false);
    assert_eq!(
        patched["name"],
        json!([{"use": "official", "family": "Path", "given": ["Zeroth", "First", "Middle", "Last"]}])
    );
    assert_eq!(
        patched["communication"],
        json!([{"language": {"text": "English"}, "preferred": true}])
    );
    assert_eq!(
        patched["telecom"],
        json!([{"system": "email", "value": "b@example.org"}, {"system": "phone", "value": "1"}])
    );
    assert_eq!(current(&server, &path).await, patched);

    // Deleting the last item of a list removes the list.
    let document = fhirpath_patch(&[json!([
        {"name": "type", "valueCode": "delete"}, {"name": "path", "valueString": "Patient.address[0]"}])]);
    let patched = expect_json(
        send_patch(&server, &path, FHIR_JSON, &document, &[]).await,
        200,
    )
    .await;
    assert!(patched.get("address").is_none(), "{patched}");
    assert_eq!(patched["meta"]["versionId"], "3");
}

async fn conditional_patch_needs_exactly_one_match(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let (id, _) = created_patient(&server, "Cond").await;
    let document = json!([{"op": "replace", "path": "/gender", "value": "other"}]);
    let response = send_patch(
        &server,
        "Patient?identifier=http://example.org/mrn|Cond",
        JSON_PATCH,
        &document,
        &[],
    )
    .await;
    let patched = expect_json(response, 200).await;
    assert_eq!(patched["id"], id.as_str());
    assert_eq!(patched["gender"], "other");

    let none = send_patch(
        &server,
        "Patient?identifier=nobody",
        JSON_PATCH,
        &document,
        &[],
    )
    .await;
    expect_outcome(none, 404).await;
    server.create(&patient("Cond")).await;
    let several = send_patch(
        &server,
        "Patient?identifier=http://example.org/mrn|Cond",
        JSON_PATCH,
        &document,
        &[],
    )
    .await;
    expect_outcome(several, 412).await;
    let no_criteria = send_patch(&server, "Patient", JSON_PATCH, &document, &[]).await;
    expect_outcome(no_criteria, 400).await;
    assert_eq!(
        current(&server, &format!("Patient/{id}")).await["meta"]["versionId"],
        "2"
    );
}

async fn if_match_guards_a_patch(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let (id, _) = created_patient(&server, "Versioned").await;
    let path = format!("Patient/{id}");
    let document = json!([{"op": "replace", "path": "/name/0/family", "value": "Changed"}]);
    let patch_if = async |tag: &str| {
        send_patch(&server, &path, JSON_PATCH, &document, &[("if-match", tag)]).await
    };
    let stale = patch_if("W/\"2\"").await;
    let outcome = expect_outcome(stale, 412).await;
    assert!(outcome.to_string().contains("version"), "{outcome}");
    assert_eq!(current(&server, &path).await["meta"]["versionId"], "1");

    let fresh = patch_if("W/\"1\"").await;
    let patched = expect_json(fresh, 200).await;
    assert_eq!(patched["meta"]["versionId"], "2");
    assert_eq!(patched["name"][0]["family"], "Changed");
    // The version it matched is gone now.
    let again = patch_if("W/\"1\"").await;
    expect_outcome(again, 412).await;
    let bad_tag = patch_if("nope").await;
    expect_outcome(bad_tag, 400).await;
}

async fn failing_patches_write_nothing(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let (id, created) = created_patient(&server, "Stable").await;
    let path = format!("Patient/{id}");
    let unprocessable: Vec<(&str, &str, Value)> = vec![
        (
            "a failing test",
            JSON_PATCH,
            json!([{"op": "test", "path": "/name/0/family", "value": "Other"},
                   {"op": "replace", "path": "/gender", "value": "male"}]),
        ),
        (
            "a path the resource lacks",
            JSON_PATCH,
            json!([{"op": "replace", "path": "/maritalStatus/text", "value": "x"}]),
        ),
        (
            "a bad date",
            JSON_PATCH,
            json!([{"op": "replace", "path": "/birthDate", "value": "1970-02-30"}]),
        ),
        (
            "an unknown element",
            JSON_PATCH,
            json!([{"op": "add", "path": "/colour", "value": "blue"}]),
        ),
        (
            "a removed required element",
            JSON_PATCH,
            json!([{"op": "remove", "path": "/identifier/0/system"},
                   {"op": "remove", "path": "/identifier/0/value"}]),
        ),
        (
            "a changed id",
            JSON_PATCH,
            json!([{"op": "replace", "path": "/id", "value": "other"}]),
        ),
        (
            "a FHIRPath path that selects nothing",
            FHIR_JSON,
            fhirpath_patch(&[json!([{"name": "type", "valueCode": "replace"},
                {"name": "path", "valueString": "Patient.maritalStatus.text"},
                {"name": "value", "valueString": "x"}])]),
        ),
        (
            "a FHIRPath path that selects several elements",
            FHIR_JSON,
            fhirpath_patch(&[json!([{"name": "type", "valueCode": "replace"},
                {"name": "path", "valueString": "Patient.name.given | Patient.name.family"},
                {"name": "value", "valueString": "x"}])]),
        ),
        (
            "a FHIRPath add of a non-element",
            FHIR_JSON,
            fhirpath_patch(&[json!([{"name": "type", "valueCode": "add"},
                {"name": "path", "valueString": "Patient"}, {"name": "name", "valueString": "colour"},
                {"name": "value", "valueString": "blue"}])]),
        ),
        (
            "a FHIRPath value of the wrong type",
            FHIR_JSON,
            fhirpath_patch(&[json!([{"name": "type", "valueCode": "replace"},
                {"name": "path", "valueString": "Patient.gender"},
                {"name": "value", "valueCode": "neither"}])]),
        ),
    ];
    for (what, content_type, document) in &unprocessable {
        let response = send_patch(&server, &path, content_type, document, &[]).await;
        let outcome = expect_outcome(response, 422).await;
        assert_eq!(
            outcome["issue"][0]["severity"], "error",
            "{what}: {outcome}"
        );
    }
    let malformed: Vec<(&str, &str, Value)> = vec![
        (
            "not an array",
            JSON_PATCH,
            json!({"op": "remove", "path": "/gender"}),
        ),
        (
            "an unknown op",
            JSON_PATCH,
            json!([{"op": "frobnicate", "path": "/gender"}]),
        ),
        (
            "a pointer without a slash",
            JSON_PATCH,
            json!([{"op": "remove", "path": "gender"}]),
        ),
        ("not Parameters", FHIR_JSON, patient("Whole")),
        (
            "an unknown FHIRPath operation",
            FHIR_JSON,
            fhirpath_patch(&[json!([{"name": "type", "valueCode": "upsert"},
                {"name": "path", "valueString": "Patient.gender"}])]),
        ),
        (
            "unsupported FHIRPath",
            FHIR_JSON,
            fhirpath_patch(&[json!([{"name": "type", "valueCode": "delete"},
                {"name": "path", "valueString": "Patient.name.first()"}])]),
        ),
        (
            "insert without an index",
            FHIR_JSON,
            fhirpath_patch(&[json!([{"name": "type", "valueCode": "insert"},
                {"name": "path", "valueString": "Patient.name"},
                {"name": "value", "valueHumanName": {"family": "X"}}])]),
        ),
    ];
    for (what, content_type, document) in &malformed {
        let response = send_patch(&server, &path, content_type, document, &[]).await;
        let outcome = expect_outcome(response, 400).await;
        assert!(
            outcome["issue"][0]["diagnostics"].is_string(),
            "{what}: {outcome}"
        );
    }
    for content_type in [
        "application/merge-patch+json",
        "text/plain",
        "application/fhir+xml",
    ] {
        let response = send_patch(&server, &path, content_type, &json!([]), &[]).await;
        expect_outcome(response, 415).await;
    }
    assert_eq!(
        current(&server, &path).await,
        created,
        "nothing was written"
    );
    let history = current(&server, &format!("{path}/_history")).await;
    assert_eq!(history["entry"].as_array().unwrap().len(), 1, "{history}");

    let document = json!([{"op": "replace", "path": "/gender", "value": "male"}]);
    let unknown = send_patch(&server, "Patient/nobody", JSON_PATCH, &document, &[]).await;
    expect_outcome(unknown, 404).await;
    assert_eq!(server.delete(&path).await.status(), 204);
    let deleted = send_patch(&server, &path, JSON_PATCH, &document, &[]).await;
    expect_outcome(deleted, 410).await;
    let unknown_type = send_patch(&server, "Nonsense/1", JSON_PATCH, &document, &[]).await;
    expect_outcome(unknown_type, 404).await;
}

async fn patch_entries_in_transactions_and_batches(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let observation = server
        .create(
            &json!({"resourceType": "Observation", "status": "preliminary",
                         "code": {"text": "weight"}}),
        )
        .await;
    let observation_id = observation["id"].as_str().unwrap();
    let (patient_id, _) = created_patient(&server, "Batch").await;
    let new_patient = "urn:uuid:3b9a6c1e-0d7f-4a55-9c1b-0e6c2f6d7a10";
    let json_patch = json!([{"op": "replace", "path": "/status", "value": "final"}]);
    let binary = json!({
        "resourceType": "Binary",
        "contentType": JSON_PATCH,
        "data": base64_encode(json_patch.to_string().as_bytes()),
    });
    let subject = fhirpath_patch(&[json!([
        {"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Observation"},
        {"name": "name", "valueString": "subject"},
        {"name": "value", "valueReference": {"reference": new_patient}}])]);
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": new_patient, "resource": patient("Created"),
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": binary, "request": {"method": "PATCH",
                "url": format!("Observation/{observation_id}"), "ifMatch": "W/\"1\""}},
            {"resource": subject, "request": {"method": "PATCH",
                "url": format!("Observation?_id={observation_id}")}},
        ],
    });
    // One resource may not be changed twice in a transaction.
    let rejected = server.post("", &bundle).await;
    expect_outcome(rejected, 400).await;
    let mut bundle = bundle;
    bundle["entry"][2]["request"]["url"] = json!(format!("Observation/{observation_id}"));
    bundle["entry"].as_array_mut().unwrap().remove(1);
    bundle["entry"][1]["resource"]["parameter"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Observation.status"},
            {"name": "value", "valueCode": "final"}]}));
    let response = expect_json(server.post("", &bundle).await, 200).await;
    assert_eq!(response["type"], "transaction-response");
    assert_eq!(
        response["entry"][1]["response"]["status"], "200 OK",
        "{response}"
    );
    let created_id = response["entry"][0]["resource"]["id"].as_str().unwrap();
    let patched = current(&server, &format!("Observation/{observation_id}")).await;
    assert_eq!(patched["status"], "final");
    assert_eq!(patched["meta"]["versionId"], "2");
    assert_eq!(
        patched["subject"]["reference"],
        format!("Patient/{created_id}").as_str(),
        "the urn:uuid in the patch points at the created Patient"
    );

    // A failing patch rolls the whole transaction back.
    let failing = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"resource": patient("Rolled back"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": binary, "request": {"method": "PATCH",
                "url": format!("Observation/{observation_id}"), "ifMatch": "W/\"1\""}},
        ],
    });
    let outcome = expect_outcome(server.post("", &failing).await, 412).await;
    assert!(outcome.to_string().contains("Bundle.entry[1]"), "{outcome}");
    let rolled_back = current(&server, "Patient?family=Rolled").await;
    assert_eq!(rolled_back["total"], 0, "{rolled_back}");

    // A batch: each patch on its own.
    let batch = json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            {"resource": {"resourceType": "Binary", "contentType": JSON_PATCH,
                "data": base64_encode(br#"[{"op":"replace","path":"/gender","value":"male"}]"#)},
             "request": {"method": "PATCH", "url": format!("Patient/{patient_id}")}},
            {"resource": {"resourceType": "Binary", "contentType": JSON_PATCH,
                "data": base64_encode(br#"[{"op":"test","path":"/status","value":"preliminary"}]"#)},
             "request": {"method": "PATCH", "url": format!("Observation/{observation_id}")}},
            {"resource": {"resourceType": "Binary", "contentType": "text/plain", "data": "eA=="},
             "request": {"method": "PATCH", "url": format!("Patient/{patient_id}")}},
        ],
    });
    let response = expect_json(server.post("", &batch).await, 200).await;
    assert_eq!(response["type"], "batch-response");
    assert_eq!(
        response["entry"][0]["response"]["status"], "200 OK",
        "{response}"
    );
    assert_eq!(response["entry"][0]["resource"]["gender"], "male");
    assert!(
        response["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("422"),
        "{response}"
    );
    assert!(
        response["entry"][2]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("415"),
        "{response}"
    );
    assert_eq!(
        current(&server, &format!("Patient/{patient_id}")).await["gender"],
        "male"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn read_only_token_is_refused_before_the_target_is_looked_up(backend: Backend) {
    let Some(server) = Server::start_secured(backend, &[]).await else {
        return;
    };
    server.import(&[
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "One"}]}),
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
               "code": {"text": "one"}, "subject": {"reference": "Patient/p1"}}),
    ]);
    server.add_users(&[("alice", "Patient/p1")]);
    let client = server.kiln(&[
        "client",
        "add",
        "--name",
        "Patch app",
        "--type",
        "public",
        "--redirect-uri",
        "https://oauth.pstmn.io/v1/callback",
        "--scope",
        "launch/patient openid fhirUser patient/*.rs patient/*.cruds",
    ]);
    let client_id = client["client_id"].as_str().unwrap();
    let token = |scope: &str| {
        server.kiln(&[
            "token",
            "create",
            "--client-id",
            client_id,
            "--scope",
            scope,
            "--patient",
            "p1",
            "--user",
            "alice",
        ])["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let reader = token("launch/patient patient/*.rs");
    let writer = token("launch/patient patient/Observation.u");
    let document = json!([{"op": "replace", "path": "/status", "value": "amended"}]);
    let patch_as = |token: String, path: &'static str| {
        server
            .client
            .patch(server.url(path))
            .bearer_auth(token)
            .header("content-type", JSON_PATCH)
            .body(document.to_string())
            .send()
    };
    for path in [
        "Observation/o1",
        "Observation/nope",
        "Observation?status=final",
    ] {
        let response = patch_as(reader.clone(), path).await.unwrap();
        let outcome = expect_outcome(response, 403).await;
        assert!(!outcome.to_string().contains("nope"), "{outcome}");
    }
    let response = patch_as(writer.clone(), "Observation/o1").await.unwrap();
    let patched = expect_json(response, 200).await;
    assert_eq!(patched["status"], "amended");
    let missing = patch_as(writer, "Observation/nope").await.unwrap();
    expect_outcome(missing, 404).await;
}

async fn capability_statement_lists_patch(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let capability = current(&server, "metadata").await;
    assert_eq!(
        capability["patchFormat"],
        json!([JSON_PATCH, FHIR_JSON]),
        "{}",
        capability["patchFormat"]
    );
    let resources = capability["rest"][0]["resource"].as_array().unwrap();
    for resource in resources {
        let interactions: Vec<&str> = resource["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|interaction| interaction["code"].as_str())
            .collect();
        // The audit log is append-only: AuditEvent is read and searched, never patched.
        let patchable = resource["type"] != "AuditEvent";
        assert_eq!(
            (
                interactions.contains(&"update"),
                interactions.contains(&"patch")
            ),
            (patchable, patchable),
            "{}: {interactions:?}",
            resource["type"]
        );
    }
}
