//! The Postman collection (v2.1) and environment for this server, at
//! `/docs/postman/collection.json` and `/docs/postman/environment.json`. The collection's
//! OAuth 2.0 helper is filled in for SMART (authorization code with PKCE S256, `aud` on the
//! authorization URL since Postman sends none, client credentials in the body); its requests
//! cover metadata, discovery, a read, every US Core search with an example on the sample data,
//! and a Bulk Data export (kick-off, bounded polling, download, delete). Every request tests its
//! status, so newman fails when the server does not answer as documented. When the
//! `accessToken` variable is set (a token from `kiln token create`), requests send it as the
//! Bearer token without the browser flow.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::examples;
use crate::auth::Endpoints;
use crate::state::AppState;

const SCHEMA: &str = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json";
const CALLBACK: &str = "https://oauth.pstmn.io/v1/callback";
/// The scope the environment starts with: a patient-facing app's.
const DEFAULT_SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs";
/// The sample data's US Core reference patient.
const DEFAULT_PATIENT: &str = "85";
/// How many times the collection polls an export before failing it (one second apart).
const MAX_POLLS: u32 = 60;

pub async fn collection(State(state): State<AppState>) -> Response {
    attachment(
        build_collection(&state.config.base_url),
        "kiln.postman_collection.json",
    )
}

pub async fn environment(State(state): State<AppState>) -> Response {
    attachment(
        build_environment(&state.config.base_url),
        "kiln.postman_environment.json",
    )
}

/// JSON that browsers download under `filename` (for importing into Postman).
fn attachment(body: Value, filename: &str) -> Response {
    let disposition = format!("attachment; filename=\"{filename}\"");
    ([(header::CONTENT_DISPOSITION, disposition)], Json(body)).into_response()
}

fn auth_attribute(key: &str, value: Value) -> Value {
    let kind = if value.is_boolean() {
        "boolean"
    } else {
        "string"
    };
    json!({ "key": key, "value": value, "type": kind })
}

/// The collection's OAuth 2.0 helper, for every request that does not say otherwise.
fn oauth2() -> Value {
    json!({
        "type": "oauth2",
        "oauth2": [
            auth_attribute("grant_type", json!("authorization_code_with_pkce")),
            auth_attribute("authUrl", json!("{{authUrl}}?aud={{fhirBaseUrl}}")),
            auth_attribute("accessTokenUrl", json!("{{tokenUrl}}")),
            auth_attribute("redirect_uri", json!(CALLBACK)),
            auth_attribute("useBrowser", json!(false)),
            auth_attribute("challengeAlgorithm", json!("S256")),
            auth_attribute("client_authentication", json!("body")),
            auth_attribute("clientId", json!("{{clientId}}")),
            auth_attribute("clientSecret", json!("{{clientSecret}}")),
            auth_attribute("scope", json!("{{scope}}")),
            auth_attribute("state", json!("{{$guid}}")),
            auth_attribute("tokenName", json!("Kiln")),
            auth_attribute("addTokenTo", json!("header")),
            auth_attribute("headerPrefix", json!("Bearer")),
            auth_attribute("accessToken", json!("{{accessToken}}")),
        ],
    })
}

/// A test script: each line one JavaScript statement.
fn tests(lines: &[&str]) -> Value {
    json!([{
        "listen": "test",
        "script": { "type": "text/javascript", "exec": lines },
    }])
}

fn status_test(status: u16) -> Vec<String> {
    vec![format!(
        "pm.test('status is {status}', function () {{ pm.response.to.have.status({status}); }});"
    )]
}

/// A GET of `{{fhirBaseUrl}}/{path}` (`path` may carry a query).
fn get(name: &str, path: &str, test_lines: &[String], headers: &[(&str, &str)]) -> Value {
    let raw = format!("{{{{fhirBaseUrl}}}}/{path}");
    request(name, "GET", &raw, test_lines, headers)
}

fn request(
    name: &str,
    method: &str,
    raw: &str,
    test_lines: &[String],
    headers: &[(&str, &str)],
) -> Value {
    let mut header_list = vec![json!({ "key": "Accept", "value": "application/fhir+json" })];
    for (key, value) in headers {
        header_list.retain(|existing| existing["key"] != *key);
        header_list.push(json!({ "key": key, "value": value }));
    }
    let lines: Vec<&str> = test_lines.iter().map(String::as_str).collect();
    json!({
        "name": name,
        "event": tests(&lines),
        "request": {
            "method": method,
            "header": header_list,
            "url": url(raw),
        },
    })
}

