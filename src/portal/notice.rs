//! The portal's one-message pages: "check your mail", "address verified", "password
//! changed", each with the one link to go on with.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use crate::web::html::html;

#[derive(Template)]
#[template(path = "portal/notice.html")]
struct NoticePage<'a> {
    title: &'a str,
    text: &'a str,
    next: Option<Link<'a>>,
}

struct Link<'a> {
    href: &'a str,
    label: &'a str,
}

/// A page saying `text`, with a button to `href` labelled `label`.
pub fn notice(title: &str, text: &str, next: Option<(&str, &str)>) -> Response {
    html(
        StatusCode::OK,
        &NoticePage {
            title,
            text,
            next: next.map(|(href, label)| Link { href, label }),
        },
    )
}

/// The answer to every request that mails an address — sent, already registered or
/// unknown alike, so the page tells nothing about which addresses have accounts.
pub fn check_your_mail(text: &str) -> Response {
    notice("Check your mail", text, None)
}
