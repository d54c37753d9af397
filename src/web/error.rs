//! The error page of authorization: a request the pages cannot go on with is shown to the user
//! (never redirected to the app), with a status, a title and what to do.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::audit::AuditUnavailable;
use crate::store::{StoreError, Trouble};

#[derive(Template)]
#[template(path = "web/error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub detail: &'a str,
}

/// A request the pages cannot go on with, shown as an HTML error page (never a redirect).
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    detail: String,
}

impl PageError {
    /// A refusal with its own status and title (`detail` says what to do).
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> PageError {
        PageError {
            status,
            title,
            detail: detail.into(),
        }
    }

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

    /// A form (with its upload) over the server's body limit.
    pub fn too_large() -> PageError {
        PageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large",
            "The form, with the file chosen, is larger than this server accepts. Go back, \
             choose a smaller file and send the form again.",
        )
    }

    /// The form was not sent from Kiln's own page (missing or wrong CSRF token, no session).
    pub fn csrf() -> PageError {
        PageError::forbidden(
            "This form has expired or was not sent from Kiln's own page. Go back and try again.",
        )
    }
}

impl From<AuditUnavailable> for PageError {
    fn from(error: AuditUnavailable) -> PageError {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            format!("{error}; nothing was done. Please try again in a moment."),
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
