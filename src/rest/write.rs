//! create, update and delete, plain and conditional (PATCH is in [`super::patch`]), and the
//! answer to every write.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::read::{add_version_headers, read_live};
use crate::audit::RecordedWithWrite;
use crate::engine::conditional::{Condition, is_format_param};
use crate::engine::prepare::{Expect, parse_json_object, prepare_resource};
use crate::engine::transaction::{
    Interaction, InteractionResult, ReturnPreference, WriteTarget, execute, parse_etag,
};
use crate::engine::write::WriteOutcome;
use crate::fhir::outcome::{FhirError, FhirResult, informational};
use crate::http::extract::{FhirBody, InstancePath, TypePath};
use crate::http::negotiate::{FhirRequest, json_body, json_value};
use crate::state::AppState;
use crate::store::StoredResource;

pub async fn create(
    State(state): State<AppState>,
    request: FhirRequest,
    TypePath(resource_type): TypePath,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> FhirResult<Response> {
    let resource = read_resource(
        &body,
        Expect::Create {
            resource_type: &resource_type,
        },
    )?;
    let if_none_exist = header_text(&headers, "if-none-exist")?
        .map(|query| Condition::parse(&resource_type, query.trim_start_matches('?')))
        .transpose()?;
    run(
        &state,
        &request,
        Interaction::Create {
            resource_type,
            resource,
            if_none_exist,
        },
    )
    .await
}

pub async fn update(
    State(state): State<AppState>,
    request: FhirRequest,
    InstancePath { resource_type, id }: InstancePath,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> FhirResult<Response> {
    let resource = read_resource(
        &body,
        Expect::Update {
            resource_type: &resource_type,
            id: &id,
        },
    )?;
    run(
        &state,
        &request,
        Interaction::Update {
            target: WriteTarget::Instance { resource_type, id },
            resource,
            if_match: if_match(&headers)?,
        },
    )
    .await
}

pub async fn conditional_update(
    State(state): State<AppState>,
    request: FhirRequest,
    TypePath(resource_type): TypePath,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> FhirResult<Response> {
    let resource = read_resource(&body, Expect::Any)?;
    if resource.get("resourceType").and_then(Value::as_str) != Some(resource_type.as_str()) {
        return Err(FhirError::bad_request(format!(
            "the resourceType does not match the type {resource_type:?} in the URL"
        ))
        .expression_at("resourceType"));
    }
    let (target, if_match) = conditional_target(&resource_type, &request, &headers)?;
    run(
        &state,
        &request,
        Interaction::Update {
            target,
            resource,
            if_match,
        },
    )
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    request: FhirRequest,
    InstancePath { resource_type, id }: InstancePath,
    headers: HeaderMap,
) -> FhirResult<Response> {
    run(
        &state,
        &request,
        Interaction::Delete {
            target: WriteTarget::Instance { resource_type, id },
            if_match: if_match(&headers)?,
        },
    )
    .await
}

pub async fn conditional_delete(
    State(state): State<AppState>,
    request: FhirRequest,
    TypePath(resource_type): TypePath,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let (target, if_match) = conditional_target(&resource_type, &request, &headers)?;
    run(&state, &request, Interaction::Delete { target, if_match }).await
}

fn read_resource(body: &Bytes, expect: Expect<'_>) -> FhirResult<Map<String, Value>> {
    prepare_resource(parse_json_object(body)?, expect)
}

fn header_text(headers: &HeaderMap, name: &str) -> FhirResult<Option<String>> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map(str::to_string)
                .map_err(|_| FhirError::bad_request(format!("the {name} header is not text")))
        })
        .transpose()
}

pub(super) fn if_match(headers: &HeaderMap) -> FhirResult<Option<i64>> {
    match header_text(headers, "if-match")? {
        None => Ok(None),
        Some(tag) => parse_etag(&tag).map(Some).ok_or_else(|| {
            FhirError::bad_request(format!(
                "If-Match {tag:?} is not a version ETag like W/\"3\""
            ))
        }),
    }
}

/// The target and `If-Match` of a conditional update, patch or delete: the match of the query's
/// criteria (besides the formatting parameters).
pub(super) fn conditional_target(
    resource_type: &str,
    request: &FhirRequest,
    headers: &HeaderMap,
) -> FhirResult<(WriteTarget, Option<i64>)> {
    if request.params.iter().all(|(name, _)| is_format_param(name)) {
        return Err(FhirError::bad_request(
            "a conditional update, patch or delete needs search criteria in the URL",
        ));
    }
    let if_match = if_match(headers)?;
    let condition = Condition::from_params(resource_type, &request.params)?;
    Ok((WriteTarget::Conditional(condition), if_match))
}

/// Runs a write through the engine and answers it.
pub(super) async fn run(
    state: &AppState,
    request: &FhirRequest,
    interaction: Interaction,
) -> FhirResult<Response> {
    let result = execute(
        &state.store,
        &state.config.fhir_base(),
        interaction,
        &request.access,
        request.audit.as_ref(),
    )
    .await?;
    let mut response = respond(state, request, result).await?;
    response.extensions_mut().insert(RecordedWithWrite);
    Ok(response)
}

async fn respond(
    state: &AppState,
    request: &FhirRequest,
    result: InteractionResult,
) -> FhirResult<Response> {
    match result {
        InteractionResult::Written(outcome) => Ok(written_response(state, request, outcome)),
        InteractionResult::Existing { resource_type, id } => {
            let stored = read_live(state, request, &resource_type, &id, None).await?;
            Ok(stored_response(state, request, StatusCode::OK, stored))
        }
    }
}

fn written_response(state: &AppState, request: &FhirRequest, outcome: WriteOutcome) -> Response {
    let Some(body) = outcome.body.clone() else {
        // A delete: nothing to show.
        let mut response = match request.preference {
            ReturnPreference::OperationOutcome => json_value(
                StatusCode::OK,
                request.format,
                &informational(if outcome.unchanged {
                    "nothing to delete".to_string()
                } else {
                    format!("{}/{} deleted", outcome.resource_type, outcome.id)
                }),
            ),
            _ => StatusCode::NO_CONTENT.into_response(),
        };
        if !outcome.unchanged
            && let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", outcome.version_id))
        {
            response.headers_mut().insert(header::ETAG, etag);
        }
        return response;
    };
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let stored = StoredResource {
        resource_type: outcome.resource_type,
        id: outcome.id,
        version_id: outcome.version_id,
        last_updated: outcome.last_updated,
        deleted: false,
        body,
        patient: None,
    };
    stored_response(state, request, status, stored)
}

fn stored_response(
    state: &AppState,
    request: &FhirRequest,
    status: StatusCode,
    stored: StoredResource,
) -> Response {
    let location = format!(
        "{}/{}/{}/_history/{}",
        state.config.fhir_base(),
        stored.resource_type,
        stored.id,
        stored.version_id
    );
    let mut headers = HeaderMap::new();
    add_version_headers(&mut headers, &stored);
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location.clone());
        headers.insert(header::CONTENT_LOCATION, location);
    }
    let mut response = match request.preference {
        ReturnPreference::Representation => json_body(status, request.format, stored.body),
        ReturnPreference::Minimal => status.into_response(),
        ReturnPreference::OperationOutcome => json_value(
            status,
            request.format,
            &informational(format!(
                "{}/{} stored as version {}",
                stored.resource_type, stored.id, stored.version_id
            )),
        ),
    };
    response.headers_mut().extend(headers);
    response
}
