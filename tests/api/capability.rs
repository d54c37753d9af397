//! The CapabilityStatement says what the server does.

use crate::backend_tests;
use crate::common::*;

backend_tests!(metadata_describes_the_server);

async fn metadata_describes_the_server(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let statement = expect_json(server.get("metadata").await, 200).await;
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    let instantiates = statement["instantiates"].to_string();
    for version in ["3.1.1", "4.0.0", "6.1.0", "7.0.0"] {
        assert!(
            instantiates.contains(&format!("us-core-server|{version}")),
            "{instantiates}"
        );
    }
    assert_eq!(statement["kind"], "instance");
    assert_eq!(statement["status"], "active");
    assert_eq!(statement["implementation"]["url"], server.fhir.as_str());
    let formats: Vec<&str> = statement["format"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(formats.contains(&"application/fhir+json"));
    assert!(!formats.iter().any(|f| f.contains("xml")));
    let rest = &statement["rest"][0];
    assert_eq!(rest["mode"], "server");
    let resources = rest["resource"].as_array().unwrap();
    // Every concrete R4 resource type, each once.
    assert_eq!(resources.len(), 146);
    let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
    let interactions: Vec<&str> = patient["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    for code in [
        "read",
        "vread",
        "update",
        "delete",
        "history-instance",
        "history-type",
        "create",
    ] {
        assert!(interactions.contains(&code), "{code}");
    }
    let params = patient["searchParam"].as_array().unwrap();
    for name in [
        "_id",
        "name",
        "birthdate",
        "gender",
        "identifier",
        "race",
        "ethnicity",
    ] {
        let param = params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        assert!(
            param["definition"].as_str().unwrap().starts_with("http"),
            "{param}"
        );
        assert!(param["type"].is_string());
    }
    let observation = resources
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    let includes = observation["searchInclude"].as_array().unwrap();
    assert!(includes.iter().any(|i| i == "Observation:patient"));
    assert_eq!(patient["versioning"], "versioned-update");
    let system: Vec<&str> = rest["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        system,
        ["transaction", "batch", "history-system", "search-system"]
    );
    // The statement's claims hold: every type listing history-type really answers it.
    for resource in resources {
        let resource_type = resource["type"].as_str().unwrap();
        let interactions = resource["interaction"].as_array().unwrap();
        if !interactions.iter().any(|i| i["code"] == "history-type") {
            assert_eq!(
                resource_type, "AuditEvent",
                "only the audit log has no history"
            );
            continue;
        }
        let response = server
            .get(&format!("{resource_type}/_history?_count=1"))
            .await;
        assert_eq!(response.status(), 200, "{resource_type}");
    }
}
