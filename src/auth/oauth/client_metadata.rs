//! RFC 7591 client metadata and Kiln's registration request (`crate::apps::AppRequest`):
//! the metadata a client sends read into a request (unknown members ignored, RFC 7591 §2),
//! the request written back as the metadata a registration answer echoes, and the
//! request's problems as an RFC 7591 §3.2.2 error.
//!
//! What the request needs and the metadata cannot say is filled in: who uses the app
//! (`client_credentials` → a backend service; any `user/` scope → practitioners; else
//! patients), the purpose and intended users ("not stated"), and the description, which
//! records `software_id`, `software_version` and `logo_uri` for the reviewer (the logo is
//! not fetched; those three are not echoed). Registering counts as accepting the operator's
//! terms. `contacts` must hold an email address (the first is kept); `token_endpoint_auth_method`
//! defaults to `client_secret_basic` and `grant_types` to `authorization_code` (RFC 7591
//! §2); with `grant_types` not given, an `offline_access` or `online_access` scope asks for
//! refresh tokens.

use serde_json::{Map, Value, json};

use super::endpoint::OAuthError;
use crate::access::scope::Scope;
use crate::apps::Problem;
use crate::apps::request::{AppRequest, Audience, ClientType, ScopeVersion};

/// What the client said it does not need to be told again (RFC 7591 §3.2.1 members Kiln
/// keeps only in the description).
const DESCRIPTION: &str =
    "Registered by the client itself through dynamic client registration (RFC 7591).";
const NOT_STATED: &str = "Not stated: the client registered itself (RFC 7591).";

