//! What every authorization page shares: rendering a template, the error page, the choice
//! lists, redirects and the headers every page gets. Each page's own template is in its file.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::store::{StoreError, Trouble};

/// One choice in a list (a patient, an encounter, an app).
pub struct Choice {
    pub id: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "auth/error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub detail: &'a str,
}

/// Renders a page with a status.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => PageError::internal(error).into_response(),
    }
}

/// A request the pages cannot go on with, shown as an HTML error page (never a redirect).
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    detail: String,
}

impl PageError {
    pub fn bad_request(detail: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid authorization request",
            detail: detail.into(),
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::FORBIDDEN,
            title: "Not allowed",
            detail: detail.into(),
        }
    }

    /// A server-side failure; details go to the log only.
    pub fn internal(error: impl std::fmt::Display) -> PageError {
        tracing::error!(%error, "authorization page failed");
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong",
            detail: "Kiln could not complete this step. Please try again.".into(),
        }
    }

    /// The form was not sent from Kiln's own page (missing or wrong CSRF token, no session).
    pub fn csrf() -> PageError {
        PageError::forbidden(
            "This form has expired or was not sent from Kiln's own page. Go back and try again.",
        )
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> PageError {
        match error.trouble() {
            Trouble::Fault => PageError::internal(error),
            Trouble::Unavailable | Trouble::Full => {
                tracing::warn!(%error, "authorization page: database unavailable");
                PageError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    title: "Temporarily unavailable",
                    detail: "Kiln's database is unavailable right now. Please try again in a \
                             moment."
                        .into(),
                }
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            title: self.title,
            detail: &self.detail,
        };
        match page.render() {
            Ok(body) => (self.status, Html(body)).into_response(),
            Err(_) => (self.status, Html(self.detail)).into_response(),
        }
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// Authorization pages and their redirects carry codes and personal data: never cache them,
/// never frame them (clickjacking of the consent button).
pub async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A `303 See Other` to `location`: the browser follows it with a GET.
pub fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(error) => PageError::internal(error).into_response(),
    }
}
