//! The guides: Markdown files under docs/site/, embedded in the binary, with this server's URLs
//! put in for the `{{kiln.…}}` placeholders, rendered inside the shared layout.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use super::markdown::to_html;
use crate::auth::Endpoints;
use crate::state::AppState;
use crate::web::html::html;

/// One guide page at `/docs/{slug}`.
pub struct Guide {
    pub slug: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
    source: &'static str,
}

pub const GUIDES: &[Guide] = &[
    Guide {
        slug: "getting-started",
        title: "Getting started",
        summary: "From a developer account to a working app: registration, review, \
                  credentials, sandbox and test patients.",
        source: include_str!("../../docs/site/getting-started.md"),
    },
    Guide {
        slug: "authorization",
        title: "Authorization",
        summary: "SMART App Launch (standalone and EHR launch), PKCE, scopes, refresh, aud, \
                  and backend services with a signed client assertion.",
        source: include_str!("../../docs/site/authorization.md"),
    },
    Guide {
        slug: "bulk-data",
        title: "Bulk Data export",
        summary: "Kick-off, polling and download of NDJSON exports.",
        source: include_str!("../../docs/site/bulk-data.md"),
    },
    Guide {
        slug: "audit-log",
        title: "Audit log",
        summary: "Reading the AuditEvent log: who may, search parameters, paging; why writes \
                  are refused.",
        source: include_str!("../../docs/site/audit-log.md"),
    },
    Guide {
        slug: "errors",
        title: "Errors",
        summary: "OperationOutcome, OAuth error responses and the status codes Kiln answers.",
        source: include_str!("../../docs/site/errors.md"),
    },
    Guide {
        slug: "postman",
        title: "Postman",
        summary: "A collection and environment generated for this server, ready to import.",
        source: include_str!("../../docs/site/postman.md"),
    },
];

#[derive(Template)]
#[template(path = "docs/guide.html")]
struct GuidePage<'a> {
    title: &'a str,
    /// Rendered from the repository's own Markdown, its raw HTML escaped (`markdown`).
    body: String,
}

pub fn page(state: &AppState, slug: &str) -> Response {
    let Some(guide) = GUIDES.iter().find(|guide| guide.slug == slug) else {
        return super::not_found(slug);
    };
    let source = substitute(guide.source, &state.config.base_url);
    html(
        StatusCode::OK,
        &GuidePage {
            title: guide.title,
            body: to_html(&source),
        },
    )
}

/// `source` with this server's URLs for the `{{kiln.…}}` placeholders.
pub fn substitute(source: &str, base_url: &str) -> String {
    let endpoints = Endpoints::new(base_url);
    let base = base_url.trim_end_matches('/');
    let smart = format!("{}/.well-known/smart-configuration", endpoints.fhir_base);
    [
        ("{{kiln.base_url}}", base),
        ("{{kiln.fhir_base}}", endpoints.fhir_base.as_str()),
        ("{{kiln.authorize}}", endpoints.authorize.as_str()),
        ("{{kiln.token}}", endpoints.token.as_str()),
        ("{{kiln.jwks}}", endpoints.jwks.as_str()),
        ("{{kiln.introspect}}", endpoints.introspect.as_str()),
        ("{{kiln.revoke}}", endpoints.revoke.as_str()),
        ("{{kiln.manage}}", endpoints.manage.as_str()),
        ("{{kiln.registration}}", endpoints.register.as_str()),
        ("{{kiln.smart_configuration}}", smart.as_str()),
    ]
    .iter()
    .fold(source.to_owned(), |text, (placeholder, value)| {
        text.replace(placeholder, value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_known() {
        for guide in GUIDES {
            let out = substitute(guide.source, "https://ehr.example/");
            assert!(
                !out.contains("{{kiln."),
                "{}: unknown placeholder",
                guide.slug
            );
            assert!(!out.contains("ehr.example//"), "{}", guide.slug);
        }
    }
}
