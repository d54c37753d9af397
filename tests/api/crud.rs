//! read, vread, create, update (and create-on-update), delete; versions and conditional reads.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    create_assigns_id_version_and_location,
    read_returns_stored_resource_with_version_headers,
    update_creates_new_versions_and_vread_returns_each,
    update_with_client_id_creates,
    delete_then_read_is_gone_and_history_keeps_it,
    if_match_guards_update_and_delete,
    conditional_read_with_if_none_match_and_if_modified_since,
    prefer_header_controls_the_response_body,
    meta_profile_is_kept_and_server_meta_overrides_client,
    conditional_create_and_update_by_identifier,
    summary_and_elements_return_marked_subsets,
);

async fn create_assigns_id_version_and_location(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut body = patient("Create");
    body["id"] = json!("client-chosen");
    let response = server.post("Patient", &body).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_ne!(id, "client-chosen", "the server assigns the id on create");
    assert_eq!(created["meta"]["versionId"], "1");
    assert!(
        created["meta"]["lastUpdated"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(etag, "W/\"1\"");
    assert_eq!(location, format!("{}/Patient/{id}/_history/1", server.fhir));
    assert_eq!(created["name"][0]["family"], "Create");
    // Key order is kept: resourceType, id, meta, then the client's order.
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "resourceType",
            "id",
            "meta",
            "identifier",
            "name",
            "gender",
            "birthDate"
        ]
    );
}

async fn read_returns_stored_resource_with_version_headers(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("Read")).await;
    let id = created["id"].as_str().unwrap();
    let response = server.get(&format!("Patient/{id}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert!(response.headers().contains_key("last-modified"));
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let read: Value = response.json().await.unwrap();
    assert_eq!(read, created);
    let missing = server.get("Patient/does-not-exist").await;
    let outcome = expect_outcome(missing, 404).await;
    assert_eq!(outcome["issue"][0]["code"], "not-found");
}

async fn update_creates_new_versions_and_vread_returns_each(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("V1")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let mut body = created.clone();
    body["name"][0]["family"] = json!("V2");
    let response = server.put(&format!("Patient/{id}"), &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["meta"]["versionId"], "2");
    assert_eq!(updated["name"][0]["family"], "V2");
    assert!(
        updated["meta"]["lastUpdated"].as_str().unwrap()
            > created["meta"]["lastUpdated"].as_str().unwrap()
    );

    let v1 = expect_json(server.get(&format!("Patient/{id}/_history/1")).await, 200).await;
    assert_eq!(v1["name"][0]["family"], "V1");
    assert_eq!(v1["meta"]["versionId"], "1");
    let v2 = expect_json(server.get(&format!("Patient/{id}/_history/2")).await, 200).await;
    assert_eq!(v2["name"][0]["family"], "V2");
    expect_outcome(server.get(&format!("Patient/{id}/_history/3")).await, 404).await;
    expect_outcome(server.get(&format!("Patient/{id}/_history/x")).await, 400).await;
}

async fn update_with_client_id_creates(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut body = patient("Upsert");
    body["id"] = json!("my-id-1");
    let response = server.put("Patient/my-id-1", &body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["location"],
        format!("{}/Patient/my-id-1/_history/1", server.fhir).as_str()
    );
    let again = server.put("Patient/my-id-1", &body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["etag"], "W/\"2\"");
}

async fn delete_then_read_is_gone_and_history_keeps_it(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("Gone")).await;
    let id = created["id"].as_str().unwrap();
    let response = server.delete(&format!("Patient/{id}")).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let outcome = expect_outcome(server.get(&format!("Patient/{id}")).await, 410).await;
    assert_eq!(outcome["issue"][0]["code"], "deleted");
    // Deleting again changes nothing.
    assert_eq!(server.delete(&format!("Patient/{id}")).await.status(), 204);
    // Deleting something that never existed is fine too.
    assert_eq!(server.delete("Patient/never-was").await.status(), 204);

    let history = expect_json(server.get(&format!("Patient/{id}/_history")).await, 200).await;
    let entries = history["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["request"]["method"], "DELETE");
    assert!(entries[0].get("resource").is_none());
    assert_eq!(entries[1]["resource"]["name"][0]["family"], "Gone");
    // The old version can still be read.
    expect_json(server.get(&format!("Patient/{id}/_history/1")).await, 200).await;
    expect_outcome(server.get(&format!("Patient/{id}/_history/2")).await, 410).await;

    // Updating a deleted resource brings it back as version 3.
    let mut body = created.clone();
    body["gender"] = json!("male");
    let response = server.put(&format!("Patient/{id}"), &body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "W/\"3\"");
}

async fn if_match_guards_update_and_delete(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("Match")).await;
    let id = created["id"].as_str().unwrap();
    let url = format!("Patient/{id}");
    let stale = server
        .send_with(
            reqwest::Method::PUT,
            &url,
            &created,
            &[("if-match", "W/\"7\"")],
        )
        .await;
    let outcome = expect_outcome(stale, 412).await;
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("version")
    );
    let fresh = server
        .send_with(
            reqwest::Method::PUT,
            &url,
            &created,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(fresh.status(), 200);
    let stale_delete = server.delete_if_match(&url, "W/\"1\"").await;
    expect_outcome(stale_delete, 412).await;
    let bad_tag = server.delete_if_match(&url, "yesterday").await;
    expect_outcome(bad_tag, 400).await;
    let delete = server.delete_if_match(&url, "W/\"2\"").await;
    assert_eq!(delete.status(), 204);
}

