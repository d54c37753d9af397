//! The admin console driven like a browser: a session cookie, no redirects followed, the
//! CSRF token read from the page, Kiln's login form.

use regex::Regex;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use super::Server;

/// A browser: keeps Kiln's session cookie, follows no redirect.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The CSRF token the page's forms carry.
    pub fn csrf(&self) -> String {
        self.hidden("csrf_token")
    }

    pub fn hidden(&self, name: &str) -> String {
        let pattern = Regex::new(&format!(r#"name="{name}" value="([^"]*)""#)).unwrap();
        pattern
            .captures(&self.body)
            .unwrap_or_else(|| panic!("no {name} on the page: {}", self.body))[1]
            .to_string()
    }

    pub fn location(&self) -> String {
        self.headers[LOCATION].to_str().unwrap().to_string()
    }

    /// Whether the page is Kiln's login form.
    pub fn is_login(&self) -> bool {
        self.body.contains(r#"action="http"#) && self.body.contains("/auth/login\"")
    }
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookie: None,
        }
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Reply {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            self.cookie = Some(pair.to_string());
        }
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    /// `path` on the server, or an absolute URL (a redirect's location).
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let request = self.http.get(self.url(path));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    pub async fn post_pairs(&mut self, path: &str, form: &[(String, String)]) -> Reply {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.post(path, &form).await
    }

    /// Opens `/admin` and signs in on the login form it shows; the login's answer.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Reply {
        let login = self.get("/admin").await;
        assert_eq!(login.status, 200, "{}", login.body);
        assert!(login.is_login(), "{}", login.body);
        assert_eq!(login.hidden("return_to"), "/admin");
        let csrf = login.csrf();
        self.post(
            "/auth/login",
            &[
                ("csrf_token", &csrf),
                ("username", username),
                ("password", password),
                ("return_to", "/admin"),
            ],
        )
        .await
    }

    /// A console action on a user, with the CSRF token of the page it was on.
    pub async fn act(&mut self, page: &Reply, action: &str, fields: &[(&str, &str)]) -> Reply {
        self.submit(page, &format!("/admin/users/{action}"), fields)
            .await
    }

    /// Posts `fields` to `path` with the CSRF token of the page it was on.
    pub async fn submit(&mut self, page: &Reply, path: &str, fields: &[(&str, &str)]) -> Reply {
        let csrf = page.csrf();
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(path, &form).await
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
