//! The checks of a registration request, as a list of problems (each for one field, so a form
//! can show it next to its input) and warnings for the reviewing admin. A draft needs only a
//! name; a submission needs every field right. The JWKS URL is fetched separately, at
//! submission (`jwks_check`); a pasted JWK Set is checked here.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::jwks_check;
use super::request::{AppRequest, Audience, ClientType, ScopeVersion};
use crate::access::scope::{Context, Scope};

/// Longest app name.
pub const MAX_NAME: usize = 100;
/// Longest description, purpose or list of sites.
pub const MAX_TEXT: usize = 4000;
/// Longest URL.
pub const MAX_URL: usize = 2000;
/// Most redirect URIs; more than [`MANY_REDIRECT_URIS`] is only a warning.
pub const MAX_REDIRECT_URIS: usize = 20;
pub const MANY_REDIRECT_URIS: usize = 5;
/// Most scopes.
pub const MAX_SCOPES: usize = 100;
/// Largest pasted JWK Set, in bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// One thing wrong with (or, as a warning, worth a reviewer's look in) a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The `AppRequest` field, e.g. `redirect_uris`.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: &str, message: impl Into<String>) -> Problem {
        Problem {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// The outcome of checking a submission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// What must be fixed before the request can be submitted.
    pub problems: Vec<Problem>,
    /// What the reviewer should look at (not errors).
    pub warnings: Vec<Problem>,
}

/// Checks a draft: a name, and nothing over its size limit.
pub fn draft(request: &AppRequest) -> Vec<Problem> {
    let mut problems = Vec::new();
    if request.name.trim().is_empty() {
        problems.push(Problem::new("name", "give the app a name"));
    }
    sizes(request, &mut problems);
    problems
}

/// Checks a request for submission; `sandbox` allows loopback URLs and placeholder hosts.
pub fn submission(request: &AppRequest, sandbox: bool) -> Report {
    let mut report = Report {
        problems: draft(request),
        warnings: Vec::new(),
    };
    let problems = &mut report.problems;
    for (field, value, what) in [
        (
            "purpose",
            &request.purpose,
            "describe what the app does with the data",
        ),
        (
            "intended_users",
            &request.intended_users,
            "say who will use the app",
        ),
        ("contact_name", &request.contact_name, "give a contact name"),
        ("description", &request.description, "describe the app"),
    ] {
        if value.trim().is_empty() {
            problems.push(Problem::new(field, what));
        }
    }
    if !is_email(request.contact_email.trim()) {
        problems.push(Problem::new(
            "contact_email",
            "give a contact email address (name@domain)",
        ));
    }
    if request
        .logo
        .as_deref()
        .is_some_and(|digest| digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        problems.push(Problem::new("logo", "upload the logo again"));
    }
    let Some(audience) = request.audience else {
        problems.push(Problem::new(
            "audience",
            "choose who uses the app: patients, practitioners or a backend service",
        ));
        return report;
    };
    let with_users = audience != Audience::Backend;
    for (field, value, required) in [
        ("app_url", &request.app_url, with_users),
        ("privacy_url", &request.privacy_url, with_users),
        ("terms_url", &request.terms_url, false),
        ("logout_url", &request.logout_url, false),
        ("launch_url", &request.launch_url, false),
    ] {
        if let Err(message) = web_url(value, required, sandbox) {
            problems.push(Problem::new(field, message));
        }
    }
    client_type(request, audience, sandbox, problems);
    redirect_uris(request, audience, sandbox, &mut report);
    scopes(request, audience, &mut report.problems);
    if !request.accepted_terms {
        report
            .problems
            .push(Problem::new("accepted_terms", "accept the terms of use"));
    }
    report
}

