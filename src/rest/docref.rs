//! US Core's `DocumentReference/$docref`: a patient's documents, those whose period overlaps
//! `start`..`end` when given, of any of the `type`s when given. Without `start` and `end`,
//! US Core puts "the most recent or current document" in scope: the patient's `current`
//! documents, or when none is current the most recent one (by `date`, then last update).
//! GET takes the parameters in the query; POST in a `Parameters` body. `on-demand` and
//! `profile` are accepted and answered with the stored documents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use crate::engine::prepare::parse_json_object;
use crate::engine::search::{SearchRequest, searchset};
use crate::fhir::id::is_valid_id;
use crate::fhir::outcome::{FhirError, FhirResult};
use crate::http::extract::FhirBody;
use crate::http::negotiate::{FhirRequest, json_value};
use crate::search::date_range;
use crate::state::AppState;

/// URL parameters that shape the response or page it, not the operation's inputs.
const PAGING: [&str; 4] = ["_count", "_cursor", "_format", "_pretty"];

pub async fn docref(State(state): State<AppState>, request: FhirRequest) -> FhirResult<Response> {
    let mut inputs = Inputs::default();
    for (name, value) in &request.params {
        inputs.add_query(name, value)?;
    }
    run(&state, &request, &inputs, &request.params).await
}

pub async fn docref_post(
    State(state): State<AppState>,
    request: FhirRequest,
    FhirBody(body): FhirBody,
) -> FhirResult<Response> {
    let mut inputs = Inputs::default();
    for (name, value) in &request.params {
        if !PAGING.contains(&name.as_str()) {
            return Err(invalid(
                name,
                format!("POST $docref takes {name:?} in its Parameters body, not in the URL"),
            ));
        }
        inputs.add_query(name, value)?;
    }
    for parameter in parameters(&parse_json_object(&body)?)? {
        inputs.add_parameter(parameter)?;
    }
    // The paging links are GETs with the same inputs.
    let mut link_params = inputs.query();
    link_params.extend(request.params.iter().cloned());
    run(&state, &request, &inputs, &link_params).await
}

async fn run(
    state: &AppState,
    request: &FhirRequest,
    inputs: &Inputs,
    link_params: &[(String, String)],
) -> FhirResult<Response> {
    let base = state.config.fhir_base();
    let answer = |params: Vec<(String, String)>| {
        let base = &base;
        async move {
            searchset(
                &state.store,
                &SearchRequest {
                    resource_type: Some("DocumentReference"),
                    params: &params,
                    patient_compartment: None,
                    strict: true,
                    limits: state.page_limits(),
                    base,
                    link: Some(("DocumentReference/$docref", link_params)),
                    access: &request.access,
                },
            )
            .await
        }
    };
    let mut bundle = answer(inputs.search()?).await?;
    if inputs.undated() && !inputs.paged() && !has_matches(&bundle) {
        // No current document: the most recent one, alone.
        bundle = answer(inputs.latest()?).await?;
        if let Some(links) = bundle["link"].as_array_mut() {
            links.retain(|link| link["relation"] != "next");
        }
        bundle["total"] = Value::from(u8::from(has_matches(&bundle)));
    }
    Ok(json_value(StatusCode::OK, request.format, &bundle))
}

fn has_matches(bundle: &Value) -> bool {
    bundle["entry"]
        .as_array()
        .is_some_and(|entries| entries.iter().any(|e| e["search"]["mode"] == "match"))
}

/// The operation's inputs, from either form.
#[derive(Default)]
struct Inputs {
    patient: Option<String>,
    start: Option<String>,
    end: Option<String>,
    /// Tokens (`system|code`), any of which a document's type may match.
    types: Vec<String>,
    /// `_count` and `_cursor`.
    paging: Vec<(String, String)>,
}

