//! The status URL of a job (poll, manifest, cancel) and the download of its files; only the
//! grant that started a job (its user through its client, or for a backend-started job
//! that backend client) may see it.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::job::JobSpec;
use crate::access::reach::{Access, unauthorized};
use crate::config::ServeConfig;
use crate::fhir::instant::{to_fhir_instant, to_http_date};
use crate::fhir::outcome::{FhirError, FhirResult, IssueCode, informational};
use crate::http::negotiate::FHIR_JSON;
use crate::state::AppState;
use crate::store::{ExportFile, ExportJob, ExportStatus, Store};

const NDJSON: &str = "application/fhir+ndjson";
/// Seconds a client should wait before polling again.
const RETRY_AFTER: &str = "2";

pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    access: Option<Extension<Access>>,
) -> FhirResult<Response> {
    let job = owned_job(&state.store, &id, access).await?;
    let spec: JobSpec = serde_json::from_str(&job.params)
        .map_err(|error| FhirError::internal("reading an export job", error))?;
    let layout = Layout {
        organized: spec.params.organize_by_patient,
    };
    match job.status {
        ExportStatus::Failed => Err(FhirError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueCode::Exception,
            format!(
                "the export failed: {}",
                job.error.as_deref().unwrap_or("unknown error")
            ),
        )),
        _ if spec.params.partial_manifests => {
            let page = manifest_page(query.as_deref(), &id)?;
            partial_manifest(&state, &job, layout, page).await
        }
        ExportStatus::Done => {
            let files = state.store.export_files(&job.id).await?;
            let all: Vec<(usize, &ExportFile)> = files.iter().enumerate().collect();
            Ok(complete(&job, manifest(&state.config, &job, layout, &all)))
        }
        ExportStatus::Queued | ExportStatus::Running | ExportStatus::Cancelled => {
            Ok(in_progress(&job))
        }
    }
}

/// The page of a partial manifest asked for (`?page=N`; the status URL itself is page 0).
fn manifest_page(query: Option<&str>, id: &str) -> FhirResult<i64> {
    let mut page = 0;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name == "page" {
            page = value
                .parse::<i64>()
                .ok()
                .filter(|page| *page >= 0)
                .ok_or_else(|| {
                    FhirError::not_found(format!("export job {id} has no manifest page {value}"))
                })?;
        }
    }
    Ok(page)
}

/// With `allowPartialManifests`, files are handed out as they are finished: each page of
/// the manifest holds the files not handed out before it was first asked for, never changes
/// after that, and links to the next page once there are more files.
async fn partial_manifest(
    state: &AppState,
    job: &ExportJob,
    layout: Layout,
    page: i64,
) -> FhirResult<Response> {
    let mut files = state.store.export_files(&job.id).await?;
    if !files.iter().any(|file| file.page == Some(page)) {
        let next_page = files
            .iter()
            .filter_map(|file| file.page)
            .max()
            .map_or(0, |last| last + 1);
        if page > next_page {
            return Err(FhirError::not_found(format!(
                "export job {} has no manifest page {page}",
                job.id
            )));
        }
        if page == next_page && files.iter().any(|file| file.page.is_none()) {
            state.store.freeze_export_page(&job.id, page).await?;
            files = state.store.export_files(&job.id).await?;
        }
    }
    let done = job.status == ExportStatus::Done;
    let in_page: Vec<(usize, &ExportFile)> = files
        .iter()
        .enumerate()
        .filter(|(_, file)| file.page == Some(page))
        .collect();
    if in_page.is_empty() && !(done && page == 0) {
        return if done {
            Err(FhirError::not_found(format!(
                "export job {} has no manifest page {page}",
                job.id
            )))
        } else {
            Ok(in_progress(job))
        };
    }
    let mut body = manifest(&state.config, job, layout, &in_page);
    if files.iter().any(|file| file.page.is_none_or(|p| p > page)) {
        body["link"] = json!([{
            "relation": "next",
            "url": format!("{}?page={}", status_url(&state.config, &job.id), page + 1),
        }]);
    }
    if done {
        return Ok(complete(job, body));
    }
    let mut response = json_response(StatusCode::ACCEPTED, &body);
    add_progress(&mut response, job);
    Ok(response)
}

/// 202 with the progress (under 100 characters, as the IG asks) while the job runs.
fn in_progress(job: &ExportJob) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    add_progress(&mut response, job);
    response
}

fn add_progress(response: &mut Response, job: &ExportJob) {
    let progress = job.progress.as_deref().unwrap_or(job.status.as_str());
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
    if let Ok(value) = HeaderValue::from_str(&truncate(progress, 99)) {
        headers.insert("x-progress", value);
    }
}

