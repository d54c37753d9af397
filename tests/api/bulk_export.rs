//! Bulk Data export end to end with a backend-services token (RS384 client assertion):
//! system, Patient and Group levels, parameters, scopes, cancel, other clients, restarts.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::common::backend::BackendService;
use crate::common::*;

backend_tests!(exports_each_level_and_parameter, export_survives_a_crash);

pub(crate) const ALL: &str = "system/*.cruds";

/// A server writing exports into a temporary directory.
async fn start(backend: Backend, extra: &[&str]) -> Option<(Server, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--export-dir", dir.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Some((Server::start_secured(backend, &args).await?, dir))
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
        let mut ids: Vec<String> = lines
            .iter()
            .map(|line| match line["resourceType"].as_str() {
                Some("Bundle") => line["entry"][0]["request"]["url"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                _ => line["id"].as_str().unwrap().to_string(),
            })
            .collect();
        ids.sort();
        found.push((file["type"].as_str().unwrap().to_string(), ids));
    }
    found.sort();
    found
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
    let Some((server, _dir)) = start(backend, &["--export-batch", "2"]).await else {
        return;
    };
    let service = BackendService::register(&server, ALL).await;
    let token = service.token(&server, ALL).await;
    load(&server, &token).await;

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
    let response = server
        .client
        .delete(server.url("Organization/org1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
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
        "$export?includeAssociatedData=LatestProvenanceResources",
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
        "$export?_type=Group&organizeOutputBy=Patient",
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
    let Some((mut server, dir)) =
        start(backend, &["--export-batch", "1", "--export-lease", "1"]).await
    else {
        return;
    };
    let service = BackendService::register(&server, ALL).await;
    let token = service.token(&server, ALL).await;
    load(&server, &token).await;
    let status = kickoff(&server, &token, "$export").await;
    // Killed while the job is queued or running; the restarted server takes it over.
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.restart().await;
    let done = manifest(&server, &token, &status).await;
    assert_eq!(
        contents(&server, &token, &done, "output").await,
        expected(&[
            ("Group", &["g1"]),
            ("Observation", &["o1", "o2", "o3", "o4"]),
            ("Organization", &["org1"]),
            ("Patient", &["p1", "p2", "p3"]),
        ])
    );
    // One run's files remain: the interrupted run's are gone.
    let job = status.rsplit('/').next().unwrap();
    assert_eq!(std::fs::read_dir(dir.path().join(job)).unwrap().count(), 1);
}