impl Inputs {
    fn add_query(&mut self, name: &str, value: &str) -> FhirResult<()> {
        match name {
            "patient" => set_once(&mut self.patient, name, checked_id(value)?),
            "start" => set_once(&mut self.start, name, checked_date(name, value)?),
            "end" => set_once(&mut self.end, name, checked_date(name, value)?),
            "type" => {
                if !value.is_empty() {
                    self.types.push(value.to_string());
                }
                Ok(())
            }
            "_count" | "_cursor" => {
                self.paging.push((name.to_string(), value.to_string()));
                Ok(())
            }
            "on-demand" => match value {
                "true" | "false" => Ok(()),
                _ => Err(invalid(name, "on-demand must be true or false")),
            },
            "profile" | "_format" | "_pretty" => Ok(()),
            other => Err(unknown(other)),
        }
    }

    fn add_parameter(&mut self, parameter: Parameter<'_>) -> FhirResult<()> {
        let name = parameter.name;
        match name {
            "patient" => {
                let id = checked_id(parameter.string("valueId")?)?;
                set_once(&mut self.patient, name, id)
            }
            "start" | "end" => {
                let date = checked_date(name, parameter.string("valueDateTime")?)?;
                let slot = if name == "start" {
                    &mut self.start
                } else {
                    &mut self.end
                };
                set_once(slot, name, date)
            }
            "type" => {
                self.types
                    .push(coding_token(parameter.object("valueCoding")?)?);
                Ok(())
            }
            "on-demand" => parameter
                .value("valueBoolean")?
                .as_bool()
                .map(drop)
                .ok_or_else(|| invalid(name, "on-demand must be a valueBoolean")),
            "profile" => parameter.string("valueCanonical").map(drop),
            other => Err(unknown(other)),
        }
    }

    /// The DocumentReference search answering the operation: undated, the current
    /// documents.
    fn search(&self) -> FhirResult<Vec<(String, String)>> {
        let mut params = self.patient_and_types()?;
        if let Some(start) = &self.start {
            params.push(("period".into(), format!("ge{start}")));
        }
        if let Some(end) = &self.end {
            params.push(("period".into(), format!("le{end}")));
        }
        if self.undated() {
            params.push(("status".into(), "current".into()));
        }
        params.extend(self.paging.iter().cloned());
        Ok(params)
    }

    /// Neither `start` nor `end`.
    fn undated(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }

    /// A later page (of the current documents).
    fn paged(&self) -> bool {
        self.paging.iter().any(|(name, _)| name == "_cursor")
    }

    /// The search for the patient's most recent document (of the types).
    fn latest(&self) -> FhirResult<Vec<(String, String)>> {
        let mut params = self.patient_and_types()?;
        params.push(("_sort".into(), "-date,-_lastUpdated".into()));
        params.push(("_count".into(), "1".into()));
        Ok(params)
    }

    fn patient_and_types(&self) -> FhirResult<Vec<(String, String)>> {
        let patient = self.patient.clone().ok_or_else(|| {
            FhirError::bad_request("$docref needs the patient parameter").expression_at("patient")
        })?;
        let mut params = vec![("patient".to_string(), patient)];
        if !self.types.is_empty() {
            params.push(("type".into(), self.types.join(",")));
        }
        Ok(params)
    }

    /// The operation's inputs as GET parameters.
    fn query(&self) -> Vec<(String, String)> {
        let single = [
            ("patient", &self.patient),
            ("start", &self.start),
            ("end", &self.end),
        ];
        single
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.clone()?)))
            .chain(
                self.types
                    .iter()
                    .map(|token| ("type".to_string(), token.clone())),
            )
            .collect()
    }
}

fn invalid(name: &str, message: impl Into<String>) -> FhirError {
    FhirError::bad_request(message).expression_at(name.to_string())
}

fn unknown(name: &str) -> FhirError {
    invalid(
        name,
        format!("$docref takes patient, start, end, type, on-demand and profile, not {name:?}"),
    )
}

