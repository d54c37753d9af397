//! The app registration form (`/developer/apps/new`, `/developer/apps/{app_id}/edit`): reading
//! a posted form (multipart with the logo upload, or urlencoded) into an [`AppRequest`], the
//! logo's checks, and what the page shows — every field with what was typed, the scopes as
//! checkboxes grouped from what the server supports, and each problem next to its field.

use askama::Template;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};

use crate::apps::logo;
use crate::apps::request::{AppRequest, Audience, ClientType, ScopeVersion};
use crate::apps::validate::Problem;
use crate::http::form::Fields;
use crate::state::AppState;
use crate::web::error::{PageError, PageResult};

/// Largest text field read from a multipart form (the pasted JWK Set is the largest).
const MAX_FIELD_BYTES: usize = 128 * 1024;
/// Largest sum of a multipart form's text fields.
const MAX_TEXT_BYTES: usize = 512 * 1024;

/// The launch and identity scopes offered as checkboxes.
const LAUNCH_SCOPES: &[(&str, &str)] = &[
    ("launch", "EHR launch"),
    ("launch/patient", "patient in context (standalone)"),
    ("launch/encounter", "encounter in context (standalone)"),
    ("openid", "OpenID Connect"),
    ("fhirUser", "the user's FHIR resource"),
    ("profile", "the user's profile (v1)"),
    ("offline_access", "refresh tokens that outlive the session"),
    (
        "online_access",
        "refresh tokens while the user is signed in",
    ),
];

/// The resource-scope columns: context prefix and SMART version.
const COLUMNS: &[(&str, ScopeVersion)] = &[
    ("patient", ScopeVersion::V1),
    ("patient", ScopeVersion::V2),
    ("user", ScopeVersion::V1),
    ("user", ScopeVersion::V2),
    ("system", ScopeVersion::V1),
    ("system", ScopeVersion::V2),
];

/// Postman's OAuth 2.0 callbacks: its web and desktop clients and the legacy one.
pub const POSTMAN_CALLBACKS: [&str; 3] = [
    "https://oauth.pstmn.io/v1/callback",
    "https://oauth.pstmn.io/v1/browser-callback",
    "https://www.getpostman.com/oauth2/callback",
];

/// A logo upload: its first bytes (at most one over the limit) and its whole size.
pub struct Upload {
    pub declared: Option<String>,
    pub bytes: Vec<u8>,
    pub size: usize,
}

/// A posted form: its fields and the logo file, if one was chosen.
pub struct Posted {
    pub fields: Fields,
    pub upload: Option<Upload>,
}

/// Reads the form of `request`: `multipart/form-data` (the page's own form, with the logo)
/// or `application/x-www-form-urlencoded`.
pub async fn read(state: &AppState, request: Request) -> PageResult<Posted> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    if !multipart {
        let body = axum::body::to_bytes(request.into_body(), MAX_TEXT_BYTES)
            .await
            .map_err(|_| too_large())?;
        return Ok(Posted {
            fields: Fields::parse(&body),
            upload: None,
        });
    }
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| PageError::bad_request(rejection.body_text()))?;
    let mut fields = Vec::new();
    let mut upload = None;
    let mut text_bytes = 0;
    while let Some(mut field) = form.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "logo_file" {
            let declared = field.content_type().map(str::to_string);
            let chosen = field.file_name().is_some_and(|name| !name.is_empty());
            let mut bytes = Vec::new();
            let mut size = 0;
            while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
                size += chunk.len();
                let room = (logo::MAX_BYTES + 1).saturating_sub(bytes.len());
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            if chosen || size > 0 {
                upload = Some(Upload {
                    declared,
                    bytes,
                    size,
                });
            }
            continue;
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            value.extend_from_slice(&chunk);
            text_bytes += chunk.len();
            if value.len() > MAX_FIELD_BYTES || text_bytes > MAX_TEXT_BYTES {
                return Err(too_large());
            }
        }
        let value = String::from_utf8(value)
            .map_err(|_| PageError::bad_request("The form's text must be UTF-8."))?;
        fields.push((name, value));
    }
    Ok(Posted {
        fields: Fields(fields),
        upload,
    })
}

