//! History at instance, type and system level, with _count paging and _since.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    instance_history_lists_versions_newest_first,
    type_and_system_history_page_with_count,
    history_since_filters_older_versions,
    history_rejects_bad_parameters,
);

async fn instance_history_lists_versions_newest_first(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("H")).await;
    let id = created["id"].as_str().unwrap();
    for family in ["H2", "H3"] {
        let mut body = created.clone();
        body["name"][0]["family"] = json!(family);
        assert_eq!(
            server.put(&format!("Patient/{id}"), &body).await.status(),
            200
        );
    }
    let history = expect_json(server.get(&format!("Patient/{id}/_history")).await, 200).await;
    assert_eq!(history["resourceType"], "Bundle");
    assert_eq!(history["type"], "history");
    let entries = history["entry"].as_array().unwrap();
    let versions: Vec<&str> = entries
        .iter()
        .map(|entry| entry["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["3", "2", "1"]);
    assert_eq!(entries[2]["request"]["method"], "POST");
    assert_eq!(entries[0]["request"]["method"], "PUT");
    assert_eq!(entries[0]["response"]["etag"], "W/\"3\"");
    assert_eq!(
        entries[0]["fullUrl"],
        format!("{}/Patient/{id}", server.fhir)
    );
    expect_outcome(server.get("Patient/nobody/_history").await, 404).await;
}

async fn type_and_system_history_page_with_count(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    for index in 0..5 {
        server.create(&patient(&format!("P{index}"))).await;
    }
    server
        .create(&json!({"resourceType": "Organization", "name": "Org"}))
        .await;
    // Type level: 5 Patients, two per page.
    let mut url = server.url("Patient/_history?_count=2");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = expect_json(server.client.get(&url).send().await.unwrap(), 200).await;
        pages += 1;
        for entry in page["entry"].as_array().unwrap() {
            assert_eq!(entry["resource"]["resourceType"], "Patient");
            seen.push(
                entry["resource"]["name"][0]["family"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|link| link["relation"] == "next")
            .map(|link| link["url"].as_str().unwrap().to_string());
        match next {
            Some(next) => url = next,
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["P4", "P3", "P2", "P1", "P0"]);
    // System level sees every type.
    let all = expect_json(server.get("_history").await, 200).await;
    let entries = all["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    assert_eq!(entries[0]["resource"]["resourceType"], "Organization");
}

async fn history_since_filters_older_versions(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let old = server.create(&patient("Old")).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let newer = server.create(&patient("New")).await;
    let since = newer["meta"]["lastUpdated"].as_str().unwrap();
    let url = format!(
        "{}?_since={}",
        server.url("Patient/_history"),
        since.replace('+', "%2B")
    );
    let page = expect_json(server.client.get(&url).send().await.unwrap(), 200).await;
    let ids: Vec<&str> = page["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [newer["id"].as_str().unwrap()]);
    assert!(!ids.contains(&old["id"].as_str().unwrap()));
}

async fn history_rejects_bad_parameters(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let outcome = expect_outcome(server.get("Patient/_history?_count=many").await, 400).await;
    assert_eq!(outcome["issue"][0]["expression"][0], "_count");
    let outcome = expect_outcome(server.get("_history?_since=last-tuesday").await, 400).await;
    assert_eq!(outcome["issue"][0]["expression"][0], "_since");
    expect_outcome(server.get("NotAType/_history").await, 404).await;
}