fn sizes(request: &AppRequest, problems: &mut Vec<Problem>) {
    if request.name.chars().count() > MAX_NAME {
        problems.push(Problem::new(
            "name",
            format!("at most {MAX_NAME} characters"),
        ));
    }
    for (field, value) in [
        ("purpose", &request.purpose),
        ("intended_users", &request.intended_users),
        ("contact_name", &request.contact_name),
        ("contact_email", &request.contact_email),
        ("description", &request.description),
        ("sites", &request.sites),
    ] {
        if value.chars().count() > MAX_TEXT {
            problems.push(Problem::new(
                field,
                format!("at most {MAX_TEXT} characters"),
            ));
        }
    }
    for (field, value) in [
        ("app_url", &request.app_url),
        ("privacy_url", &request.privacy_url),
        ("terms_url", &request.terms_url),
        ("logout_url", &request.logout_url),
        ("launch_url", &request.launch_url),
        ("jwks_uri", &request.jwks_uri),
    ] {
        if value.len() > MAX_URL {
            problems.push(Problem::new(field, format!("at most {MAX_URL} characters")));
        }
    }
    if request.redirect_uris.len() > MAX_REDIRECT_URIS
        || request.redirect_uris.iter().any(|uri| uri.len() > MAX_URL)
    {
        problems.push(Problem::new(
            "redirect_uris",
            format!("at most {MAX_REDIRECT_URIS} URIs of at most {MAX_URL} characters"),
        ));
    }
    if request.scopes.len() > MAX_SCOPES || request.scopes.iter().any(|s| s.len() > MAX_URL) {
        problems.push(Problem::new(
            "scopes",
            format!("at most {MAX_SCOPES} scopes"),
        ));
    }
    if request.jwks.len() > MAX_JWKS_BYTES {
        problems.push(Problem::new(
            "jwks",
            format!("the JWK Set is larger than {MAX_JWKS_BYTES} bytes"),
        ));
    }
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Where a URL's host points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// `localhost`, `*.localhost`, 127.0.0.0/8, `::1`.
    Loopback,
    /// Reserved for documentation and tests: example.com/.org/.net and their subdomains,
    /// `*.example`, `*.test`, `*.invalid`, `*.local`.
    Placeholder,
    Other,
}

pub fn host_kind(url: &Url) -> HostKind {
    match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => HostKind::Loopback,
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => HostKind::Loopback,
        Some(url::Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            let under = |suffix: &str| domain == suffix || domain.ends_with(&format!(".{suffix}"));
            if under("localhost") {
                HostKind::Loopback
            } else if ["example.com", "example.org", "example.net"]
                .iter()
                .chain(["example", "test", "invalid", "local"].iter())
                .any(|suffix| under(suffix))
            {
                HostKind::Placeholder
            } else {
                HostKind::Other
            }
        }
        _ => HostKind::Other,
    }
}

/// Checks a web URL (app, privacy, terms, logout, launch, JWKS): https, or http on loopback
/// in a sandbox; outside a sandbox, no loopback or placeholder host.
pub fn web_url(text: &str, required: bool, sandbox: bool) -> Result<(), String> {
    let text = text.trim();
    if text.is_empty() {
        return if required {
            Err("required".into())
        } else {
            Ok(())
        };
    }
    let url = Url::parse(text).map_err(|error| format!("not a valid URL: {error}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a URL must not carry a user name or password".into());
    }
    if url.host().is_none() {
        return Err("the URL has no host".into());
    }
    let kind = host_kind(&url);
    match url.scheme() {
        "https" => {}
        "http" if sandbox && kind == HostKind::Loopback => {}
        "http" if kind == HostKind::Loopback => {
            return Err("http loopback URLs are allowed on the sandbox only; use https".into());
        }
        _ => return Err("must be an https URL".into()),
    }
    if !sandbox {
        hosted_for_production(kind)?;
    }
    Ok(())
}

fn hosted_for_production(kind: HostKind) -> Result<(), String> {
    match kind {
        HostKind::Loopback => Err(
            "localhost and loopback addresses are not allowed in production (the sandbox allows them)"
                .into(),
        ),
        HostKind::Placeholder => Err(
            "placeholder hosts (example.com, *.test, *.invalid, *.local…) are not allowed in production"
                .into(),
        ),
        HostKind::Other => Ok(()),
    }
}