async fn conditional_read_with_if_none_match_and_if_modified_since(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("Cache")).await;
    let url = server.url(&format!("Patient/{}", created["id"].as_str().unwrap()));
    let same = server
        .client
        .get(&url)
        .header("if-none-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 304);
    assert_eq!(same.headers()["etag"], "W/\"1\"");
    let other = server
        .client
        .get(&url)
        .header("if-none-match", "W/\"9\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    let last_modified = server
        .get(&format!("Patient/{}", created["id"].as_str().unwrap()))
        .await
        .headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    let unchanged = server
        .client
        .get(&url)
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    let long_ago = server
        .client
        .get(&url)
        .header("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(long_ago.status(), 200);
}

async fn prefer_header_controls_the_response_body(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let minimal = server
        .send_with(
            reqwest::Method::POST,
            "Patient",
            &patient("Minimal"),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!(minimal.status(), 201);
    assert!(minimal.headers().contains_key("location"));
    assert!(minimal.text().await.unwrap().is_empty());
    let outcome = server
        .send_with(
            reqwest::Method::POST,
            "Patient",
            &patient("Outcome"),
            &[("prefer", "return=OperationOutcome")],
        )
        .await;
    let body = expect_json(outcome, 201).await;
    assert_eq!(body["resourceType"], "OperationOutcome");
    let representation = server
        .send_with(
            reqwest::Method::POST,
            "Patient",
            &patient("Full"),
            &[("prefer", "return=representation")],
        )
        .await;
    let body = expect_json(representation, 201).await;
    assert_eq!(body["resourceType"], "Patient");
}

async fn meta_profile_is_kept_and_server_meta_overrides_client(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut body = patient("Meta");
    body["meta"] = json!({
        "versionId": "42",
        "lastUpdated": "2001-01-01T00:00:00Z",
        "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]
    });
    let created = server.create(&body).await;
    assert_eq!(created["meta"]["versionId"], "1");
    assert_ne!(created["meta"]["lastUpdated"], "2001-01-01T00:00:00Z");
    assert_eq!(
        created["meta"]["profile"][0],
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
    );
}

async fn conditional_create_and_update_by_identifier(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let body = patient("Cond");
    let first = server
        .send_with(
            reqwest::Method::POST,
            "Patient",
            &body,
            &[("if-none-exist", "identifier=http://example.org/mrn|Cond")],
        )
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second = server
        .send_with(
            reqwest::Method::POST,
            "Patient",
            &body,
            &[("if-none-exist", "identifier=http://example.org/mrn|Cond")],
        )
        .await;
    assert_eq!(
        second.status(),
        200,
        "an existing match is returned, not duplicated"
    );
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);

    let mut changed = body.clone();
    changed["gender"] = json!("male");
    let response = server
        .put("Patient?identifier=http://example.org/mrn|Cond", &changed)
        .await;
    let updated = expect_json(response, 200).await;
    assert_eq!(updated["id"], first["id"]);
    assert_eq!(updated["meta"]["versionId"], "2");

    let response = server
        .put(
            "Patient?identifier=http://example.org/mrn|Fresh",
            &patient("Fresh"),
        )
        .await;
    assert_eq!(response.status(), 201);

    // Any search parameters may form the condition; several matches are a 412.
    let by_name = server
        .send_with(
            reqwest::Method::POST,
            "Patient",
            &body,
            &[("if-none-exist", "family=cond&birthdate=1970-01-01")],
        )
        .await;
    assert_eq!(by_name.status(), 200);
    let ambiguous = server
        .put("Patient?birthdate=1970-01-01", &patient("Many"))
        .await;
    expect_outcome(ambiguous, 412).await;
    let unknown = server
        .put("Patient?not-a-param=1", &patient("Unknown"))
        .await;
    expect_outcome(unknown, 400).await;

    let response = server
        .delete("Patient?identifier=http://example.org/mrn|Cond")
        .await;
    assert_eq!(response.status(), 204);
    expect_outcome(
        server
            .get(&format!("Patient/{}", first["id"].as_str().unwrap()))
            .await,
        410,
    )
    .await;
}

async fn summary_and_elements_return_marked_subsets(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let mut body = patient("Subset");
    body["photo"] = json!([{"url": "http://example.org/photo.png"}]);
    body["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Subset</div>"});
    let created = server.create(&body).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());

    let summary = expect_json(server.get(&format!("{path}?_summary=true")).await, 200).await;
    assert_eq!(summary["name"][0]["family"], "Subset");
    assert!(
        summary.get("photo").is_none() && summary.get("text").is_none(),
        "{summary}"
    );
    assert_eq!(summary["meta"]["tag"][0]["code"], "SUBSETTED");
    let data = expect_json(server.get(&format!("{path}?_summary=data")).await, 200).await;
    assert!(data.get("text").is_none() && data.get("photo").is_some());
    let elements = expect_json(server.get(&format!("{path}?_elements=gender")).await, 200).await;
    assert_eq!(elements["gender"], "female");
    assert!(elements.get("name").is_none() && elements.get("birthDate").is_none());
    assert_eq!(elements["meta"]["tag"][0]["code"], "SUBSETTED");
    let version = expect_json(
        server
            .get(&format!("{path}/_history/1?_elements=name"))
            .await,
        200,
    )
    .await;
    assert!(version.get("gender").is_none() && version.get("name").is_some());
    // A plain read is whole and untagged.
    let full = expect_json(server.get(&path).await, 200).await;
    assert_eq!(full, created);
    expect_outcome(server.get(&format!("{path}?_summary=sometimes")).await, 400).await;
}
