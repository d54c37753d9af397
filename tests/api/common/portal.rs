//! The developer portal as a browser uses it: Kiln's session cookie, forms with their CSRF
//! token, sign-up and sign-in, the links in the mail a real SMTP sink catches, and checks of
//! the pages' headers and escaping. Shared by the portal's test files.

use regex::Regex;
use reqwest::header::{LOCATION, SET_COOKIE};

use super::smtp::SmtpSink;
use super::{Backend, Server, TestDb};

pub const PASSWORD: &str = "Correct-Horse-1";
pub const HOSTILE_NAME: &str = "<script>alert('name')</script>";
pub const HOSTILE_ORG: &str = "\"><img src=x onerror=alert(1)>";

/// A browser: Kiln's session cookie, no automatic redirects.
pub struct Browser<'a> {
    pub server: &'a Server,
    pub cookie: Option<String>,
}

/// A response read whole.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the hidden input `name`.
    pub fn hidden(&self, name: &str) -> String {
        let pattern = format!(r#"name="{name}" value="([^"]*)""#);
        let found = Regex::new(&pattern).unwrap().captures(&self.body);
        found.unwrap_or_else(|| panic!("no {name} in {}", self.body))[1].to_string()
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .unwrap_or_else(|| panic!("not a redirect ({}): {}", self.status, self.body))
            .to_str()
            .unwrap()
    }

    /// The headers every page gets: a CSP that runs no script and forbids framing.
    pub fn assert_page_headers(&self) {
        let csp = self.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
        assert_eq!(self.headers["x-frame-options"], "DENY");
        assert_eq!(self.headers["cache-control"], "no-store");
    }

    /// A hostile name and organization on a page that shows them: there, as text only.
    pub fn assert_escaped(&self) {
        assert!(!self.body.contains("<script>alert"), "{}", self.body);
        assert!(!self.body.contains("<img src=x"), "{}", self.body);
        let text = unescape(&self.body);
        assert!(text.contains(HOSTILE_NAME), "{}", self.body);
        assert!(text.contains(HOSTILE_ORG), "{}", self.body);
    }
}

/// Text with HTML's character references resolved (named or numeric, as escapers write them).
pub fn unescape(html: &str) -> String {
    let mut text = html.to_string();
    for (reference, character) in [
        ("&lt;", "<"),
        ("&#60;", "<"),
        ("&gt;", ">"),
        ("&#62;", ">"),
        ("&quot;", "\""),
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&#x27;", "'"),
    ] {
        text = text.replace(reference, character);
    }
    text.replace("&amp;", "&").replace("&#38;", "&")
}

impl<'a> Browser<'a> {
    pub fn new(server: &'a Server) -> Browser<'a> {
        Browser {
            server,
            cookie: None,
        }
    }

    pub async fn read(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.expect("request");
        if let Some(set) = response.headers().get(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            self.cookie = Some(pair.to_string());
        }
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.server.base)
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.server.client.get(self.url(path));
        self.read(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .server
            .client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.read(request).await
    }

    /// Fills in a form found at `page_path` and posts it to `action` with its CSRF token.
    pub async fn submit(&mut self, page_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(page_path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page.hidden("csrf_token");
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }

    pub async fn sign_up(&mut self, name: &str, org: &str, email: &str, password: &str) -> Page {
        let fields = [
            ("name", name),
            ("organization", org),
            ("email", email),
            ("password", password),
            ("confirm", password),
        ];
        self.submit("/developer/signup", "/developer/signup", &fields)
            .await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let fields = [("email", email), ("password", password)];
        self.submit("/developer/signin", "/developer/signin", &fields)
            .await
    }
}

/// The link in a mail (or log) to `path` (`/developer/verify`, `/developer/reset/new`).
pub fn link(text: &str, path: &str) -> String {
    let pattern = format!(
        r"https?://[^\s/]+{}\?token=[A-Za-z0-9_-]+",
        regex::escape(path)
    );
    Regex::new(&pattern)
        .unwrap()
        .find(text)
        .unwrap_or_else(|| panic!("no {path} link in {text}"))
        .as_str()
        .to_string()
}

pub async fn with_smtp(backend: Backend) -> Option<(Server, SmtpSink)> {
    with_smtp_and(backend, &[], &[]).await
}

/// [`with_smtp`] with more `kiln serve` arguments.
pub async fn with_smtp_args(backend: Backend, args: &[&str]) -> Option<(Server, SmtpSink)> {
    with_smtp_and(backend, args, &[]).await
}

/// A server sending mail to a real SMTP sink, with more `kiln serve` arguments and
/// environment variables.
pub async fn with_smtp_and(
    backend: Backend,
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<(Server, SmtpSink)> {
    let sink = SmtpSink::start().await?;
    let db = TestDb::new(backend).await?;
    let mut all_env = vec![
        ("KILN_SMTP_URL", sink.url.as_str()),
        ("KILN_MAIL_FROM", "Kiln Test <kiln@example.org>"),
    ];
    all_env.extend_from_slice(env);
    let server = Server::start_on_with_env(db, args, &all_env).await;
    Some((server, sink))
}

/// A browser signed in as a new, verified developer with the address `email`.
pub async fn signed_in_developer<'a>(
    server: &'a Server,
    sink: &SmtpSink,
    email: &str,
) -> Browser<'a> {
    verified_account(server, sink, email).await;
    let mut browser = Browser::new(server);
    let signed_in = browser.sign_in(email, PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    browser
}

/// One part of a `multipart/form-data` body.
pub enum Part<'a> {
    Text(&'a str, &'a str),
    File {
        name: &'a str,
        file_name: &'a str,
        content_type: &'a str,
        bytes: Vec<u8>,
    },
}

impl Browser<'_> {
    /// Posts `parts` as `multipart/form-data`, as a browser sends a form with a file input.
    pub async fn post_multipart(&mut self, path: &str, parts: &[Part<'_>]) -> Page {
        let boundary = "----kiln-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match part {
                Part::Text(name, value) => {
                    body.extend_from_slice(
                        format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                            .as_bytes(),
                    );
                    body.extend_from_slice(value.as_bytes());
                }
                Part::File {
                    name,
                    file_name,
                    content_type,
                    bytes,
                } => {
                    body.extend_from_slice(
                        format!(
                            "Content-Disposition: form-data; name=\"{name}\"; \
                             filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    body.extend_from_slice(bytes);
                }
            }
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let request = self
            .server
            .client
            .post(self.url(path))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.read(request).await
    }
}

/// Signs up and follows the verification link.
pub async fn verified_account(server: &Server, sink: &SmtpSink, email: &str) {
    let mut browser = Browser::new(server);
    let page = browser.sign_up("Dev", "", email, PASSWORD).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mail = sink.wait_for(email, 1).await;
    let verified = browser.get(&link(&mail.body, "/developer/verify")).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
}
