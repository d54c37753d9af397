//! The documentation at `/docs`: every page renders in the shared layout under the page CSP with
//! this server's URLs, every link between the pages works, each resource page shows the
//! CapabilityStatement's searches, and every generated search example finds sample data.

use std::collections::BTreeSet;

use crate::backend_tests;
use crate::common::*;

backend_tests!(docs_search_examples_find_sample_data);

async fn page(server: &Server, path: &str) -> String {
    let response = server
        .client
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{path}: {csp}"
    );
    let body = response.text().await.unwrap();
    assert!(
        body.contains("/assets/kiln.css"),
        "{path}: not in the layout"
    );
    assert!(!body.contains("{{kiln."), "{path}: a placeholder was left");
    assert!(!body.contains("<script"), "{path}: a script");
    assert!(!body.contains(" style="), "{path}: an inline style");
    body
}

/// The `/docs…` links of a page.
fn docs_links(body: &str) -> BTreeSet<String> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("/docs"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_pages_render_with_this_servers_urls() {
    let Some(server) = Server::start_secured(Backend::Sqlite, &[]).await else {
        return;
    };
    let index = page(&server, "/docs").await;
    let links = docs_links(&index);
    for guide in [
        "getting-started",
        "authorization",
        "bulk-data",
        "errors",
        "postman",
    ] {
        assert!(links.contains(&format!("/docs/{guide}")), "{guide}");
    }
    assert!(links.contains("/docs/resources/Observation"));
    assert!(links.contains("/docs/resources/Account"), "every type");
    let mut seen = BTreeSet::new();
    for link in &links {
        if link.starts_with("/docs/postman/") || !seen.insert(link.clone()) {
            continue;
        }
        let body = page(&server, link).await;
        for inner in docs_links(&body) {
            if !inner.starts_with("/docs/postman/") && seen.insert(inner.clone()) {
                page(&server, &inner).await;
            }
        }
    }
    let fhir = &server.fhir;
    let auth = page(&server, "/docs/authorization").await;
    for url in [
        format!("{fhir}/.well-known/smart-configuration"),
        format!("{}/auth/authorize", server.base),
        format!("{}/auth/token", server.base),
        format!("{}/auth/jwks", server.base),
        format!("&amp;aud={fhir}"),
        format!("\"aud\": \"{}/auth/token\"", server.base),
    ] {
        assert!(auth.contains(&url), "authorization page lacks {url}");
    }
    let started = page(&server, "/docs/getting-started").await;
    assert!(started.contains(&format!("{}/developer", server.base)));
    assert!(started.contains("Bosco882"), "the test patients");

    // A resource page: profiles, interactions, US Core searches with documentation and
    // examples on this server, combinations, and the other R4 parameters.
    let observation = page(&server, "/docs/resources/Observation").await;
    for expected in [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab|7.0.0",
        "search-type",
        "<strong>SHALL</strong>",
        "patient + category + date",
        &format!("{fhir}/Observation?patient=Patient/"),
        "value-quantity",
    ] {
        assert!(
            observation.contains(expected),
            "Observation page lacks {expected}"
        );
    }

    // Raw HTML and unknown pages.
    for missing in ["/docs/nope", "/docs/resources/Nope"] {
        let response = server
            .client
            .get(format!("{}{missing}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{missing}");
        assert!(response.headers().contains_key("content-security-policy"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capability_statement_names_us_core_profiles_and_searches() {
    let Some(server) = Server::start_secured(Backend::Sqlite, &[]).await else {
        return;
    };
    let capability = expect_json(server.get("metadata").await, 200).await;
    let resources = capability["rest"][0]["resource"].as_array().unwrap();
    let observation = resources
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    let profiles = observation["supportedProfile"].as_array().unwrap();
    assert!(profiles.contains(&json!(
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab|7.0.0"
    )));
    assert!(profiles.contains(&json!(
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab|3.1.1"
    )));
    let param = |resource: &Value, name: &str| {
        resource["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let allergy = resources
        .iter()
        .find(|r| r["type"] == "AllergyIntolerance")
        .unwrap();
    let patient_param = param(allergy, "patient");
    assert_eq!(patient_param["extension"][0]["valueCode"], "SHALL");
    assert!(patient_param["documentation"].as_str().unwrap().len() > 10);
    assert!(
        param(observation, "value-quantity")
            .get("extension")
            .is_none()
    );
    let combinations = observation["extension"].as_array().unwrap();
    assert!(combinations.iter().any(|c| c["extension"]
        == json!([
            {"url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation", "valueCode": "SHALL"},
            {"url": "required", "valueString": "patient"},
            {"url": "required", "valueString": "code"},
        ])));
    let account = resources.iter().find(|r| r["type"] == "Account").unwrap();
    assert!(account.get("supportedProfile").is_none());
}

/// The generated examples: docs/site/search-examples.json.
pub fn search_examples() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/site/search-examples.json"
    ))
    .unwrap();
    let examples: Vec<Value> = serde_json::from_str(&text).unwrap();
    examples
        .iter()
        .map(|example| {
            (
                example["resourceType"].as_str().unwrap().to_owned(),
                example["query"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn docs_search_examples_find_sample_data(backend: Backend) {
    let Some(server) = Server::start_with(backend, &["--load-sample-data"]).await else {
        return;
    };
    let examples = search_examples();
    assert!(examples.len() > 100, "{}", examples.len());
    let mut shown = std::collections::HashMap::new();
    for (resource_type, query) in &examples {
        let search = format!("{resource_type}?{query}");
        let bundle = expect_json(server.get(&search).await, 200).await;
        let matches = bundle["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["search"]["mode"] != "outcome")
                    .count()
            })
            .unwrap_or(0);
        assert!(matches > 0, "the docs' {search} finds nothing: {bundle}");
        // The resource page shows it, with this server's base.
        if !shown.contains_key(resource_type) {
            let html = server
                .client
                .get(format!("{}/docs/resources/{resource_type}", server.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            shown.insert(resource_type.clone(), html);
        }
        let url = format!("{}/{search}", server.fhir).replace('&', "&#38;");
        assert!(
            shown[resource_type].contains(&url),
            "/docs/resources/{resource_type} does not show {url}"
        );
    }
}