/// Checks one redirect URI: an exact absolute URI without fragment; https (production: no
/// loopback or placeholder host); http only on loopback in a sandbox; a private-use scheme
/// (RFC 8252 §7.1: reverse domain name, so it contains a dot) only for public (native)
/// apps. `Ok(Some(warning))` for an acceptable URI a reviewer should look at.
pub fn redirect_uri(
    text: &str,
    client_type: Option<ClientType>,
    sandbox: bool,
) -> Result<Option<String>, String> {
    if text != text.trim() || text.is_empty() {
        return Err("a redirect URI must not be empty or have spaces around it".into());
    }
    let url = Url::parse(text).map_err(|error| format!("not a valid URI: {error}"))?;
    if url.fragment().is_some() || text.contains('#') {
        return Err("a redirect URI must not have a fragment (#…)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a redirect URI must not carry a user name or password".into());
    }
    let kind = host_kind(&url);
    match url.scheme() {
        "https" => {
            if url.host().is_none() {
                return Err("the URI has no host".into());
            }
            if !sandbox {
                hosted_for_production(kind)?;
            }
            Ok(None)
        }
        "http" if kind == HostKind::Loopback && sandbox => Ok(None),
        "http" if kind == HostKind::Loopback => {
            Err("http loopback redirect URIs are allowed on the sandbox only; use https".into())
        }
        "http" => Err("a redirect URI must use https".into()),
        scheme if scheme.contains('.') => {
            if client_type != Some(ClientType::Public) {
                return Err(
                    "a private-use URI scheme (RFC 8252) is for public native apps only".into(),
                );
            }
            Ok(Some(format!(
                "private-use URI scheme {scheme}: check that it is a domain the developer owns, reversed"
            )))
        }
        _ => Err(
            "a redirect URI must use https, or a private-use scheme in reverse-domain form (com.example.app:/callback)"
                .into(),
        ),
    }
}

fn client_type(
    request: &AppRequest,
    audience: Audience,
    sandbox: bool,
    problems: &mut Vec<Problem>,
) {
    let Some(client_type) = request.client_type else {
        problems.push(Problem::new(
            "client_type",
            "choose how the app authenticates: public, shared secret or key pair",
        ));
        return;
    };
    if audience == Audience::Backend && client_type != ClientType::ConfidentialAsymmetric {
        problems.push(Problem::new(
            "client_type",
            "a backend service authenticates with a key pair (confidential-asymmetric, SMART Backend Services)",
        ));
    }
    let uri = request.jwks_uri.trim();
    let pasted = request.jwks.trim();
    if client_type != ClientType::ConfidentialAsymmetric {
        if !uri.is_empty() {
            problems.push(Problem::new(
                "jwks_uri",
                "only a confidential-asymmetric app has a JWK Set",
            ));
        }
        if !pasted.is_empty() {
            problems.push(Problem::new(
                "jwks",
                "only a confidential-asymmetric app has a JWK Set",
            ));
        }
        return;
    }
    match (uri.is_empty(), pasted.is_empty()) {
        (true, true) => problems.push(Problem::new(
            "jwks_uri",
            "give the URL of the app's JWK Set, or paste the JWK Set",
        )),
        (false, false) => problems.push(Problem::new(
            "jwks",
            "give either a JWK Set URL or a pasted JWK Set, not both",
        )),
        (false, true) => {
            if let Err(message) = web_url(uri, true, sandbox) {
                problems.push(Problem::new("jwks_uri", message));
            }
        }
        (true, false) => {
            if let Err(message) = jwks_check::check_text(pasted).verdict() {
                problems.push(Problem::new("jwks", message));
            }
        }
    }
}

fn redirect_uris(request: &AppRequest, audience: Audience, sandbox: bool, report: &mut Report) {
    if audience == Audience::Backend {
        if !request.redirect_uris.is_empty() {
            report.problems.push(Problem::new(
                "redirect_uris",
                "a backend service has no redirect URIs",
            ));
        }
        return;
    }
    if request.redirect_uris.is_empty() {
        report.problems.push(Problem::new(
            "redirect_uris",
            "give at least one redirect URI",
        ));
    }
    for (index, uri) in request.redirect_uris.iter().enumerate() {
        if request.redirect_uris[..index].contains(uri) {
            report.problems.push(Problem::new(
                "redirect_uris",
                format!("{uri}: listed twice"),
            ));
            continue;
        }
        match redirect_uri(uri, request.client_type, sandbox) {
            Ok(None) => {}
            Ok(Some(warning)) => report
                .warnings
                .push(Problem::new("redirect_uris", format!("{uri}: {warning}"))),
            Err(message) => report
                .problems
                .push(Problem::new("redirect_uris", format!("{uri}: {message}"))),
        }
    }
    if request.redirect_uris.len() > MANY_REDIRECT_URIS {
        report.warnings.push(Problem::new(
            "redirect_uris",
            format!(
                "{} redirect URIs: check that each is needed",
                request.redirect_uris.len()
            ),
        ));
    }
}

