//! A SMART app's side of the flows: the `oauth2` crate as the OAuth client (PKCE, code
//! exchange, refresh) over our reqwest, and a scripted browser that fills Kiln's login,
//! patient-picker and consent forms the way a person would.

use std::collections::HashMap;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Server;

/// The launch context SMART adds to a token response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SmartFields {
    pub patient: Option<String>,
    pub encounter: Option<String>,
    pub id_token: Option<String>,
    pub need_patient_banner: Option<bool>,
    pub smart_style_url: Option<String>,
    #[serde(rename = "fhirContext")]
    pub fhir_context: Option<Value>,
}

impl ExtraTokenFields for SmartFields {}

pub type SmartToken = StandardTokenResponse<SmartFields, BasicTokenType>;

pub type SmartClient = oauth2::Client<
    BasicErrorResponse,
    SmartToken,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[derive(Debug)]
pub struct HttpError(pub String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// Sends an `oauth2` request with our reqwest client.
pub async fn send(http: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let mut builder = http.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await.map_err(|e| HttpError(e.to_string()))?;
    let mut out = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    out.body(bytes.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}

/// A registered app as the test sees it.
pub struct App {
    pub client_id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

impl App {
    /// Registers an app with `kiln client add`.
    pub fn register(server: &Server, kind: &str, scope: &str, extra: &[&str]) -> App {
        let redirect_uri = "http://127.0.0.1:9/callback".to_string();
        let mut args = vec![
            "client",
            "add",
            "--name",
            "Test app",
            "--type",
            kind,
            "--redirect-uri",
            &redirect_uri,
            "--launch-uri",
            "http://127.0.0.1:9/launch",
            "--scope",
            scope,
        ];
        args.extend_from_slice(extra);
        let out = server.kiln(&args);
        App {
            client_id: out["client_id"].as_str().unwrap().to_string(),
            secret: out["client_secret"].as_str().map(str::to_string),
            redirect_uri,
        }
    }

    pub fn oauth(&self, server: &Server) -> SmartClient {
        let mut client = oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::new(format!("{}/auth/authorize", server.base)).unwrap())
            .set_token_uri(TokenUrl::new(format!("{}/auth/token", server.base)).unwrap())
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).unwrap());
        if let Some(secret) = &self.secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        client
    }
}

/// What the person at the browser answers.
#[derive(Default, Clone)]
pub struct Answers {
    pub username: String,
    pub password: String,
    /// The patient to pick, when the picker shows.
    pub patient: Option<String>,
    /// Scope checkboxes to leave unchecked.
    pub uncheck: Vec<String>,
    /// Extra scope checkboxes to check (granular offers).
    pub check: Vec<String>,
    /// `allow` or `deny`.
    pub decision: String,
}

impl Answers {
    pub fn allow(username: &str, password: &str) -> Answers {
        Answers {
            username: username.into(),
            password: password.into(),
            decision: "allow".into(),
            ..Answers::default()
        }
    }
}

/// The OpenID Connect `nonce` every test authorization sends.
pub const NONCE: &str = "nonce-1";

/// Runs the authorization-code flow with PKCE up to the token response.
pub async fn authorize(
    server: &Server,
    app: &App,
    scope: &str,
    launch: Option<&str>,
    answers: &Answers,
) -> Result<SmartToken, String> {
    let (code, verifier) = authorize_code(server, app, scope, launch, answers).await?;
    exchange(server, app, &code, verifier).await
}