/// Reads RFC 7591 client metadata into a registration request; a member of the wrong type,
/// an unsupported grant or response type or authentication method, or a software statement
/// is refused here, the rest by the lifecycle's checks.
pub fn to_request(metadata: &Map<String, Value>) -> Result<AppRequest, OAuthError> {
    if let Some(statement) = metadata.get("software_statement") {
        return Err(if statement.is_string() {
            OAuthError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "unapproved_software_statement",
                "this server accepts no software statements: register without one",
            )
        } else {
            OAuthError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_software_statement",
                "software_statement must be a JWT (a string)",
            )
        });
    }
    let given_grants = strings(metadata, "grant_types")?;
    let grants = given_grants
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    for grant in &grants {
        if !["authorization_code", "refresh_token", "client_credentials"].contains(&grant.as_str())
        {
            return Err(OAuthError::invalid_client_metadata(format!(
                "grant_types: {grant} is not supported (authorization_code, refresh_token, client_credentials)"
            )));
        }
    }
    let has = |grant: &str| grants.iter().any(|g| g == grant);
    let backend = has("client_credentials");
    if backend && grants.iter().any(|g| g != "client_credentials") {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types: a client_credentials client (a backend service) has no other grant; register a user-facing app separately",
        ));
    }
    if !backend && !has("authorization_code") {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types: give authorization_code (with refresh_token if wanted) or client_credentials",
        ));
    }
    match (strings(metadata, "response_types")?, backend) {
        (Some(types), true) if !types.is_empty() => {
            return Err(OAuthError::invalid_client_metadata(
                "response_types: a client_credentials client has no response types",
            ));
        }
        (Some(types), false) if types.iter().any(|t| t != "code") || types.is_empty() => {
            return Err(OAuthError::invalid_client_metadata(
                "response_types: only code is supported",
            ));
        }
        _ => {}
    }
    let method = string(metadata, "token_endpoint_auth_method")?;
    let client_type = match method.as_deref().unwrap_or("client_secret_basic") {
        "none" => ClientType::Public,
        "client_secret_basic" | "client_secret_post" => ClientType::ConfidentialSymmetric,
        "private_key_jwt" => ClientType::ConfidentialAsymmetric,
        other => {
            return Err(OAuthError::invalid_client_metadata(format!(
                "token_endpoint_auth_method: {other} is not supported (none, client_secret_basic, client_secret_post, private_key_jwt)"
            )));
        }
    };
    let scopes: Vec<String> = string(metadata, "scope")?
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let scope_version = scopes
        .iter()
        .filter_map(|text| Scope::parse(text)?.version())
        .next()
        .map_or(ScopeVersion::V2, |version| {
            if version == 1 {
                ScopeVersion::V1
            } else {
                ScopeVersion::V2
            }
        });
    let audience = if backend {
        Audience::Backend
    } else if scopes.iter().any(|s| s.starts_with("user/")) {
        Audience::Practitioner
    } else {
        Audience::Patient
    };
    let refresh_tokens = has("refresh_token")
        || (given_grants.is_none()
            && scopes
                .iter()
                .any(|s| s == "offline_access" || s == "online_access"));
    let jwks = match metadata.get("jwks") {
        None | Some(Value::Null) => String::new(),
        Some(value @ Value::Object(_)) => value.to_string(),
        Some(_) => {
            return Err(OAuthError::invalid_client_metadata(
                "jwks: must be a JWK Set (a JSON object with keys)",
            ));
        }
    };
    let contact = strings(metadata, "contacts")?
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.trim().to_string())
        .find(|c| !c.is_empty())
        .unwrap_or_default();
    let mut description = vec![DESCRIPTION.to_string()];
    for (member, label) in [
        ("software_id", "software_id"),
        ("software_version", "software_version"),
        ("logo_uri", "logo_uri (not fetched)"),
    ] {
        if let Some(value) = string(metadata, member)?.filter(|v| !v.trim().is_empty()) {
            description.push(format!("{label}: {}", value.trim()));
        }
    }
    Ok(AppRequest {
        audience: Some(audience),
        purpose: NOT_STATED.into(),
        intended_users: NOT_STATED.into(),
        contact_name: contact.clone(),
        contact_email: contact,
        name: string(metadata, "client_name")?.unwrap_or_default(),
        description: description.join("\n"),
        logo: None,
        app_url: string(metadata, "client_uri")?.unwrap_or_default(),
        privacy_url: string(metadata, "policy_uri")?.unwrap_or_default(),
        terms_url: string(metadata, "tos_uri")?.unwrap_or_default(),
        logout_url: String::new(),
        client_type: Some(client_type),
        jwks_uri: string(metadata, "jwks_uri")?.unwrap_or_default(),
        jwks,
        redirect_uris: strings(metadata, "redirect_uris")?.unwrap_or_default(),
        launch_url: string(metadata, "launch_uri")?.unwrap_or_default(),
        refresh_tokens,
        scope_version: Some(scope_version),
        scopes,
        sites: String::new(),
        accepted_terms: true,
    })
}

/// The RFC 7591 metadata of a registration request, as a registration answer shows it.
pub fn to_metadata(request: &AppRequest) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("client_name".into(), json!(request.name));
    let backend = request.audience == Some(Audience::Backend);
    if !backend {
        out.insert("redirect_uris".into(), json!(request.redirect_uris));
    }
    out.insert("grant_types".into(), json!(request.grant_types()));
    let response_types: &[&str] = if backend { &[] } else { &["code"] };
    out.insert("response_types".into(), json!(response_types));
    let method = match request.client_type {
        Some(ClientType::Public) => "none",
        Some(ClientType::ConfidentialAsymmetric) => "private_key_jwt",
        Some(ClientType::ConfidentialSymmetric) | None => "client_secret_basic",
    };
    out.insert("token_endpoint_auth_method".into(), json!(method));
    out.insert("scope".into(), json!(request.scope()));
    for (member, value) in [
        ("client_uri", &request.app_url),
        ("policy_uri", &request.privacy_url),
        ("tos_uri", &request.terms_url),
        ("launch_uri", &request.launch_url),
        ("jwks_uri", &request.jwks_uri),
    ] {
        if let Some(value) = AppRequest::given(value) {
            out.insert(member.into(), json!(value));
        }
    }
    if let Some(jwks) =
        AppRequest::given(&request.jwks).and_then(|text| serde_json::from_str::<Value>(&text).ok())
    {
        out.insert("jwks".into(), jwks);
    }
    if let Some(contact) = AppRequest::given(&request.contact_email) {
        out.insert("contacts".into(), json!([contact]));
    }
    out
}

