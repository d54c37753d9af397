//! `$export` kick-off at the system, Patient and Group levels: checks the headers,
//! parameters and token, and queues a job.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::job::{JobSpec, grant_access};
use super::members::{group_members, known_patients};
use super::params::{ExportParams, parse, query_pairs};
use crate::access::check::may;
use crate::access::reach::{Access, unauthorized};
use crate::access::scope::{Context, Permission, Scope};
use crate::fhir::instant::now_micros;
use crate::fhir::outcome::{FhirError, FhirResult, IssueCode, informational};
use crate::fhir::validate::resource_types;
use crate::http::extract::IdPath;
use crate::http::negotiate::FHIR_JSON;
use crate::search::has_patient_compartment;
use crate::state::AppState;
use crate::store::{ExportJob, ExportStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    System,
    Patient,
    Group,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::System => "system",
            Level::Patient => "patient",
            Level::Group => "group",
        }
    }
}

/// The parts of a kick-off request every level reads.
pub struct Kickoff {
    access: Access,
    uri: OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

impl Kickoff {
    fn new(
        access: Option<Extension<Access>>,
        uri: OriginalUri,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> Kickoff {
        Kickoff {
            access: access.map_or(Access::Nobody, |Extension(access)| access),
            uri,
            method,
            headers,
            body,
        }
    }
}

pub async fn system(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    uri: OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> FhirResult<Response> {
    let request = Kickoff::new(access, uri, method, headers, body);
    kickoff(&state, request, Level::System, None).await
}

pub async fn patient(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    uri: OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> FhirResult<Response> {
    let request = Kickoff::new(access, uri, method, headers, body);
    kickoff(&state, request, Level::Patient, None).await
}

pub async fn group(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    access: Option<Extension<Access>>,
    uri: OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> FhirResult<Response> {
    let request = Kickoff::new(access, uri, method, headers, body);
    kickoff(&state, request, Level::Group, Some(&id)).await
}

async fn kickoff(
    state: &AppState,
    request: Kickoff,
    level: Level,
    group_id: Option<&str>,
) -> FhirResult<Response> {
    let BulkGrant {
        scope,
        fhir_user,
        client_id,
        username,
    } = bulk_grant(&request.access)?;
    let lenient = check_headers(&request.headers)?;
    let mut params = parse(&request_params(&request)?, lenient)?;
    if level == Level::System && params.patients.is_some() {
        return Err(FhirError::bad_request(
            "patient applies to Patient and Group level exports only",
        )
        .expression_at("patient"));
    }
    if params.organize_by_patient && params.associated.is_some() {
        if !lenient {
            return Err(FhirError::bad_request(
                "includeAssociatedData cannot be combined with organizeOutputBy",
            )
            .expression_at("includeAssociatedData"));
        }
        params.associated = None;
        params
            .ignored
            .push("includeAssociatedData (with organizeOutputBy)".to_owned());
    }
    // The job reads with the token's system/ and user/ scopes only.
    let access = grant_access(scope.as_deref(), fhir_user.as_deref(), &client_id);
    let mut types = export_types(&access, level, &params)?;
    if params.associated.is_some() {
        // Provenance comes with the resources it is about, not as a type of its own.
        may(&access, "Provenance", Permission::Read, false)?;
        types.retain(|t| t != "Provenance");
    }
    let patients = match group_id {
        Some(id) => Some(group_members(state, &access, id, &params).await?),
        None => match &params.patients {
            Some(patients) => Some(known_patients(&state.store, patients).await?),
            None => None,
        },
    };
    let active = state.store.active_export_jobs(&client_id).await?;
    if active >= state.config.export.export_max_jobs {
        let mut response = FhirError::new(
            StatusCode::TOO_MANY_REQUESTS,
            IssueCode::TooCostly,
            format!("this client already has {active} export jobs in progress; try again later"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        return Ok(response);
    }
    let spec = JobSpec {
        params,
        types,
        scope,
        fhir_user,
        patients,
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let job = ExportJob {
        id: id.clone(),
        client_id,
        owner_user: username,
        request_url: format!(
            "{}{}",
            state.config.base_url.trim_end_matches('/'),
            request.uri.0
        ),
        level: level.as_str().to_owned(),
        group_id: group_id.map(str::to_owned),
        params: serde_json::to_string(&spec).unwrap_or_default(),
        status: ExportStatus::Queued,
        progress: None,
        transaction_time: now_micros(),
        error: None,
        created_at: crate::auth::now(),
        expires_at: None,
    };
    state.store.insert_export_job(&job).await?;
    let status_url = format!("{}/$export-status/{id}", state.config.fhir_base());
    let body = serde_json::to_vec(&informational(format!(
        "export job {id} queued; poll {status_url}"
    )))
    .unwrap_or_default();
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    if let Ok(value) = HeaderValue::from_str(&status_url) {
        headers.insert(header::CONTENT_LOCATION, value);
    }
    Ok(response)
}

/// Who starts an export and with what.
struct BulkGrant {
    /// The token's `system/` and `user/` scopes the job runs with (`None`: anonymous).
    scope: Option<String>,
    fhir_user: Option<String>,
    client_id: String,
    /// The signed-in user (`None`: a backend service): the job is theirs through the client.
    username: Option<String>,
}

/// The scopes a job runs with, the user and the client: `system/` scopes, or `user/`
/// scopes of a user who is not a patient. Patient-context tokens may not export.
fn bulk_grant(access: &Access) -> FhirResult<BulkGrant> {
    let granted = match access {
        Access::Nobody => return Err(unauthorized()),
        Access::Full => {
            return Ok(BulkGrant {
                scope: None,
                fhir_user: None,
                client_id: String::new(),
                username: None,
            });
        }
        Access::Token(granted) => granted,
    };
    let practitioner = granted
        .fhir_user
        .as_deref()
        .is_some_and(|user| !user.starts_with("Patient/"));
    let usable = |scope: &Scope| {
        scope.resource().is_some_and(|s| {
            s.context == Context::System || (s.context == Context::User && practitioner)
        })
    };
    let scopes = granted.scopes.filter(usable);
    if scopes.is_empty() {
        return Err(FhirError::new(
            StatusCode::FORBIDDEN,
            IssueCode::Forbidden,
            "Bulk Data export needs system/ scopes, or user/ scopes of a practitioner",
        ));
    }
    Ok(BulkGrant {
        scope: Some(scopes.to_string()),
        fhir_user: granted.fhir_user.clone(),
        client_id: granted.client_id.clone(),
        username: granted.username.clone(),
    })
}

/// `Accept: application/fhir+json` and `Prefer: respond-async` are required; returns
/// whether `Prefer: handling=lenient` was sent.
fn check_headers(headers: &HeaderMap) -> FhirResult<bool> {
    let values = |name: header::HeaderName| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_ascii_lowercase())
            .collect()
    };
    let accepts = values(header::ACCEPT).iter().any(|v| {
        v.split(';')
            .next()
            .is_some_and(|m| m.trim() == "application/fhir+json")
    });
    if !accepts {
        return Err(FhirError::bad_request(
            "$export needs the header Accept: application/fhir+json",
        ));
    }
    let prefer = values(header::HeaderName::from_static("prefer"));
    if !prefer.iter().any(|v| v == "respond-async") {
        return Err(FhirError::bad_request(
            "$export runs asynchronously: send the header Prefer: respond-async",
        ));
    }
    Ok(prefer
        .iter()
        .any(|v| v.replace(' ', "") == "handling=lenient"))
}

/// The query parameters, then those of a POSTed Parameters resource.
fn request_params(request: &Kickoff) -> FhirResult<Vec<(String, Value)>> {
    let mut pairs: Vec<(String, Value)> = query_pairs(request.uri.query().unwrap_or_default())
        .into_iter()
        .map(|(name, value)| {
            let value = if name == "patient" {
                serde_json::json!({ "reference": value })
            } else {
                Value::String(value)
            };
            (name, value)
        })
        .collect();
    if request.method == Method::POST && !request.body.is_empty() {
        let body: Value = serde_json::from_slice(&request.body)
            .map_err(|error| FhirError::bad_request(format!("the body is not JSON: {error}")))?;
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(FhirError::bad_request(
                "a POSTed $export takes a Parameters resource",
            ));
        }
        for parameter in body["parameter"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap_or_default().to_owned();
            let value = parameter
                .as_object()
                .and_then(|p| p.iter().find(|(k, _)| k.starts_with("value")))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            pairs.push((name, value));
        }
    }
    Ok(pairs)
}

/// The types to export: those named by `_type` (each must be allowed: 403 otherwise),
/// or every type of the level the token may read. Patient-level, Group-level and output
/// organized by Patient take the types of the Patient compartment only.
fn export_types(access: &Access, level: Level, params: &ExportParams) -> FhirResult<Vec<String>> {
    let compartment_only = level != Level::System || params.organize_by_patient;
    let in_level = |t: &str| !compartment_only || has_patient_compartment(t);
    if !params.types.is_empty() {
        for resource_type in &params.types {
            if !in_level(resource_type) {
                let what = if level == Level::System {
                    "output organized by Patient"
                } else {
                    level.as_str()
                };
                return Err(FhirError::bad_request(format!(
                    "{resource_type} is not in the Patient compartment, so a {what} export has none"
                ))
                .expression_at("_type"));
            }
            may(access, resource_type, Permission::Read, false)?;
        }
        return Ok(params.types.clone());
    }
    let types: Vec<String> = resource_types()
        .iter()
        .filter(|t| in_level(t) && may(access, t, Permission::Read, false).is_ok())
        .cloned()
        .collect();
    if types.is_empty() {
        return Err(FhirError::new(
            StatusCode::FORBIDDEN,
            IssueCode::Forbidden,
            "the access token's scopes allow reading no type this export could include",
        ));
    }
    Ok(types)
}