fn unreadable(error: axum::extract::multipart::MultipartError) -> PageError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large();
    }
    PageError::new(
        StatusCode::BAD_REQUEST,
        "The form could not be read",
        format!("{}. Go back and send the form again.", error.body_text()),
    )
}

/// The form (or its upload) is over what Kiln reads.
pub fn too_large() -> PageError {
    PageError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The form is too large",
        format!(
            "Kiln could not read a form this large. An app logo may be at most {} KiB (PNG or \
             JPEG): go back, choose a smaller file and send the form again.",
            logo::MAX_BYTES / 1024
        ),
    )
}

/// The request the form's fields describe, with `logo` (the digest) as it stands.
pub fn request_of(fields: &Fields, logo: Option<String>) -> AppRequest {
    let text = |name: &str| fields.get(name).unwrap_or("").trim().to_string();
    let audience = match fields.get("audience") {
        Some("patient") => Some(Audience::Patient),
        Some("practitioner") => Some(Audience::Practitioner),
        Some("backend") => Some(Audience::Backend),
        _ => None,
    };
    let client_type = match fields.get("client_type") {
        Some("public") => Some(ClientType::Public),
        Some("confidential-symmetric") => Some(ClientType::ConfidentialSymmetric),
        Some("confidential-asymmetric") => Some(ClientType::ConfidentialAsymmetric),
        _ => None,
    };
    let scope_version = match fields.get("scope_version") {
        Some("v1") => Some(ScopeVersion::V1),
        Some("v2") => Some(ScopeVersion::V2),
        _ => None,
    };
    let redirect_uris = fields
        .get("redirect_uris")
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    let mut scopes: Vec<String> = Vec::new();
    let extra = fields.get("extra_scopes").unwrap_or("");
    for scope in fields.all("scopes").chain(extra.split_whitespace()) {
        let scope = scope.trim();
        if !scope.is_empty() && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    AppRequest {
        audience,
        purpose: text("purpose"),
        intended_users: text("intended_users"),
        contact_name: text("contact_name"),
        contact_email: text("contact_email"),
        name: text("name"),
        description: text("description"),
        logo,
        app_url: text("app_url"),
        privacy_url: text("privacy_url"),
        terms_url: text("terms_url"),
        logout_url: text("logout_url"),
        client_type,
        jwks_uri: text("jwks_uri"),
        jwks: text("jwks"),
        redirect_uris,
        launch_url: text("launch_url"),
        refresh_tokens: fields.get("refresh_tokens") == Some("yes"),
        scope_version,
        scopes,
        sites: text("sites"),
        accepted_terms: fields.get("accepted_terms") == Some("yes"),
    }
}

/// The logo after a post: the upload (checked, then stored), else the current one unless
/// removed. A refused upload keeps the current logo and says why.
pub async fn logo_of(
    state: &AppState,
    fields: &Fields,
    upload: Option<&Upload>,
) -> PageResult<(Option<String>, Option<Problem>)> {
    let current = fields
        .get("logo")
        .filter(|digest| digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase);
    let current = current.filter(|_| fields.get("remove_logo") != Some("yes"));
    let Some(upload) = upload else {
        return Ok((current, None));
    };
    if upload.size > logo::MAX_BYTES {
        let message = format!(
            "the logo is {} KiB; at most {} KiB is accepted",
            upload.size.div_ceil(1024),
            logo::MAX_BYTES / 1024
        );
        return Ok((current, Some(Problem::new("logo", message))));
    }
    match logo::accept(&upload.bytes, upload.declared.as_deref()) {
        Ok(accepted) => {
            let now = crate::fhir::instant::now_secs();
            let digest = logo::store(&state.store, &accepted, now).await?;
            Ok((Some(digest), None))
        }
        Err(message) => Ok((current, Some(Problem::new("logo", message)))),
    }
}

/// One scope checkbox.
pub struct Check {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// One resource type's row of scope checkboxes (one per column).
pub struct ScopeRow {
    pub resource: String,
    pub cells: Vec<Check>,
}

/// What the form shows: the request as typed and its problems.
pub struct Form {
    pub request: AppRequest,
    pub redirect_uris: String,
    pub extra_scopes: String,
    pub launch_scopes: Vec<Check>,
    pub columns: Vec<String>,
    pub rows: Vec<ScopeRow>,
    pub problems: Vec<Problem>,
}

impl Form {
    /// The form for `request`, with checkboxes for `resource_types` (and `*`).
    pub fn new(request: AppRequest, resource_types: &[String], problems: Vec<Problem>) -> Form {
        let mut offered = Vec::new();
        let launch_scopes = LAUNCH_SCOPES
            .iter()
            .map(|(value, label)| {
                offered.push(value.to_string());
                Check {
                    value: value.to_string(),
                    label: format!("{value} — {label}"),
                    checked: request.scopes.iter().any(|s| s == value),
                }
            })
            .collect();
        let mut rows = Vec::new();
        for resource in std::iter::once("*").chain(resource_types.iter().map(String::as_str)) {
            let cells = COLUMNS
                .iter()
                .map(|(context, version)| {
                    let value = match version {
                        ScopeVersion::V1 => format!("{context}/{resource}.read"),
                        ScopeVersion::V2 => format!("{context}/{resource}.rs"),
                    };
                    offered.push(value.clone());
                    Check {
                        checked: request.scopes.contains(&value),
                        label: value.clone(),
                        value,
                    }
                })
                .collect();
            let resource = if resource == "*" {
                "All types (*)".to_string()
            } else {
                resource.to_string()
            };
            rows.push(ScopeRow { resource, cells });
        }
        let extra_scopes = request
            .scopes
            .iter()
            .filter(|scope| !offered.contains(scope))
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        Form {
            redirect_uris: request.redirect_uris.join("\n"),
            extra_scopes,
            launch_scopes,
            columns: COLUMNS
                .iter()
                .map(|(context, version)| {
                    let (verb, v) = match version {
                        ScopeVersion::V1 => (".read", "v1"),
                        ScopeVersion::V2 => (".rs", "v2"),
                    };
                    format!("{context}/ {verb} ({v})")
                })
                .collect(),
            rows,
            request,
            problems,
        }
    }

    /// The problems with `field`, one message (for the page next to the input).
    pub fn error(&self, field: &str) -> Option<String> {
        let messages: Vec<&str> = self
            .problems
            .iter()
            .filter(|p| p.field == field)
            .map(|p| p.message.as_str())
            .collect();
        (!messages.is_empty()).then(|| messages.join("; "))
    }

    pub fn audience(&self) -> &str {
        self.request.audience.map_or("", Audience::as_str)
    }

    pub fn client_type(&self) -> &str {
        self.request.client_type.map_or("", ClientType::as_str)
    }

    pub fn scope_version(&self) -> &str {
        match self.request.scope_version {
            Some(ScopeVersion::V1) => "v1",
            Some(ScopeVersion::V2) => "v2",
            None => "",
        }
    }

    pub fn logo(&self) -> &str {
        self.request.logo.as_deref().unwrap_or("")
    }
}

/// The registration form page.
#[derive(Template)]
#[template(path = "portal/app_form.html")]
pub struct FormPage<'a> {
    pub csrf_token: &'a str,
    pub heading: &'a str,
    /// Where the form posts.
    pub action: &'a str,
    /// The app's page (editing), for the cancel link.
    pub back: &'a str,
    pub form: &'a Form,
    pub notice: Option<&'a str>,
    pub terms_html: &'a str,
    pub sandbox: bool,
    /// Submitted apps are approved without review (`--approval-policy all`).
    pub approves_at_once: bool,
    pub max_logo_kib: usize,
}