/// The browser part of the flow: returns the authorization code and the PKCE verifier.
pub async fn authorize_code(
    server: &Server,
    app: &App,
    scope: &str,
    launch: Option<&str>,
    answers: &Answers,
) -> Result<(String, PkceCodeVerifier), String> {
    let oauth = app.oauth(server);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = oauth
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .add_extra_param("aud", server.fhir.clone())
        .add_extra_param("nonce", NONCE);
    for scope in scope.split_whitespace() {
        request = request.add_scope(Scope::new(scope.to_string()));
    }
    if let Some(launch) = launch {
        request = request.add_extra_param("launch", launch);
    }
    let (url, state) = request.url();
    let redirect = Browser::new()
        .run(server, url.as_str(), &app.redirect_uri, answers)
        .await?;
    let params = query_params(&redirect);
    if let Some(error) = params.get("error") {
        return Err(format!("authorization refused: {error}"));
    }
    assert_eq!(
        params.get("state"),
        Some(state.secret()),
        "state must be echoed"
    );
    let code = params.get("code").ok_or("no code in the redirect")?;
    Ok((code.clone(), verifier))
}

/// Exchanges a code (with its PKCE verifier) at the token endpoint.
pub async fn exchange(
    server: &Server,
    app: &App,
    code: &str,
    verifier: PkceCodeVerifier,
) -> Result<SmartToken, String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    app.oauth(server)
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(verifier)
        .request_async(&|request| send(&http, request))
        .await
        .map_err(|error| format!("code exchange failed: {error:?}"))
}

pub async fn refresh(server: &Server, app: &App, token: &str) -> Result<SmartToken, String> {
    let http = reqwest::Client::new();
    app.oauth(server)
        .exchange_refresh_token(&RefreshToken::new(token.to_string()))
        .request_async(&|request| send(&http, request))
        .await
        .map_err(|error| format!("refresh failed: {error:?}"))
}

pub fn access_token(token: &SmartToken) -> String {
    token.access_token().secret().clone()
}

pub fn query_params(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// A browser that keeps Kiln's cookies and submits its forms.
pub struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            if let Some((pair, _)) = text.split_once(';').or(Some((text, "")))
                && let Some((name, value)) = pair.split_once('=')
            {
                self.cookies.insert(name.trim().into(), value.trim().into());
            }
        }
    }

    /// GET (or POST a form) and follow redirects that stay on Kiln; returns the final
    /// response's URL, status and body, or the first redirect leaving Kiln.
    pub async fn fetch(
        &mut self,
        server: &Server,
        mut url: String,
        mut form: Option<Vec<(String, String)>>,
    ) -> Page {
        loop {
            let request = match form.take() {
                Some(fields) => {
                    let body = form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(&fields)
                        .finish();
                    self.http
                        .post(&url)
                        .header(
                            reqwest::header::CONTENT_TYPE,
                            "application/x-www-form-urlencoded",
                        )
                        .body(body)
                }
                None => self.http.get(&url),
            };
            let response = request
                .header(reqwest::header::COOKIE, self.cookie_header())
                .send()
                .await
                .unwrap();
            self.keep_cookies(&response);
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let location = response.headers()[reqwest::header::LOCATION]
                    .to_str()
                    .unwrap()
                    .to_string();
                let next = reqwest::Url::parse(&url).unwrap().join(&location).unwrap();
                if !next.as_str().starts_with(&server.base) {
                    return Page::Left(next.to_string());
                }
                url = next.to_string();
                continue;
            }
            let body = response.text().await.unwrap();
            return Page::Html { url, status, body };
        }
    }

    /// Answers every page until Kiln redirects to `redirect_uri`.
    pub async fn run(
        &mut self,
        server: &Server,
        start: &str,
        redirect_uri: &str,
        answers: &Answers,
    ) -> Result<String, String> {
        let mut page = self.fetch(server, start.to_string(), None).await;
        for _ in 0..10 {
            match page {
                Page::Left(url) if url.starts_with(redirect_uri) => return Ok(url),
                Page::Left(url) => return Err(format!("redirected elsewhere: {url}")),
                Page::Html { url, status, body } => {
                    if status != 200 {
                        return Err(format!("page {url} answered {status}: {body}"));
                    }
                    let form =
                        Form::parse(&body).ok_or_else(|| format!("no form on {url}: {body}"))?;
                    let fields = form.fill(answers);
                    let action = reqwest::Url::parse(&url)
                        .unwrap()
                        .join(&form.action)
                        .unwrap()
                        .to_string();
                    page = self.fetch(server, action, Some(fields)).await;
                }
            }
        }
        Err("too many pages".into())
    }
}