/// The client's authentication method is the one thing an update may not change (a new
/// secret could not reach the client once the registration is reviewed).
pub fn same_client_type(old: &AppRequest, new: &AppRequest) -> Result<(), OAuthError> {
    if old.client_type == new.client_type {
        return Ok(());
    }
    Err(OAuthError::invalid_client_metadata(
        "token_endpoint_auth_method cannot change: register a new client instead",
    ))
}

/// The request's problems as one RFC 7591 error naming each metadata member:
/// `invalid_redirect_uri` when a given redirect URI is wrong, else `invalid_client_metadata`.
pub fn problems_error(request: &AppRequest, problems: &[Problem]) -> OAuthError {
    let described: Vec<String> = problems
        .iter()
        // The contact's name is its address: one message about `contacts` is enough.
        .filter(|problem| problem.field != "contact_name")
        .map(|problem| format!("{}: {}", member(&problem.field), problem.message))
        .collect();
    let description = described.join("; ");
    let redirect_problem = problems.iter().any(|p| p.field == "redirect_uris")
        && !request.redirect_uris.is_empty()
        && request.audience != Some(Audience::Backend);
    if redirect_problem {
        OAuthError::invalid_redirect_uri(description)
    } else {
        OAuthError::invalid_client_metadata(description)
    }
}

/// The metadata member a request field comes from.
fn member(field: &str) -> &str {
    match field {
        "name" => "client_name",
        "app_url" => "client_uri",
        "privacy_url" => "policy_uri",
        "terms_url" => "tos_uri",
        "launch_url" => "launch_uri",
        "contact_email" | "contact_name" => "contacts",
        "client_type" => "token_endpoint_auth_method",
        "scopes" | "scope_version" => "scope",
        "audience" => "grant_types",
        "logo" => "logo_uri",
        "description" | "purpose" | "intended_users" => "software_id",
        other => other,
    }
}

/// A string member (absent or `null`: `None`).
fn string(metadata: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    match metadata.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(OAuthError::invalid_client_metadata(format!(
            "{name}: must be a string"
        ))),
    }
}