/// Scopes: each one Kiln supports, all of the request's SMART version, fitting the audience,
/// and `offline_access`/`online_access` only with refresh tokens.
fn scopes(request: &AppRequest, audience: Audience, problems: &mut Vec<Problem>) {
    let field = "scopes";
    let Some(version) = request.scope_version else {
        problems.push(Problem::new(
            "scope_version",
            "choose SMART v1 or v2 scopes",
        ));
        return;
    };
    let wanted = match version {
        ScopeVersion::V1 => 1,
        ScopeVersion::V2 => 2,
    };
    let mut versions = Vec::new();
    let mut resource_scopes = 0;
    for text in &request.scopes {
        let Some(scope) = Scope::parse(text.trim()) else {
            problems.push(Problem::new(
                field,
                format!("{text}: not a scope this server supports"),
            ));
            continue;
        };
        if let Some(found) = scope.version() {
            resource_scopes += 1;
            if !versions.contains(&found) {
                versions.push(found);
            }
        }
        if let Some(message) = audience_refusal(&scope, audience, request.refresh_tokens) {
            problems.push(Problem::new(field, format!("{text}: {message}")));
        }
    }
    if versions.len() > 1 {
        problems.push(Problem::new(
            field,
            "mixed SMART v1 (.read/.write) and v2 (.cruds) scopes: use one version only",
        ));
    } else if versions.first().is_some_and(|found| *found != wanted) {
        problems.push(Problem::new(
            field,
            format!(
                "the scopes are SMART v{} but the request says v{wanted}",
                versions[0]
            ),
        ));
    }
    if resource_scopes == 0 {
        problems.push(Problem::new(
            field,
            "ask for at least one resource scope (e.g. patient/Observation.rs)",
        ));
    }
}

