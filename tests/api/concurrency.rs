//! Concurrent writers and crash durability.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    concurrent_if_match_updates_have_one_winner,
    concurrent_updates_never_skip_or_repeat_versions,
    acknowledged_writes_survive_kill_9,
);

async fn concurrent_if_match_updates_have_one_winner(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("Race")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let url = server.url(&format!("Patient/{id}"));
    let mut tasks = Vec::new();
    for attempt in 0..8 {
        let client = server.client.clone();
        let url = url.clone();
        let mut body = created.clone();
        body["name"][0]["family"] = json!(format!("Racer{attempt}"));
        tasks.push(tokio::spawn(async move {
            client
                .put(url)
                .header("content-type", "application/fhir+json")
                .header("if-match", "W/\"1\"")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        7,
        "{statuses:?}"
    );
    let current = expect_json(server.get(&format!("Patient/{id}")).await, 200).await;
    assert_eq!(current["meta"]["versionId"], "2");
}

async fn concurrent_updates_never_skip_or_repeat_versions(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("Seq")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for attempt in 0..16 {
        let client = server.client.clone();
        let url = server.url(&format!("Patient/{id}"));
        let mut body = created.clone();
        body["name"][0]["family"] = json!(format!("Writer{attempt}"));
        tasks.push(tokio::spawn(async move {
            let response = client
                .put(url)
                .header("content-type", "application/fhir+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["meta"]["versionId"]
                .as_str()
                .unwrap()
                .parse::<u32>()
                .unwrap()
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=17).collect::<Vec<u32>>());
    let history = expect_json(
        server
            .get(&format!("Patient/{id}/_history?_count=100"))
            .await,
        200,
    )
    .await;
    let mut listed: Vec<u32> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            entry["resource"]["meta"]["versionId"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, (1..=17).collect::<Vec<u32>>());
}

async fn acknowledged_writes_survive_kill_9(backend: Backend) {
    let Some(mut server) = Server::start(backend).await else {
        return;
    };
    let mut ids = Vec::new();
    for index in 0..20 {
        let created = server.create(&patient(&format!("Durable{index}"))).await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    server.restart().await;
    for id in &ids {
        let read = expect_json(server.get(&format!("Patient/{id}")).await, 200).await;
        assert_eq!(read["id"], id.as_str());
    }
}