/// A Postman URL: under the FHIR base, an object with the path and query split out for the
/// editor; otherwise the string.
fn url(raw: &str) -> Value {
    let (base, query) = raw.split_once('?').unwrap_or((raw, ""));
    let mut value = json!({
        "raw": raw,
        "host": ["{{fhirBaseUrl}}"],
        "path": base
            .strip_prefix("{{fhirBaseUrl}}/")
            .unwrap_or(base)
            .split('/')
            .collect::<Vec<_>>(),
    });
    if !base.starts_with("{{fhirBaseUrl}}") {
        // A variable holding a whole URL: Postman parses the string itself.
        return json!(raw);
    }
    if !query.is_empty() {
        value["query"] = query
            .split('&')
            .map(|pair| {
                let (key, val) = pair.split_once('=').unwrap_or((pair, ""));
                json!({ "key": key, "value": val })
            })
            .collect();
    }
    value
}

fn folder(name: &str, description: &str, items: Vec<Value>) -> Value {
    json!({ "name": name, "description": description, "item": items })
}

fn bundle_test() -> Vec<String> {
    let mut lines = status_test(200);
    lines.push(
        "pm.test('answers a Bundle', function () { pm.expect(pm.response.json().resourceType).to.eql('Bundle'); });"
            .into(),
    );
    lines
}

fn searches() -> Vec<Value> {
    let mut by_type: Vec<(String, Vec<Value>)> = Vec::new();
    for example in examples::all() {
        let name = format!(
            "{} by {}",
            example.resource_type,
            example.params.join(" + ")
        );
        let item = get(
            &name,
            &format!("{}?{}", example.resource_type, example.query),
            &bundle_test(),
            &[],
        );
        match by_type
            .iter_mut()
            .find(|(t, _)| *t == example.resource_type)
        {
            Some((_, items)) => items.push(item),
            None => by_type.push((example.resource_type.clone(), vec![item])),
        }
    }
    by_type
        .into_iter()
        .map(|(resource_type, items)| {
            folder(
                &resource_type,
                &format!("US Core searches on {resource_type}"),
                items,
            )
        })
        .collect()
}

fn bulk_export() -> Vec<Value> {
    let kickoff_tests: Vec<String> = [
        "pm.test('status is 202', function () { pm.response.to.have.status(202); });",
        "pm.collectionVariables.set('exportStatusUrl', pm.response.headers.get('Content-Location'));",
        "pm.collectionVariables.set('exportPolls', 0);",
        "pm.test('Content-Location names the status URL', function () { pm.expect(pm.collectionVariables.get('exportStatusUrl')).to.be.a('string').and.not.empty; });",
    ]
    .map(String::from)
    .to_vec();
    let poll_tests: Vec<String> = vec![
        "const polls = Number(pm.collectionVariables.get('exportPolls') || 0) + 1;".into(),
        "pm.collectionVariables.set('exportPolls', polls);".into(),
        format!("if (pm.response.code === 202 && polls < {MAX_POLLS}) {{"),
        "  pm.test('export in progress (202)', function () { pm.response.to.have.status(202); });".into(),
        "  postman.setNextRequest(pm.info.requestName);".into(),
        "  setTimeout(function () {}, 1000);".into(),
        "} else {".into(),
        "  pm.test('status is 200 (export complete)', function () { pm.response.to.have.status(200); });".into(),
        "  const manifest = pm.response.json();".into(),
        "  pm.test('the manifest lists files', function () { pm.expect(manifest.output).to.be.an('array').that.is.not.empty; });".into(),
        "  pm.collectionVariables.set('exportFileUrl', manifest.output[0].url);".into(),
        "}".into(),
    ];
    let kickoff = get(
        "Kick-off: export Patient and Observation",
        "Patient/$export?_type=Patient,Observation",
        &kickoff_tests,
        &[("Prefer", "respond-async")],
    );
    let poll = request(
        "Poll the export status",
        "GET",
        "{{exportStatusUrl}}",
        &poll_tests,
        &[("Accept", "application/json")],
    );
    let download = request(
        "Download the first file",
        "GET",
        "{{exportFileUrl}}",
        &status_test(200),
        &[("Accept", "application/fhir+ndjson")],
    );
    let delete = request(
        "Delete the export",
        "DELETE",
        "{{exportStatusUrl}}",
        &status_test(202),
        &[],
    );
    vec![kickoff, poll, download, delete]
}