fn audience_refusal(scope: &Scope, audience: Audience, refresh_tokens: bool) -> Option<String> {
    let context = scope.resource().map(|resource| resource.context);
    match (audience, context) {
        (Audience::Patient, Some(Context::System | Context::User)) => {
            return Some("a patient app may ask only for patient/ scopes".into());
        }
        (Audience::Practitioner, Some(Context::System)) => {
            return Some("system/ scopes are for backend services".into());
        }
        (Audience::Backend, Some(Context::Patient | Context::User)) => {
            return Some("a backend service may ask only for system/ scopes".into());
        }
        (Audience::Backend, None) => {
            return Some("a backend service has no user or launch: only system/ scopes".into());
        }
        _ => {}
    }
    if matches!(scope, Scope::OfflineAccess | Scope::OnlineAccess) && !refresh_tokens {
        return Some("needs refresh tokens: choose refresh tokens yes, or drop this scope".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete, valid patient app request.
    pub fn patient_app() -> AppRequest {
        AppRequest {
            audience: Some(Audience::Patient),
            purpose: "Shows patients their lab results".into(),
            intended_users: "Patients of the clinic".into(),
            contact_name: "Ada".into(),
            contact_email: "ada@labs.acme-health.com".into(),
            name: "Lab Viewer".into(),
            description: "Charts lab results".into(),
            app_url: "https://labs.acme-health.com".into(),
            privacy_url: "https://labs.acme-health.com/privacy".into(),
            client_type: Some(ClientType::Public),
            redirect_uris: vec!["https://labs.acme-health.com/callback".into()],
            scope_version: Some(ScopeVersion::V2),
            scopes: vec![
                "launch/patient".into(),
                "openid".into(),
                "fhirUser".into(),
                "patient/Observation.rs".into(),
            ],
            accepted_terms: true,
            ..AppRequest::default()
        }
    }

    fn fields(report: &Report) -> Vec<&str> {
        report.problems.iter().map(|p| p.field.as_str()).collect()
    }

    fn with(change: impl FnOnce(&mut AppRequest)) -> AppRequest {
        let mut request = patient_app();
        change(&mut request);
        request
    }

    #[test]
    fn a_complete_request_passes_and_a_draft_needs_only_a_name() {
        assert_eq!(submission(&patient_app(), false), Report::default());
        let empty = AppRequest::default();
        assert_eq!(draft(&empty)[0].field, "name");
        assert!(
            draft(&with(|r| *r = AppRequest {
                name: "X".into(),
                ..AppRequest::default()
            }))
            .is_empty()
        );
        let report = submission(
            &AppRequest {
                name: "X".into(),
                ..AppRequest::default()
            },
            false,
        );
        assert!(fields(&report).contains(&"audience"));
        assert!(fields(&report).contains(&"contact_email"));
        let long = with(|r| r.name = "n".repeat(MAX_NAME + 1));
        assert_eq!(draft(&long)[0].field, "name");
    }

    #[test]
    fn loopback_is_refused_in_production_and_allowed_in_the_sandbox() {
        for uri in [
            "https://localhost/cb",
            "https://127.0.0.1/cb",
            "https://127.8.9.10/cb",
            "https://[::1]/cb",
            "https://app.localhost/cb",
            "http://127.0.0.1:8000/cb",
            "http://localhost:3000/cb",
        ] {
            let request = with(|r| r.redirect_uris = vec![uri.into()]);
            assert_eq!(
                fields(&submission(&request, false)),
                ["redirect_uris"],
                "{uri}"
            );
            assert!(
                submission(&request, true).problems.is_empty(),
                "{uri} in sandbox"
            );
        }
        // Plain http elsewhere is refused even in the sandbox.
        let request = with(|r| r.redirect_uris = vec!["http://app.acme-health.com/cb".into()]);
        assert_eq!(fields(&submission(&request, true)), ["redirect_uris"]);
        let request = with(|r| r.app_url = "http://localhost:3000".into());
        assert_eq!(fields(&submission(&request, false)), ["app_url"]);
        assert!(submission(&request, true).problems.is_empty());
    }

    #[test]
    fn placeholder_hosts_fragments_and_bad_schemes_are_refused() {
        for uri in [
            "https://example.com/cb",
            "https://app.example.org/cb",
            "https://example.net/cb",
            "https://my.app.example/cb",
            "https://app.test/cb",
            "https://x.invalid/cb",
            "https://printer.local/cb",
            "https://app.acme-health.com/cb#frag",
            "javascript:alert(1)",
            "ftp://files.acme-health.com/cb",
            "not a uri",
            "https://user:pw@app.acme-health.com/cb",
        ] {
            let request = with(|r| r.redirect_uris = vec![uri.into()]);
            let report = submission(&request, false);
            assert_eq!(fields(&report), ["redirect_uris"], "{uri}: {report:?}");
        }
        let request = with(|r| r.privacy_url = "https://example.com/privacy".into());
        assert_eq!(fields(&submission(&request, false)), ["privacy_url"]);
        let twice = with(|r| r.redirect_uris.push(r.redirect_uris[0].clone()));
        assert_eq!(fields(&submission(&twice, false)), ["redirect_uris"]);
    }

    #[test]
    fn private_use_schemes_are_for_public_apps_with_a_warning() {
        let native = with(|r| r.redirect_uris = vec!["com.acmehealth.labs:/callback".into()]);
        let report = submission(&native, false);
        assert!(report.problems.is_empty(), "{report:?}");
        assert_eq!(report.warnings.len(), 1);
        assert_eq!(report.warnings[0].field, "redirect_uris");
        let confidential = with(|r| {
            r.redirect_uris = vec!["com.acmehealth.labs:/callback".into()];
            r.client_type = Some(ClientType::ConfidentialSymmetric);
        });
        assert_eq!(fields(&submission(&confidential, false)), ["redirect_uris"]);
        let dotless = with(|r| r.redirect_uris = vec!["myapp:/callback".into()]);
        assert_eq!(fields(&submission(&dotless, false)), ["redirect_uris"]);
        let many = with(|r| {
            r.redirect_uris = (0..6)
                .map(|i| format!("https://labs.acme-health.com/cb{i}"))
                .collect()
        });
        let report = submission(&many, false);
        assert!(report.problems.is_empty());
        assert_eq!(report.warnings.len(), 1);
    }

    #[test]
    fn scopes_are_one_version_and_fit_the_audience() {
        let mixed = with(|r| r.scopes.push("patient/Condition.read".into()));
        let report = submission(&mixed, false);
        assert_eq!(fields(&report), ["scopes"]);
        assert!(report.problems[0].message.contains("mixed"));
        let wrong_version = with(|r| r.scope_version = Some(ScopeVersion::V1));
        assert_eq!(fields(&submission(&wrong_version, false)), ["scopes"]);
        let system = with(|r| r.scopes.push("system/Observation.rs".into()));
        assert_eq!(fields(&submission(&system, false)), ["scopes"]);
        let user = with(|r| r.scopes.push("user/Observation.rs".into()));
        assert_eq!(fields(&submission(&user, false)), ["scopes"]);
        let practitioner = with(|r| {
            r.audience = Some(Audience::Practitioner);
            r.scopes.push("user/Observation.rs".into());
        });
        assert!(submission(&practitioner, false).problems.is_empty());
        let unknown = with(|r| r.scopes.push("patient/Nonsense.rs".into()));
        assert_eq!(fields(&submission(&unknown, false)), ["scopes"]);
        let offline = with(|r| r.scopes.push("offline_access".into()));
        assert_eq!(fields(&submission(&offline, false)), ["scopes"]);
        let offline = with(|r| {
            r.scopes.push("offline_access".into());
            r.refresh_tokens = true;
        });
        assert!(submission(&offline, false).problems.is_empty());
        let none = with(|r| r.scopes = vec!["openid".into()]);
        assert_eq!(fields(&submission(&none, false)), ["scopes"]);
    }

    #[test]
    fn backend_services_use_keys_and_system_scopes() {
        let jwks = r#"{"keys":[{"kty":"EC","crv":"P-384","kid":"k1","x":"x","y":"y"}]}"#;
        let backend = AppRequest {
            audience: Some(Audience::Backend),
            client_type: Some(ClientType::ConfidentialAsymmetric),
            jwks_uri: "https://keys.acme-health.com/jwks.json".into(),
            redirect_uris: Vec::new(),
            scopes: vec!["system/Observation.rs".into()],
            app_url: String::new(),
            privacy_url: String::new(),
            ..patient_app()
        };
        assert!(submission(&backend, false).problems.is_empty());
        let public = AppRequest {
            client_type: Some(ClientType::Public),
            jwks_uri: String::new(),
            ..backend.clone()
        };
        assert_eq!(fields(&submission(&public, false)), ["client_type"]);
        let patient_scope = AppRequest {
            scopes: vec!["patient/Observation.rs".into(), "openid".into()],
            ..backend.clone()
        };
        assert_eq!(
            fields(&submission(&patient_scope, false)),
            ["scopes", "scopes"]
        );
        let both = AppRequest {
            jwks: jwks.into(),
            ..backend.clone()
        };
        assert_eq!(fields(&submission(&both, false)), ["jwks"]);
        let neither = AppRequest {
            jwks_uri: String::new(),
            ..backend.clone()
        };
        assert_eq!(fields(&submission(&neither, false)), ["jwks_uri"]);
        let loopback_keys = AppRequest {
            jwks_uri: "http://127.0.0.1:9/jwks.json".into(),
            ..backend
        };
        assert_eq!(fields(&submission(&loopback_keys, false)), ["jwks_uri"]);
        assert!(submission(&loopback_keys, true).problems.is_empty());
    }

    #[test]
    fn terms_must_be_accepted() {
        let request = with(|r| r.accepted_terms = false);
        assert_eq!(fields(&submission(&request, false)), ["accepted_terms"]);
    }
}
