//! One page per resource type, generated from the CapabilityStatement in the application
//! state: its US Core profiles, interactions and operations, the US Core searches (expectation,
//! documentation, and an example URL that finds sample data) and every other search parameter.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::examples;
use super::markdown::to_html;
use crate::state::AppState;
use crate::web::html::html;

const EXPECTATION: &str = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation";

/// A search parameter as the page shows it.
pub struct Param {
    pub name: String,
    pub kind: String,
    pub definition: String,
    /// US Core's SHALL/SHOULD/MAY; `None` for a parameter US Core does not name.
    pub expectation: Option<String>,
    /// US Core's documentation, rendered from its Markdown (raw HTML escaped).
    pub documentation: String,
    pub example: Option<String>,
}

/// A US Core search parameter combination.
pub struct Combination {
    pub params: String,
    pub expectation: String,
    pub example: Option<String>,
}

#[derive(Template)]
#[template(path = "docs/resource.html")]
struct ResourcePage {
    name: String,
    profiles: Vec<String>,
    interactions: Vec<String>,
    operations: Vec<(String, String)>,
    us_core: Vec<Param>,
    others: Vec<Param>,
    combinations: Vec<Combination>,
    fhir_base: String,
}

fn resources(capability: &Value) -> &[Value] {
    capability["rest"][0]["resource"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn strings(values: &Value, field: Option<&str>) -> Vec<String> {
    values
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|value| match field {
            Some(field) => value[field].as_str(),
            None => value.as_str(),
        })
        .map(str::to_owned)
        .collect()
}

fn expectation_of(element: &Value) -> Option<String> {
    element["extension"]
        .as_array()?
        .iter()
        .find(|extension| extension["url"] == EXPECTATION)
        .and_then(|extension| extension["valueCode"].as_str())
        .map(str::to_owned)
}

/// The types with US Core profiles, and the others, each in the CapabilityStatement's order.
pub fn type_names(capability: &Value) -> (Vec<String>, Vec<String>) {
    let mut us_core = Vec::new();
    let mut others = Vec::new();
    for resource in resources(capability) {
        let Some(name) = resource["type"].as_str() else {
            continue;
        };
        if resource["supportedProfile"].is_array() {
            us_core.push(name.to_owned());
        } else {
            others.push(name.to_owned());
        }
    }
    (us_core, others)
}

/// The example URL of a search on this server, if the sample data has one.
fn example_url(fhir_base: &str, resource_type: &str, params: &[&str]) -> Option<String> {
    examples::find(resource_type, params)
        .map(|example| format!("{fhir_base}/{resource_type}?{}", example.query))
}

pub fn page(state: &AppState, name: &str) -> Response {
    let Some(resource) = resources(&state.capability)
        .iter()
        .find(|resource| resource["type"] == name)
    else {
        return super::not_found(&format!("for the resource type {name}"));
    };
    let fhir_base = state.config.fhir_base();
    let (mut us_core, mut others) = (Vec::new(), Vec::new());
    for param in resource["searchParam"].as_array().into_iter().flatten() {
        let param_name = param["name"].as_str().unwrap_or_default().to_owned();
        let expectation = expectation_of(param);
        let row = Param {
            example: expectation
                .as_ref()
                .and_then(|_| example_url(&fhir_base, name, &[param_name.as_str()])),
            kind: param["type"].as_str().unwrap_or_default().to_owned(),
            definition: param["definition"].as_str().unwrap_or_default().to_owned(),
            documentation: to_html(param["documentation"].as_str().unwrap_or_default()),
            expectation,
            name: param_name,
        };
        if row.expectation.is_some() {
            us_core.push(row);
        } else {
            others.push(row);
        }
    }
    let combinations = resource["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|combination| {
            let params = strings(&combination["extension"], Some("valueString"));
            let names: Vec<&str> = params.iter().map(String::as_str).collect();
            Combination {
                example: example_url(&fhir_base, name, &names),
                params: params.join(" + "),
                expectation: expectation_of(combination).unwrap_or_default(),
            }
        })
        .collect();
    let operations = resource["operation"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|operation| {
            (
                operation["name"].as_str().unwrap_or_default().to_owned(),
                operation["definition"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    html(
        StatusCode::OK,
        &ResourcePage {
            name: name.to_owned(),
            profiles: strings(&resource["supportedProfile"], None),
            interactions: strings(&resource["interaction"], Some("code")),
            operations,
            us_core,
            others,
            combinations,
            fhir_base,
        },
    )
}