/// An array-of-strings member (absent or `null`: `None`).
fn strings(metadata: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, OAuthError> {
    let wrong =
        || OAuthError::invalid_client_metadata(format!("{name}: must be an array of strings"));
    match metadata.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::validate;

    fn metadata(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn public_app() -> Value {
        json!({
            "client_name": "Lab Viewer",
            "redirect_uris": ["https://labs.acme-health.com/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "launch/patient openid fhirUser offline_access patient/Observation.rs",
            "client_uri": "https://labs.acme-health.com",
            "policy_uri": "https://labs.acme-health.com/privacy",
            "contacts": ["ada@acme-health.com"],
            "software_id": "lab-viewer",
            "logo_uri": "https://labs.acme-health.com/logo.png",
            "something_else": 42
        })
    }

    #[test]
    fn metadata_maps_onto_a_valid_request_and_back() {
        let request = to_request(&metadata(public_app())).unwrap();
        assert_eq!(request.audience, Some(Audience::Patient));
        assert_eq!(request.client_type, Some(ClientType::Public));
        assert_eq!(request.scope_version, Some(ScopeVersion::V2));
        assert!(request.refresh_tokens);
        assert!(request.description.contains("software_id: lab-viewer"));
        assert!(request.description.contains("logo_uri (not fetched)"));
        let report = validate::submission(&request, false);
        assert!(report.problems.is_empty(), "{report:?}");
        let echoed = to_metadata(&request);
        assert_eq!(echoed["token_endpoint_auth_method"], "none");
        assert_eq!(
            echoed["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(echoed["contacts"], json!(["ada@acme-health.com"]));
        assert!(!echoed.contains_key("software_id"));
        let again = to_request(&echoed).unwrap();
        assert_eq!(again.scopes, request.scopes);
        assert_eq!(again.client_type, request.client_type);
    }

    #[test]
    fn audience_and_defaults_are_inferred() {
        let mut practitioner = metadata(public_app());
        practitioner.insert("scope".into(), json!("launch openid user/Patient.rs"));
        practitioner.remove("grant_types");
        let request = to_request(&practitioner).unwrap();
        assert_eq!(request.audience, Some(Audience::Practitioner));
        assert!(!request.refresh_tokens);
        let mut symmetric = metadata(public_app());
        symmetric.remove("token_endpoint_auth_method");
        assert_eq!(
            to_request(&symmetric).unwrap().client_type,
            Some(ClientType::ConfidentialSymmetric)
        );
        let backend = metadata(json!({
            "client_name": "Exporter",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": []},
            "scope": "system/*.rs",
        }));
        let request = to_request(&backend).unwrap();
        assert_eq!(request.audience, Some(Audience::Backend));
        assert_eq!(request.jwks, r#"{"keys":[]}"#);
        assert_eq!(to_metadata(&request)["response_types"], json!([]));
    }

    #[test]
    fn unsupported_metadata_is_refused_with_its_member_named() {
        for (member, value, expected) in [
            ("response_types", json!(["token"]), "response_types"),
            ("grant_types", json!(["implicit"]), "grant_types"),
            (
                "grant_types",
                json!(["client_credentials", "authorization_code"]),
                "grant_types",
            ),
            ("grant_types", json!(["refresh_token"]), "grant_types"),
            (
                "token_endpoint_auth_method",
                json!("client_secret_jwt"),
                "token_endpoint_auth_method",
            ),
            (
                "redirect_uris",
                json!("https://a.acme-health.com"),
                "redirect_uris",
            ),
            ("client_name", json!(7), "client_name"),
            ("jwks", json!("[]"), "jwks"),
        ] {
            let mut input = metadata(public_app());
            input.insert(member.into(), value);
            let error = to_request(&input).unwrap_err();
            assert_eq!(error.error, "invalid_client_metadata", "{member}");
            assert!(
                error.description.starts_with(expected),
                "{member}: {error:?}"
            );
        }
        let mut statement = metadata(public_app());
        statement.insert("software_statement".into(), json!("eyJ.x.y"));
        assert_eq!(
            to_request(&statement).unwrap_err().error,
            "unapproved_software_statement"
        );
        statement.insert("software_statement".into(), json!(1));
        assert_eq!(
            to_request(&statement).unwrap_err().error,
            "invalid_software_statement"
        );
    }

    #[test]
    fn problems_name_the_metadata_member() {
        let mut input = metadata(public_app());
        input.insert(
            "redirect_uris".into(),
            json!(["https://localhost/callback"]),
        );
        let request = to_request(&input).unwrap();
        let report = validate::submission(&request, false);
        let error = problems_error(&request, &report.problems);
        assert_eq!(error.error, "invalid_redirect_uri");
        assert!(error.description.starts_with("redirect_uris: "));
        input.insert("redirect_uris".into(), json!([]));
        input.remove("contacts");
        let request = to_request(&input).unwrap();
        let report = validate::submission(&request, false);
        let error = problems_error(&request, &report.problems);
        assert_eq!(error.error, "invalid_client_metadata");
        assert!(error.description.contains("contacts: "), "{error:?}");
        assert!(error.description.contains("redirect_uris: "), "{error:?}");
    }
}