/// 200 with a manifest and the expiry of the files.
fn complete(job: &ExportJob, body: Value) -> Response {
    let mut response = json_response(StatusCode::OK, &body);
    if let Some(expires) = job.expires_at
        && let Ok(value) = HeaderValue::from_str(&to_http_date(expires * 1_000_000))
    {
        response.headers_mut().insert(header::EXPIRES, value);
    }
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

fn status_url(config: &ServeConfig, job_id: &str) -> String {
    format!("{}/$export-status/{job_id}", config.fhir_base())
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    access: Option<Extension<Access>>,
) -> FhirResult<Response> {
    let job = owned_job(&state.store, &id, access).await?;
    // The worker notices at its next lease renewal and stops.
    state.store.delete_export_job(&job.id).await?;
    // The job is gone either way; a retried DELETE could not reach these files any more.
    if let Err(error) = state.exports.remove_job(&job.id).await {
        tracing::warn!(job = %job.id, %error, "could not remove a cancelled export's files");
    }
    let what = match job.status {
        ExportStatus::Done => format!("export job {id} had finished: its files were deleted"),
        ExportStatus::Failed => {
            format!("export job {id} had failed: it and its files were deleted")
        }
        ExportStatus::Queued | ExportStatus::Running | ExportStatus::Cancelled => {
            format!("export job {id} cancelled: it stopped and its files were deleted")
        }
    };
    let body = serde_json::to_vec(&informational(what)).unwrap_or_default();
    Ok((
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        body,
    )
        .into_response())
}

pub async fn file(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, String)>,
    access: Option<Extension<Access>>,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let job = owned_job(&state.store, &id, access).await?;
    let not_found = || FhirError::not_found(format!("export job {id} has no file {index}"));
    if job.status != ExportStatus::Done {
        return Err(not_found());
    }
    let index: usize = index.parse().map_err(|_| not_found())?;
    let files = state.store.export_files(&job.id).await?;
    let entry = files.get(index).ok_or_else(not_found)?;
    let file = state
        .exports
        .open(&job.id, &entry.name)
        .await?
        .ok_or_else(not_found)?;
    let gzip = accepts_gzip(&headers);
    let body = if gzip {
        Body::from_stream(super::stream::gzip(file))
    } else {
        Body::from_stream(file)
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Ok(response)
}

/// The job, if it exists and belongs to the caller; 404 for anyone else.
async fn owned_job(
    store: &Store,
    id: &str,
    access: Option<Extension<Access>>,
) -> FhirResult<ExportJob> {
    let (client_id, username) = match access.map(|Extension(access)| access) {
        None | Some(Access::Nobody) => return Err(unauthorized()),
        Some(Access::Full) => (String::new(), None),
        Some(Access::Token(granted)) => (granted.client_id.clone(), granted.username.clone()),
    };
    let unknown = || FhirError::not_found(format!("there is no export job {id:?}"));
    if !is_job_id(id) {
        return Err(unknown());
    }
    let job = store.export_job(id).await?.ok_or_else(unknown)?;
    // The grant that started it: the same user through the same client, or for a job a
    // backend service started, a backend token (no user) of that client.
    if job.client_id != client_id
        || job.owner_user != username
        || job.status == ExportStatus::Cancelled
    {
        return Err(unknown());
    }
    Ok(job)
}

/// Whether `id` has the shape of a job id (a UUID's hex digits): anything else, such as
/// a NUL byte, is not looked up at all.
fn is_job_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// How the job's output is laid out.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Organized by Patient: output files mix types, so they name none.
    organized: bool,
}

/// The manifest listing `files` (with their index among all the job's files).
fn manifest(
    config: &ServeConfig,
    job: &ExportJob,
    layout: Layout,
    files: &[(usize, &ExportFile)],
) -> Value {
    let base = config.fhir_base();
    let mut output = Vec::new();
    let mut error = Vec::new();
    let mut deleted = Vec::new();
    for (index, file) in files {
        let mut entry = json!({
            "type": file.resource_type,
            "url": format!("{base}/$export-file/{}/{index}", job.id),
            "count": file.count,
        });
        match file.kind.as_str() {
            "error" => error.push(entry),
            "deleted" => deleted.push(entry),
            _ => {
                if layout.organized
                    && let Some(entry) = entry.as_object_mut()
                {
                    entry.remove("type");
                }
                output.push(entry)
            }
        }
    }
    let mut manifest = json!({
        "transactionTime": to_fhir_instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": true,
        "output": output,
        "error": error,
    });
    if layout.organized {
        manifest["outputOrganizedBy"] = json!("Patient");
    }
    if !deleted.is_empty() {
        manifest["deleted"] = Value::Array(deleted);
    }
    manifest
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