pub enum Page {
    Left(String),
    Html {
        url: String,
        status: u16,
        body: String,
    },
}

/// The first POST form of a page, its inputs as the page set them.
pub struct Form {
    pub action: String,
    pub inputs: Vec<Input>,
}

#[derive(Debug, Clone)]
pub struct Input {
    pub kind: String,
    pub name: String,
    pub value: String,
    pub checked: bool,
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&#124;", "|")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let pattern = Regex::new(&format!(r#"\s{name}\s*=\s*"([^"]*)""#)).unwrap();
    pattern.captures(tag).map(|c| unescape(&c[1]))
}

impl Form {
    pub fn parse(html: &str) -> Option<Form> {
        let form = Regex::new(r#"(?is)<form([^>]*)>(.*?)</form>"#).unwrap();
        let captures = form
            .captures_iter(html)
            .find(|c| attribute(&c[1], "method").is_some_and(|m| m.eq_ignore_ascii_case("post")))?;
        let action = attribute(&captures[1], "action").unwrap_or_default();
        let inner = &captures[2];
        let mut inputs = Vec::new();
        let tag = Regex::new(r#"(?is)<(input|button)\b([^>]*)>"#).unwrap();
        let checked = Regex::new(r"(?i)\schecked\b").unwrap();
        for c in tag.captures_iter(inner) {
            let attrs = &c[2];
            let Some(name) = attribute(attrs, "name") else {
                continue;
            };
            let kind = if c[1].eq_ignore_ascii_case("button") {
                "submit".to_string()
            } else {
                attribute(attrs, "type").unwrap_or_else(|| "text".into())
            };
            inputs.push(Input {
                kind: kind.to_ascii_lowercase(),
                name,
                value: attribute(attrs, "value").unwrap_or_default(),
                checked: checked.is_match(attrs),
            });
        }
        let select = Regex::new(r#"(?is)<select([^>]*)>(.*?)</select>"#).unwrap();
        let option = Regex::new(r#"(?is)<option([^>]*)>"#).unwrap();
        for c in select.captures_iter(inner) {
            let Some(name) = attribute(&c[1], "name") else {
                continue;
            };
            for o in option.captures_iter(&c[2]) {
                inputs.push(Input {
                    kind: "option".into(),
                    name: name.clone(),
                    value: attribute(&o[1], "value").unwrap_or_default(),
                    checked: false,
                });
            }
        }
        Some(Form { action, inputs })
    }

    /// The fields a person with `answers` submits.
    pub fn fill(&self, answers: &Answers) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        let mut picked_patient = false;
        for input in &self.inputs {
            let value = match (input.name.as_str(), input.kind.as_str()) {
                ("username", _) => Some(answers.username.clone()),
                ("password", _) => Some(answers.password.clone()),
                ("patient", "radio" | "option") => {
                    let wanted = answers.patient.as_deref().unwrap_or_default();
                    (!picked_patient
                        && (input.value == wanted || input.value.ends_with(&format!("/{wanted}"))))
                    .then(|| {
                        picked_patient = true;
                        input.value.clone()
                    })
                }
                ("patient", _) => answers.patient.clone(),
                ("scope", "checkbox") => {
                    let keep = (input.checked && !answers.uncheck.contains(&input.value))
                        || answers.check.contains(&input.value);
                    keep.then(|| input.value.clone())
                }
                ("decision", "submit") => {
                    (input.value == answers.decision).then(|| input.value.clone())
                }
                (_, "submit") => None,
                (_, "checkbox" | "radio") => input.checked.then(|| input.value.clone()),
                _ => Some(input.value.clone()),
            };
            if let Some(value) = value {
                fields.push((input.name.clone(), value));
            }
        }
        fields
    }
}