fn set_once(slot: &mut Option<String>, name: &str, value: String) -> FhirResult<()> {
    if slot.is_some() {
        return Err(invalid(name, format!("$docref takes {name} once")));
    }
    *slot = Some(value);
    Ok(())
}

fn checked_id(value: &str) -> FhirResult<String> {
    if is_valid_id(value) {
        Ok(value.to_string())
    } else {
        Err(invalid(
            "patient",
            format!("patient {value:?} is not a Patient id ([A-Za-z0-9-.]{{1,64}})"),
        ))
    }
}

fn checked_date(name: &str, value: &str) -> FhirResult<String> {
    if date_range(value).is_some() {
        Ok(value.to_string())
    } else {
        Err(invalid(
            name,
            format!("{name} {value:?} is not a FHIR dateTime"),
        ))
    }
}

/// A Coding as a search token: `system|code`, `system|` or `code`.
fn coding_token(coding: &Map<String, Value>) -> FhirResult<String> {
    let part = |key: &str| match coding.get(key) {
        None => Ok(None),
        Some(Value::String(text)) if !text.is_empty() => Ok(Some(escape(text))),
        Some(_) => Err(invalid(
            "type",
            format!("type's Coding.{key} must be a string"),
        )),
    };
    match (part("system")?, part("code")?) {
        (Some(system), code) => Ok(format!("{system}|{}", code.unwrap_or_default())),
        (None, Some(code)) => Ok(code),
        (None, None) => Err(invalid("type", "type's Coding needs a system or a code")),
    }
}

/// Escapes the characters that separate search values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | ',' | '|' | '$') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One `Parameters.parameter`: its name and its `value[x]`.
struct Parameter<'a> {
    name: &'a str,
    value_key: &'a str,
    value: &'a Value,
}

impl<'a> Parameter<'a> {
    /// The value, which must be of the `expected` choice (`valueDateTime`, …).
    fn value(&self, expected: &str) -> FhirResult<&'a Value> {
        if self.value_key == expected {
            Ok(self.value)
        } else {
            Err(invalid(
                self.name,
                format!(
                    "{} must be a {expected}, not a {}",
                    self.name, self.value_key
                ),
            ))
        }
    }

    fn string(&self, expected: &str) -> FhirResult<&'a str> {
        self.value(expected)?
            .as_str()
            .ok_or_else(|| invalid(self.name, format!("{expected} must be a string")))
    }

    fn object(&self, expected: &str) -> FhirResult<&'a Map<String, Value>> {
        self.value(expected)?
            .as_object()
            .ok_or_else(|| invalid(self.name, format!("{expected} must be an object")))
    }
}

/// The parameters of a `Parameters` body, each with a name and exactly one `value[x]`.
fn parameters(body: &Map<String, Value>) -> FhirResult<Vec<Parameter<'_>>> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(invalid(
            "resourceType",
            "POST $docref takes a Parameters resource",
        ));
    }
    let list = match body.get("parameter") {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(invalid(
                "parameter",
                "Parameters.parameter must be an array",
            ));
        }
    };
    list.iter().map(parameter).collect()
}

fn parameter(entry: &Value) -> FhirResult<Parameter<'_>> {
    let Some(entry) = entry.as_object() else {
        return Err(invalid(
            "parameter",
            "each Parameters.parameter must be an object",
        ));
    };
    let Some(name) = entry.get("name").and_then(Value::as_str) else {
        return Err(invalid(
            "parameter",
            "each Parameters.parameter needs a name",
        ));
    };
    let mut values = entry
        .iter()
        .filter(|(key, _)| key.starts_with("value") || *key == "resource" || *key == "part");
    match (values.next(), values.next()) {
        (Some((value_key, value)), None) => Ok(Parameter {
            name,
            value_key,
            value,
        }),
        _ => Err(invalid(
            name,
            format!("parameter {name:?} needs exactly one value[x]"),
        )),
    }
}