pub fn build_collection(base_url: &str) -> Value {
    let fhir_base = Endpoints::new(base_url).fhir_base;
    let mut metadata = status_test(200);
    metadata.push(
        "pm.test('answers a CapabilityStatement', function () { pm.expect(pm.response.json().resourceType).to.eql('CapabilityStatement'); });"
            .into(),
    );
    let mut discovery = status_test(200);
    discovery.push(
        "pm.test('names the token endpoint', function () { pm.expect(pm.response.json().token_endpoint).to.eql(pm.environment.get('tokenUrl') || pm.response.json().token_endpoint); });"
            .into(),
    );
    let mut read = status_test(200);
    read.push(
        "pm.test('answers the Patient', function () { pm.expect(pm.response.json().id).to.eql(pm.variables.get('patientId')); });"
            .into(),
    );
    let no_auth = json!({ "type": "noauth" });
    let mut metadata_item = get("CapabilityStatement", "metadata", &metadata, &[]);
    metadata_item["request"]["auth"] = no_auth.clone();
    let mut discovery_item = get(
        "SMART configuration",
        ".well-known/smart-configuration",
        &discovery,
        &[("Accept", "application/json")],
    );
    discovery_item["request"]["auth"] = no_auth;
    json!({
        "info": {
            "name": format!("Kiln FHIR API ({fhir_base})"),
            "description": format!(
                "Generated by Kiln for {fhir_base}. Import it with its environment \
                 ({base}/docs/postman/environment.json); see {base}/docs/postman.",
                base = base_url.trim_end_matches('/')
            ),
            "schema": SCHEMA,
        },
        "auth": oauth2(),
        "variable": [
            { "key": "exportStatusUrl", "value": "" },
            { "key": "exportFileUrl", "value": "" },
            { "key": "exportPolls", "value": "0" },
        ],
        "item": [
            folder("Discovery", "Public: no token needed.", vec![metadata_item, discovery_item]),
            folder(
                "Read",
                "A read of the patient in {{patientId}}.",
                vec![get("Read the patient", "Patient/{{patientId}}", &read, &[])],
            ),
            folder(
                "US Core searches",
                "Every US Core search the CapabilityStatement lists that finds sample data \
                 (kiln serve --load-sample-data).",
                searches(),
            ),
            folder(
                "Bulk Data export",
                "Kick-off, poll (at most once a second, a bounded number of times), download, \
                 delete. Needs system/ scopes, or user/ scopes of a practitioner.",
                bulk_export(),
            ),
        ],
    })
}

pub fn build_environment(base_url: &str) -> Value {
    let endpoints = Endpoints::new(base_url);
    let value = |key: &str, value: &str, kind: &str| json!({ "key": key, "value": value, "type": kind, "enabled": true });
    json!({
        "name": format!("Kiln ({})", endpoints.fhir_base),
        "values": [
            value("fhirBaseUrl", &endpoints.fhir_base, "default"),
            value("authUrl", &endpoints.authorize, "default"),
            value("tokenUrl", &endpoints.token, "default"),
            value("clientId", "", "default"),
            value("clientSecret", "", "secret"),
            value("scope", DEFAULT_SCOPE, "default"),
            value("patientId", DEFAULT_PATIENT, "default"),
            value("accessToken", "", "secret"),
        ],
        "_postman_variable_scope": "environment",
    })
}

/// How many requests the collection holds (folders are not requests).
pub fn request_count(item: &Value) -> usize {
    match item.get("item").and_then(Value::as_array) {
        Some(items) => items.iter().map(request_count).sum(),
        None => usize::from(item.get("request").is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collection_has_a_request_per_example_and_tests_each() {
        let collection = build_collection("https://ehr.example/");
        assert_eq!(collection["info"]["schema"], SCHEMA);
        assert_eq!(
            request_count(&collection),
            examples::all().len() + 3 + 4,
            "metadata, discovery, read; four bulk requests"
        );
        let auth = collection["auth"]["oauth2"].as_array().unwrap();
        let attribute = |key: &str| {
            auth.iter()
                .find(|a| a["key"] == key)
                .map(|a| a["value"].clone())
                .unwrap()
        };
        assert_eq!(attribute("authUrl"), "{{authUrl}}?aud={{fhirBaseUrl}}");
        assert_eq!(attribute("challengeAlgorithm"), "S256");
        assert_eq!(attribute("client_authentication"), "body");
        assert_eq!(attribute("redirect_uri"), CALLBACK);
        let environment = build_environment("https://ehr.example/");
        let values = environment["values"].as_array().unwrap();
        assert!(
            values
                .iter()
                .any(|v| v["key"] == "fhirBaseUrl" && v["value"] == "https://ehr.example/fhir")
        );
    }
}
