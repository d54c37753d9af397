//! Bulk Data export end to end with a backend-services token (RS384 client assertion):
//! system, Patient and Group levels, parameters, scopes, cancel, other clients, restarts.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::common::backend::BackendService;
use crate::common::smart::{Answers, App, access_token, authorize};
use crate::common::*;

backend_tests!(
    exports_each_level_and_parameter,
    export_survives_a_crash,
    exports_bulk_data_3_parameters,
    export_authorization_and_limits,
    export_jobs_belong_to_their_grant,
);

pub(crate) const ALL: &str = "system/*.cruds";

/// A server writing exports into a temporary directory, holding [`load`]'s resources, and a
/// backend-services token with every `system/` scope.
struct Loaded {
    server: Server,
    dir: tempfile::TempDir,
    token: String,
}

async fn start(backend: Backend, extra: &[&str]) -> Option<Loaded> {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--export-dir", dir.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_secured(backend, &args).await?;
    let service = BackendService::register(&server, ALL).await;
    let token = service.token(&server, ALL).await;
    load(&server, &token).await;
    Some(Loaded { server, dir, token })
}

async fn put(server: &Server, token: &str, resource: Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let response = server
        .client
        .put(server.url(&path))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .json(&resource)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

async fn delete(server: &Server, token: &str, path: &str) {
    let response = server
        .client
        .delete(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

fn observation(id: &str, patient: &str, status: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "id": id,
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
    })
}

/// Three patients, four observations, an organization and a group of p1 and p2.
pub(crate) async fn load(server: &Server, token: &str) {
    for id in ["p1", "p2", "p3"] {
        let mut resource = patient(id);
        resource["id"] = json!(id);
        put(server, token, resource).await;
    }
    put(server, token, observation("o1", "p1", "final")).await;
    put(server, token, observation("o2", "p1", "preliminary")).await;
    put(server, token, observation("o3", "p2", "final")).await;
    put(server, token, observation("o4", "p3", "final")).await;
    put(
        server,
        token,
        json!({"resourceType": "Organization", "id": "org1", "name": "Clinic"}),
    )
    .await;
    put(
        server,
        token,
        json!({
            "resourceType": "Group", "id": "g1", "type": "person", "actual": true,
            "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}],
        }),
    )
    .await;
}

fn kickoff_request(server: &Server, token: &str, path: &str) -> reqwest::RequestBuilder {
    server
        .client
        .get(server.url(path))
        .bearer_auth(token)
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
}

/// Kicks off an export; returns the status URL.
pub(crate) async fn kickoff(server: &Server, token: &str, path: &str) -> String {
    let response = kickoff_request(server, token, path).send().await.unwrap();
    assert_eq!(response.status(), 202, "{path}");
    response.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Polls until the manifest is there.
pub(crate) async fn manifest(server: &Server, token: &str, status_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = server
            .client
            .get(status_url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            202 => {
                assert!(response.headers().contains_key("retry-after"));
                assert!(
                    Instant::now() < deadline,
                    "the export did not finish:\n{}",
                    server.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            200 => {
                assert!(response.headers().contains_key("expires"));
                return response.json().await.unwrap();
            }
            other => panic!("status {other}: {}", response.text().await.unwrap()),
        }
    }
}

pub(crate) async fn download(server: &Server, token: &str, url: &str) -> Vec<Value> {
    let response = server
        .client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/fhir+ndjson"
    );
    let text = response.text().await.unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `type -> ids` of the manifest's `key` files.
pub(crate) async fn contents(
    server: &Server,
    token: &str,
    manifest: &Value,
    key: &str,
) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for file in manifest[key].as_array().into_iter().flatten() {
        let lines = download(server, token, file["url"].as_str().unwrap()).await;
        assert_eq!(file["count"], lines.len(), "{file}");
        let ids: Vec<String> = lines
            .iter()
            .map(|line| match line["resourceType"].as_str() {
                Some("Bundle") => line["entry"][0]["request"]["url"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                _ => line["id"].as_str().unwrap().to_string(),
            })
            .collect();
        found.push((file["type"].as_str().unwrap().to_string(), ids));
    }
    // A type split into several files reads as one.
    found.sort();
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for (resource_type, ids) in found {
        match merged.last_mut() {
            Some((last, all)) if *last == resource_type => all.extend(ids),
            _ => merged.push((resource_type, ids)),
        }
    }
    for (_, ids) in &mut merged {
        ids.sort();
    }
    merged
}

pub(crate) fn expected(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter()
        .map(|(t, ids)| (t.to_string(), ids.iter().map(|i| i.to_string()).collect()))
        .collect()
}

async fn export(server: &Server, token: &str, path: &str) -> Value {
    let status = kickoff(server, token, path).await;
    manifest(server, token, &status).await
}

async fn exports_each_level_and_parameter(backend: Backend) {
    let Some(Loaded {
        server,
        dir: _dir,
        token,
    }) = start(backend, &["--export-batch", "2"]).await
    else {
        return;
    };

    // Clients find Group ids by search.
    let groups = server
        .client
        .get(server.url("Group?member=Patient/p2&type=person"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let groups = expect_json(groups, 200).await;
    assert_eq!(groups["total"], 1, "{groups}");
    assert_eq!(groups["entry"][0]["resource"]["id"], "g1");

    // System level: every type, each line exactly what a read returns.
    let status_url = kickoff(
        &server,
        &token,
        "$export?_outputFormat=application%2Ffhir%2Bndjson",
    )
    .await;
    assert!(
        status_url.starts_with(&format!("{}/$export-status/", server.fhir)),
        "{status_url}"
    );
    let system = manifest(&server, &token, &status_url).await;
    assert_eq!(system["requiresAccessToken"], true);
    assert_eq!(
        system["request"],
        format!(
            "{}/$export?_outputFormat=application%2Ffhir%2Bndjson",
            server.fhir
        )
    );
    assert!(system["transactionTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(system["error"], json!([]));
    assert!(system.get("deleted").is_none());
    assert_eq!(
        contents(&server, &token, &system, "output").await,
        expected(&[
            ("Group", &["g1"]),
            ("Observation", &["o1", "o2", "o3", "o4"]),
            ("Organization", &["org1"]),
            ("Patient", &["p1", "p2", "p3"]),
        ])
    );
    for file in system["output"].as_array().unwrap() {
        for line in download(&server, &token, file["url"].as_str().unwrap()).await {
            let path = format!(
                "{}/{}",
                line["resourceType"].as_str().unwrap(),
                line["id"].as_str().unwrap()
            );
            let read: Value = server
                .client
                .get(server.url(&path))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(line, read);
        }
    }
    // gzip on request.
    let url = system["output"][0]["url"].as_str().unwrap();
    let response = server
        .client
        .get(url)
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.lines().count(), 1);

    // Patient level: the compartments of every patient (a Group is in its members'
    // compartments); Group level: its members' only.
    let patients = export(&server, &token, "Patient/$export").await;
    assert_eq!(
        contents(&server, &token, &patients, "output").await,
        expected(&[
            ("Group", &["g1"]),
            ("Observation", &["o1", "o2", "o3", "o4"]),
            ("Patient", &["p1", "p2", "p3"])
        ])
    );
    let group = export(&server, &token, "Group/g1/$export").await;
    assert_eq!(
        contents(&server, &token, &group, "output").await,
        expected(&[
            ("Group", &["g1"]),
            ("Observation", &["o1", "o2", "o3"]),
            ("Patient", &["p1", "p2"])
        ])
    );
    // POST with Parameters: `patient` narrows a Group export.
    let response = server
        .client
        .post(server.url("Group/g1/$export"))
        .bearer_auth(&token)
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .header("content-type", "application/fhir+json")
        .json(&json!({"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": "Patient/p2"}},
            {"name": "_type", "valueString": "Observation"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let status = response.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_string();
    let narrowed = manifest(&server, &token, &status).await;
    assert_eq!(
        contents(&server, &token, &narrowed, "output").await,
        expected(&[("Observation", &["o3"])])
    );
    expect_outcome(
        kickoff_request(&server, &token, "Group/nope/$export")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    // _type, _typeFilter (ORed), _elements.
    let typed = export(&server, &token, "$export?_type=Patient,Organization").await;
    assert_eq!(
        contents(&server, &token, &typed, "output").await,
        expected(&[
            ("Organization", &["org1"]),
            ("Patient", &["p1", "p2", "p3"])
        ])
    );
    let filtered = export(
        &server,
        &token,
        "$export?_type=Observation&_typeFilter=Observation%3Fstatus%3Dpreliminary,Observation%3Fsubject%3DPatient%2Fp3",
    )
    .await;
    assert_eq!(
        contents(&server, &token, &filtered, "output").await,
        expected(&[("Observation", &["o2", "o4"])])
    );
    let elements = export(
        &server,
        &token,
        "$export?_type=Observation&_elements=status",
    )
    .await;
    let lines = download(
        &server,
        &token,
        elements["output"][0]["url"].as_str().unwrap(),
    )
    .await;
    assert_eq!(lines.len(), 4);
    // Mandatory elements (code) stay; the rest (subject) goes.
    for line in lines {
        assert!(
            line.get("subject").is_none() && line.get("status").is_some(),
            "{line}"
        );
        assert_eq!(line["meta"]["tag"][0]["code"], "SUBSETTED");
    }

    // _since: a later update and a deletion.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = system["transactionTime"].as_str().unwrap().to_string();
    let mut changed = patient("p1");
    changed["id"] = json!("p1");
    changed["active"] = json!(false);
    put(&server, &token, changed).await;
    delete(&server, &token, "Organization/org1").await;
    let path = format!(
        "$export?_since={}",
        since.replace(':', "%3A").replace('+', "%2B")
    );
    let recent = export(&server, &token, &path).await;
    assert_eq!(
        contents(&server, &token, &recent, "output").await,
        expected(&[("Patient", &["p1"])])
    );
    assert_eq!(
        contents(&server, &token, &recent, "deleted").await,
        expected(&[("Organization", &["Organization/org1"])])
    );

    // Scopes decide the types.
    let narrow = BackendService::register(&server, "system/Patient.rs").await;
    let narrow_token = narrow.token(&server, "system/Patient.rs").await;
    let only_patients = export(&server, &narrow_token, "$export").await;
    assert_eq!(
        contents(&server, &narrow_token, &only_patients, "output").await,
        expected(&[("Patient", &["p1", "p2", "p3"])])
    );
    expect_outcome(
        kickoff_request(&server, &narrow_token, "$export?_type=Observation")
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;

    // Another client sees neither the status nor the files.
    let url = system["output"][0]["url"].as_str().unwrap();
    assert_eq!(
        server
            .client
            .get(url)
            .bearer_auth(&narrow_token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        server
            .client
            .get(&status_url)
            .bearer_auth(&narrow_token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        server
            .client
            .delete(&status_url)
            .bearer_auth(&narrow_token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(server.client.get(url).send().await.unwrap().status(), 401);

    // Headers and parameters are checked.
    let no_prefer = server
        .client
        .get(server.url("$export"))
        .bearer_auth(&token)
        .header("accept", "application/fhir+json")
        .send()
        .await
        .unwrap();
    expect_outcome(no_prefer, 400).await;
    let no_accept = server
        .client
        .get(server.url("$export"))
        .bearer_auth(&token)
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    expect_outcome(no_accept, 400).await;
    for bad in [
        "$export?_outputFormat=text%2Fcsv",
        "$export?_since=yesterday",
        "$export?_type=Nonsense",
        "$export?_typeFilter=Observation%3Fnonsense%3D1",
        "$export?includeAssociatedData=_custom",
        "$export?organizeOutputBy=Encounter",
        "$export?allowPartialManifests=maybe",
        "$export?patient=Patient%2Fp1",
        "Patient/$export?_type=Organization",
    ] {
        expect_outcome(
            kickoff_request(&server, &token, bad).send().await.unwrap(),
            400,
        )
        .await;
    }
    // Lenient handling ignores what is not supported and reports it.
    let response = kickoff_request(
        &server,
        &token,
        "$export?_type=Group&organizeOutputBy=Encounter",
    )
    .header("prefer", "handling=lenient")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 202);
    let status = response.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_string();
    let lenient = manifest(&server, &token, &status).await;
    assert_eq!(lenient["error"][0]["type"], "OperationOutcome");
    assert_eq!(lenient["error"][0]["count"], 1);

    // Cancel: 202, then the job is gone.
    let status = kickoff(&server, &token, "$export").await;
    let response = server
        .client
        .delete(&status)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        server
            .client
            .get(&status)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        server
            .client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The CapabilityStatement declares the three operations.
    let statement = expect_json(server.get("metadata").await, 200).await;
    assert!(
        statement["instantiates"]
            .as_array()
            .unwrap()
            .contains(&json!(
                "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
            ))
    );
    assert_eq!(
        statement["rest"][0]["operation"][0]["definition"],
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
    );
    let definitions = statement["rest"][0]["resource"].to_string();
    for operation in ["patient-export", "group-export"] {
        assert!(definitions.contains(&format!(
            "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{operation}"
        )));
    }
}

async fn export_survives_a_crash(backend: Backend) {
    // One resource per file and per page: files are recorded as they are finished, so the
    // restarted server keeps the interrupted run's files and goes on after them.
    let Some(Loaded {
        mut server,
        dir,
        token,
    }) = start(
        backend,
        &[
            "--export-batch",
            "1",
            "--export-lease",
            "1",
            "--export-file-lines",
            "1",
        ],
    )
    .await
    else {
        return;
    };
    let status = kickoff(&server, &token, "$export").await;
    // Killed while the job is queued or running; the restarted server takes it over.
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.restart().await;
    let done = manifest(&server, &token, &status).await;
    // Every resource exactly once.
    assert_eq!(
        contents(&server, &token, &done, "output").await,
        expected(&[
            ("Group", &["g1"]),
            ("Observation", &["o1", "o2", "o3", "o4"]),
            ("Organization", &["org1"]),
            ("Patient", &["p1", "p2", "p3"]),
        ])
    );
    // Only the manifest's files remain: a file the interrupted run was writing is gone.
    let job = status.rsplit('/').next().unwrap();
    let mut on_disk = 0;
    for run in std::fs::read_dir(dir.path().join(job)).unwrap() {
        on_disk += std::fs::read_dir(run.unwrap().path()).unwrap().count();
    }
    assert_eq!(on_disk, done["output"].as_array().unwrap().len());
}

/// `GET` on a status or manifest-page URL.
async fn poll(server: &Server, token: &str, url: &str) -> reqwest::Response {
    server
        .client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The status URL of an accepted kick-off.
fn status_of(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 202);
    response.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Percent-encodes an instant for a query string.
fn instant_param(instant: &str) -> String {
    instant.replace(':', "%3A").replace('+', "%2B")
}

/// The `Type/id` of each line of the files of a manifest organized by Patient, by block.
async fn blocks(server: &Server, token: &str, manifest: &Value) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for file in manifest["output"].as_array().unwrap() {
        assert!(file.get("type").is_none(), "{file}");
        let lines = download(server, token, file["url"].as_str().unwrap()).await;
        assert_eq!(file["count"], lines.len());
        // Every file opens with a header: a block never continues in another file.
        assert_eq!(lines[0]["resourceType"], "Parameters", "{file}");
        for line in lines {
            if line["resourceType"] == "Parameters" {
                assert_eq!(line["parameter"][0]["name"], "header");
                let patient = line["parameter"][0]["valueReference"]["reference"]
                    .as_str()
                    .unwrap()
                    .to_string();
                blocks.push((patient, Vec::new()));
            } else {
                let key = format!(
                    "{}/{}",
                    line["resourceType"].as_str().unwrap(),
                    line["id"].as_str().unwrap()
                );
                blocks.last_mut().unwrap().1.push(key);
            }
        }
    }
    blocks
}

fn provenance(id: &str, target: &str, recorded: &str) -> Value {
    json!({
        "resourceType": "Provenance",
        "id": id,
        "target": [{"reference": target}],
        "recorded": recorded,
        "agent": [{"who": {"reference": "Organization/org1"}}],
    })
}

async fn exports_bulk_data_3_parameters(backend: Backend) {
    let Some(Loaded {
        server,
        dir: _dir,
        token,
    }) = start(
        backend,
        &["--export-batch", "2", "--export-file-lines", "2"],
    )
    .await
    else {
        return;
    };

    // Large parts are split: four Observations in files of two, each counted.
    let split = export(&server, &token, "$export?_type=Observation").await;
    let files = split["output"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{split}");
    assert!(
        files
            .iter()
            .all(|f| f["type"] == "Observation" && f["count"] == 2)
    );
    let since = split["transactionTime"].as_str().unwrap().to_string();

    // organizeOutputBy=Patient: a block per Patient (header, the Patient, its compartment),
    // a block never split although files hold two lines.
    let organized = export(&server, &token, "Patient/$export?organizeOutputBy=Patient").await;
    assert_eq!(organized["outputOrganizedBy"], "Patient");
    let found = blocks(&server, &token, &organized).await;
    let mut sorted: Vec<(String, Vec<String>)> = found
        .iter()
        .map(|(patient, lines)| {
            assert_eq!(&lines[0], patient, "the Patient opens its block");
            let mut lines = lines.clone();
            lines.sort();
            (patient.clone(), lines)
        })
        .collect();
    sorted.sort();
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        sorted,
        vec![
            (
                "Patient/p1".to_string(),
                strings(&["Group/g1", "Observation/o1", "Observation/o2", "Patient/p1"])
            ),
            (
                "Patient/p2".to_string(),
                strings(&["Group/g1", "Observation/o3", "Patient/p2"])
            ),
            (
                "Patient/p3".to_string(),
                strings(&["Observation/o4", "Patient/p3"])
            ),
        ]
    );
    assert_eq!(organized["output"].as_array().unwrap().len(), 3);

    // Group members: nested Groups are followed (a cycle ends), inactive members left out.
    put(
        &server,
        &token,
        json!({
            "resourceType": "Group", "id": "g2", "type": "person", "actual": true,
            "member": [
                {"entity": {"reference": "Group/g1"}},
                {"entity": {"reference": "Group/g2"}},
                {"entity": {"reference": "Patient/p3"}, "inactive": true},
            ],
        }),
    )
    .await;
    let nested = export(&server, &token, "Group/g2/$export?_type=Patient").await;
    assert_eq!(
        contents(&server, &token, &nested, "output").await,
        expected(&[("Patient", &["p1", "p2"])])
    );

    // allowPartialManifests: pages of finished files, each unchanged once handed out,
    // linked until the last one (200).
    let response = kickoff_request(
        &server,
        &token,
        "$export?_type=Patient,Observation&allowPartialManifests=true",
    )
    .send()
    .await
    .unwrap();
    let mut url = status_of(&response);
    let mut pages: Vec<(String, Value)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "{}", server.log());
        let response = poll(&server, &token, &url).await;
        let status = response.status().as_u16();
        assert!(status == 200 || status == 202, "{status}");
        let has_body = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/json");
        if !has_body {
            assert_eq!(status, 202);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let page: Value = response.json().await.unwrap();
        assert!(page["transactionTime"].is_string());
        match pages.iter().find(|(seen, _)| *seen == url) {
            Some((_, first)) => assert_eq!(page["output"], first["output"], "a page never changes"),
            None => pages.push((url.clone(), page.clone())),
        }
        if let Some(next) = page["link"][0]["url"].as_str() {
            assert_eq!(page["link"][0]["relation"], "next");
            url = next.to_string();
        } else if status == 200 {
            break;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut all_files = json!({"output": []});
    for (_, page) in &pages {
        for file in page["output"].as_array().unwrap() {
            all_files["output"]
                .as_array_mut()
                .unwrap()
                .push(file.clone());
        }
    }
    let mut ids: Vec<String> = Vec::new();
    for (resource_type, found) in contents(&server, &token, &all_files, "output").await {
        ids.extend(found.into_iter().map(|id| format!("{resource_type}/{id}")));
    }
    ids.sort();
    assert_eq!(
        ids,
        strings(&[
            "Observation/o1",
            "Observation/o2",
            "Observation/o3",
            "Observation/o4",
            "Patient/p1",
            "Patient/p2",
            "Patient/p3"
        ])
    );
    let response = poll(&server, &token, &format!("{}?page=99", pages[0].0)).await;
    expect_outcome(response, 404).await;

    // Resources changed or deleted after the transaction time are exported as they were then.
    put(
        &server,
        &token,
        json!({"resourceType": "Organization", "id": "org2", "name": "Lab"}),
    )
    .await;
    let response = kickoff_request(&server, &token, "$export")
        .send()
        .await
        .unwrap();
    let status = status_of(&response);
    let mut renamed = patient("p2");
    renamed["id"] = json!("p2");
    renamed["active"] = json!(false);
    put(&server, &token, renamed).await;
    delete(&server, &token, "Organization/org2").await;
    let held = manifest(&server, &token, &status).await;
    for file in held["output"].as_array().unwrap() {
        for line in download(&server, &token, file["url"].as_str().unwrap()).await {
            assert!(line.get("active").is_none(), "{line}");
        }
    }
    let organizations = contents(&server, &token, &held, "output").await;
    assert!(
        organizations.contains(&(
            "Organization".to_string(),
            vec!["org1".to_string(), "org2".to_string()]
        )),
        "{organizations:?}"
    );

    // _until: p2 changed after `since`, so it is left out.
    let until = export(
        &server,
        &token,
        &format!("$export?_type=Patient&_until={}", instant_param(&since)),
    )
    .await;
    assert_eq!(
        contents(&server, &token, &until, "output").await,
        expected(&[("Patient", &["p1", "p3"])])
    );

    // Deletions at Patient and Group level: those of the population only.
    for id in ["o3", "o4"] {
        delete(&server, &token, &format!("Observation/{id}")).await;
    }
    let path = format!(
        "Patient/$export?_type=Observation&_since={}",
        instant_param(&since)
    );
    let patients = export(&server, &token, &path).await;
    assert_eq!(
        contents(&server, &token, &patients, "deleted").await,
        expected(&[("Observation", &["Observation/o3", "Observation/o4"])])
    );
    let path = format!(
        "Group/g1/$export?_type=Observation&_since={}",
        instant_param(&since)
    );
    let group = export(&server, &token, &path).await;
    assert_eq!(
        contents(&server, &token, &group, "deleted").await,
        expected(&[("Observation", &["Observation/o3"])])
    );

    // includeAssociatedData: the Provenance of the exported resources, all or the latest.
    put(
        &server,
        &token,
        provenance("prov1", "Observation/o1", "2024-01-01T00:00:00Z"),
    )
    .await;
    put(
        &server,
        &token,
        provenance("prov2", "Observation/o1", "2024-02-01T00:00:00Z"),
    )
    .await;
    put(
        &server,
        &token,
        provenance("prov3", "Patient/p3", "2024-01-01T00:00:00Z"),
    )
    .await;
    put(
        &server,
        &token,
        provenance("prov4", "Organization/org1", "2024-01-01T00:00:00Z"),
    )
    .await;
    let relevant = export(
        &server,
        &token,
        "$export?_type=Observation&includeAssociatedData=RelevantProvenanceResources",
    )
    .await;
    assert_eq!(
        contents(&server, &token, &relevant, "output").await,
        expected(&[
            ("Observation", &["o1", "o2"]),
            ("Provenance", &["prov1", "prov2"])
        ])
    );
    let latest = export(
        &server,
        &token,
        "$export?_type=Observation&includeAssociatedData=LatestProvenanceResources",
    )
    .await;
    assert_eq!(
        contents(&server, &token, &latest, "output").await,
        expected(&[("Observation", &["o1", "o2"]), ("Provenance", &["prov2"])])
    );
    let patients = export(&server, &token, "Patient/$export?_type=Patient,Observation&includeAssociatedData=RelevantProvenanceResources").await;
    assert_eq!(
        contents(&server, &token, &patients, "output").await,
        expected(&[
            ("Observation", &["o1", "o2"]),
            ("Patient", &["p1", "p2", "p3"]),
            ("Provenance", &["prov1", "prov2", "prov3"])
        ])
    );
    // Provenance must be readable with the token's scopes.
    let narrow = BackendService::register(&server, "system/Observation.rs").await;
    let narrow_token = narrow.token(&server, "system/Observation.rs").await;
    let refused = kickoff_request(
        &server,
        &narrow_token,
        "$export?includeAssociatedData=LatestProvenanceResources",
    )
    .send()
    .await
    .unwrap();
    expect_outcome(refused, 403).await;
}

async fn export_authorization_and_limits(backend: Backend) {
    let Some(Loaded { server, dir, token }) =
        start(backend, &["--export-max-jobs", "1", "--export-expiry", "1"]).await
    else {
        return;
    };
    server.import(&[json!({"resourceType": "Practitioner", "id": "dr1"})]);
    server.add_users(&[("alice", "Patient/p1"), ("doc", "Practitioner/dr1")]);

    // No token: 401. A patient's token: 403.
    let anonymous = server
        .client
        .get(server.url("$export"))
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    expect_outcome(anonymous, 401).await;
    let scope = "launch/patient openid fhirUser patient/*.rs";
    let app = App::register(&server, "public", scope, &[]);
    let patient_token = authorize(&server, &app, scope, None, &Answers::allow("alice", "pw-1"))
        .await
        .unwrap();
    let refused = kickoff_request(&server, &access_token(&patient_token), "Patient/$export")
        .send()
        .await
        .unwrap();
    expect_outcome(refused, 403).await;

    // A practitioner's user/ token exports what the user may read.
    let scope = "openid fhirUser user/Patient.rs user/Observation.rs";
    let app = App::register(&server, "public", scope, &[]);
    let doctor = access_token(
        &authorize(&server, &app, scope, None, &Answers::allow("doc", "pw-1"))
            .await
            .unwrap(),
    );
    let by_doctor = export(&server, &doctor, "Patient/$export").await;
    assert_eq!(
        contents(&server, &doctor, &by_doctor, "output").await,
        expected(&[
            ("Observation", &["o1", "o2", "o3", "o4"]),
            ("Patient", &["p1", "p2", "p3"])
        ])
    );

    // `patient` must name known Patients (and, for a Group, its members).
    for (path, reference) in [
        ("Patient/$export", "Patient/nobody"),
        ("Group/g1/$export", "Patient/p3"),
    ] {
        let response = server
            .client
            .post(server.url(path))
            .bearer_auth(&token)
            .header("accept", "application/fhir+json")
            .header("prefer", "respond-async")
            .json(&json!({"resourceType": "Parameters", "parameter": [
                {"name": "patient", "valueReference": {"reference": reference}},
            ]}))
            .send()
            .await
            .unwrap();
        expect_outcome(response, 400).await;
    }

    // One job at a time for this client: the next kick-off waits (429, Retry-After).
    let mut refused = None;
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let response = kickoff_request(&server, &token, "$export")
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        accepted.push(status_of(&response));
    }
    let refused = refused.expect("a second concurrent job is refused");
    assert!(refused.headers().contains_key("retry-after"));
    expect_outcome(refused, 429).await;

    // Files expire: after `--export-expiry`, the job and its files are gone.
    let status = accepted.pop().unwrap();
    let done = manifest(&server, &token, &status).await;
    let file = done["output"][0]["url"].as_str().unwrap().to_string();
    let job = status.rsplit('/').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while poll(&server, &token, &status).await.status() != 404 {
        assert!(Instant::now() < deadline, "the export never expired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(poll(&server, &token, &file).await.status(), 404);
    assert!(!dir.path().join(job).exists());
}

/// A job is the grant's that started it: the same user through the same app, or for a job a
/// backend service started, that backend client's tokens. Another user of the same app (a
/// patient, another practitioner) cannot poll, download or cancel it.
async fn export_jobs_belong_to_their_grant(backend: Backend) {
    let Some(Loaded { server, token, .. }) = start(backend, &[]).await else {
        return;
    };
    server.import(&[
        json!({"resourceType": "Practitioner", "id": "dr1"}),
        json!({"resourceType": "Practitioner", "id": "dr2"}),
    ]);
    server.add_users(&[
        ("alice", "Patient/p1"),
        ("doc", "Practitioner/dr1"),
        ("doc2", "Practitioner/dr2"),
    ]);
    let scope = "launch/patient openid fhirUser patient/*.rs user/*.rs";
    let app = App::register(&server, "public", scope, &[]);
    let sign_in = |username: &'static str, scope: &'static str| {
        let (server, app) = (&server, &app);
        async move {
            access_token(
                &authorize(server, app, scope, None, &Answers::allow(username, "pw-1"))
                    .await
                    .unwrap(),
            )
        }
    };
    let doctor = sign_in("doc", "openid fhirUser user/*.rs").await;
    let status = kickoff(&server, &doctor, "$export").await;
    let done = manifest(&server, &doctor, &status).await;
    let file = done["output"][0]["url"].as_str().unwrap().to_string();

    // Through the same app: a patient, and another practitioner.
    let patient = sign_in("alice", "launch/patient openid fhirUser patient/*.rs").await;
    let other_doctor = sign_in("doc2", "openid fhirUser user/*.rs").await;
    for (who, other) in [
        ("patient", &patient),
        ("other practitioner", &other_doctor),
        ("backend", &token),
    ] {
        for url in [&status, &file] {
            let response = poll(&server, other, url).await;
            assert_eq!(response.status(), 404, "{who}: GET {url}");
            expect_outcome(response, 404).await;
        }
        let cancel = server
            .client
            .delete(&status)
            .bearer_auth(other)
            .send()
            .await
            .unwrap();
        expect_outcome(cancel, 404).await;
    }
    // The same user through the same app, with a new token, still has it.
    let again = sign_in("doc", "openid fhirUser user/*.rs").await;
    assert_eq!(poll(&server, &again, &status).await.status(), 200);
    assert!(!download(&server, &again, &file).await.is_empty());

    // A backend-started job: any token of that backend client, and no user's.
    let service = BackendService::register(&server, ALL).await;
    let first = service.token(&server, ALL).await;
    let status = kickoff(&server, &first, "Patient/$export").await;
    let second = service.token(&server, ALL).await;
    manifest(&server, &second, &status).await;
    assert_eq!(poll(&server, &doctor, &status).await.status(), 404);

    // A job id that cannot be one (a NUL byte, which PostgreSQL refuses in text) is a 404.
    for id in ["%00", "a%00b", "..%2F..", &"x".repeat(300)] {
        let url = format!("{}/$export-status/{id}", server.fhir);
        expect_outcome(poll(&server, &token, &url).await, 404).await;
        let url = format!("{}/$export-file/{id}/0", server.fhir);
        let response = poll(&server, &token, &url).await;
        assert!(
            response.status().is_client_error(),
            "{url}: {}",
            response.status()
        );
    }
}
