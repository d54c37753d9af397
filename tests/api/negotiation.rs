//! Content negotiation: FHIR JSON, plain JSON, _format, _pretty, and XML refused.

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    json_flavours_are_accepted,
    pretty_output_is_indented_and_equal,
    xml_is_refused_with_406_and_415,
    decimals_keep_their_precision,
);

async fn json_flavours_are_accepted(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("Neg")).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    for accept in [
        "application/fhir+json",
        "application/json",
        "*/*",
        "application/fhir+json;q=0.9, text/html",
    ] {
        let response = server
            .client
            .get(server.url(&path))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "Accept: {accept}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        if accept == "application/json" {
            assert!(
                content_type.starts_with("application/json"),
                "{content_type}"
            );
        } else {
            assert!(
                content_type.starts_with("application/fhir+json"),
                "{content_type}"
            );
        }
    }
    for format in ["json", "application/fhir+json", "application/json"] {
        let url = format!(
            "{}?_format={}",
            server.url(&path),
            format.replace('+', "%2B")
        );
        let response = server
            .client
            .get(url)
            .header("accept", "application/fhir+xml")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "_format={format} overrides Accept");
    }
    // A JSON body sent as application/json is accepted too.
    let response = server
        .client
        .post(server.url("Patient"))
        .header("content-type", "application/json")
        .body(patient("Plain").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

async fn pretty_output_is_indented_and_equal(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("Pretty")).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    let compact = server.get(&path).await.text().await.unwrap();
    let pretty = server
        .get(&format!("{path}?_pretty=true"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!compact.contains('\n'));
    assert!(
        pretty.contains("\n  \"resourceType\": \"Patient\""),
        "{pretty}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&compact).unwrap(),
        serde_json::from_str::<Value>(&pretty).unwrap()
    );
    let metadata = server
        .get("metadata?_pretty=true")
        .await
        .text()
        .await
        .unwrap();
    assert!(metadata.contains('\n'));
    expect_outcome(server.get(&format!("{path}?_pretty=maybe")).await, 400).await;
}

async fn xml_is_refused_with_406_and_415(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let created = server.create(&patient("Xml")).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    let response = server
        .client
        .get(server.url(&path))
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    let outcome = expect_outcome(response, 406).await;
    assert_eq!(outcome["issue"][0]["code"], "not-supported");
    expect_outcome(server.get(&format!("{path}?_format=xml")).await, 406).await;
    expect_outcome(
        server.get("metadata?_format=application/fhir%2Bxml").await,
        406,
    )
    .await;
    let response = server
        .client
        .post(server.url("Patient"))
        .header("content-type", "application/fhir+xml")
        .body("<Patient xmlns=\"http://hl7.org/fhir\"/>")
        .send()
        .await
        .unwrap();
    expect_outcome(response, 415).await;
    let response = server
        .client
        .post(server.url("Patient"))
        .header("content-type", "text/plain")
        .body(patient("Text").to_string())
        .send()
        .await
        .unwrap();
    expect_outcome(response, 415).await;
}

async fn decimals_keep_their_precision(backend: Backend) {
    let Some(server) = Server::start(backend).await else {
        return;
    };
    let observation = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "glucose"},
        "valueQuantity": {"value": 6.30, "unit": "mmol/L"}
    });
    // serde_json would print 6.3: send the exact text instead.
    let body = observation.to_string().replace("6.3", "6.30");
    let response = server
        .client
        .post(server.url("Observation"))
        .header("content-type", "application/fhir+json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = server
        .get(&format!("Observation/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("\"value\":6.30"), "{text}");
}
