//! The launch simulator, `/developer/simulator`, on a sandbox deployment only: the signed-in
//! developer picks one of their ACTIVE apps, a sample patient, a practitioner and
//! (optionally) an encounter, and launches the app — by EHR launch (a launch context bound to
//! their practitioner persona, then the app's launch URL with `iss` and `launch`) or
//! standalone (the launch URL with `iss` only).
//!
//! For a public app that registered the simulator's callback (`{base}/developer/simulator/
//! callback`; one click adds it), the simulator can be the client itself: it runs the
//! authorization-code flow with PKCE, exchanges the code at Kiln's token endpoint
//! (in-process) and shows the token response with the `id_token` decoded and the launch
//! context. Nothing is stored for that flow: its `state` carries the client id and time and a
//! MAC (under the sandbox secret) binding it to the developer's account; the PKCE verifier
//! and the nonce are derived from the state the same way.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::sandbox::{self, Persona, Role};
use super::signed_in::{self, SignedIn};
use crate::apps::lifecycle::{self, Submitted};
use crate::apps::{Actor, Status, view};
use crate::audit::{Agent, Event, Origin as AuditOrigin, Security};
use crate::auth::pages::{ehr, records};
use crate::crypto::{random_token, s256_challenge, same};
use crate::http::form::Fields;
use crate::state::AppState;
use crate::store::apps::AppFilter;
use crate::store::auth::Client;
use crate::web::error::{PageError, PageResult};
use crate::web::html::{Choice, html, redirect, url};

/// The simulator's own redirect URI, under the base URL.
pub const CALLBACK_PATH: &str = "/developer/simulator/callback";
const PAGE_PATH: &str = "/developer/simulator";
/// How long a simulator authorization may take (sign-in and consent included).
const STATE_LIFETIME_SECS: i64 = 30 * 60;

/// One of the developer's ACTIVE apps, as the simulator offers it.
struct SimApp {
    client_id: String,
    name: String,
    launch_url: Option<String>,
    public: bool,
    has_callback: bool,
    scope: String,
}

#[derive(Template)]
#[template(path = "portal/simulator.html")]
struct SimulatorPage<'a> {
    csrf_token: &'a str,
    callback: &'a str,
    apps: &'a [SimApp],
    app: Option<&'a SimApp>,
    query: &'a str,
    patients: Vec<Choice>,
    patient: Option<Choice>,
    encounters: Vec<Choice>,
    practitioners: Vec<Choice>,
    personas: &'a [Persona],
    practitioner_id: &'a str,
    done: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "portal/simulator_result.html")]
struct ResultPage<'a> {
    app_name: &'a str,
    client_id: &'a str,
    error: Option<String>,
    status: u16,
    response: String,
    context: Vec<(&'static str, String)>,
    id_token_header: Option<String>,
    id_token_claims: Option<String>,
    nonce_matches: bool,
}

/// The signed-in developer of a sandbox deployment; `Err(response)` for a browser that is
/// not signed in. Off the sandbox the simulator does not exist (404).
async fn developer(state: &AppState, jar: &CookieJar) -> PageResult<Result<SignedIn, Response>> {
    if !state.config.onboarding.sandbox {
        return Err(not_found());
    }
    Ok(signed_in::current(state, jar)
        .await?
        .ok_or_else(|| signed_in::to_sign_in(state)))
}

fn not_found() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "The launch simulator is part of sandbox deployments only.",
    )
}

/// The developer's ACTIVE apps with a usable client.
async fn apps(state: &AppState, account_id: &str) -> PageResult<Vec<SimApp>> {
    let filter = AppFilter {
        app_id: None,
        status: Some(Status::Active.as_str()),
        owner: Some(account_id),
        awaiting_review: false,
    };
    let callback = url(&state.config, CALLBACK_PATH);
    let mut apps = Vec::new();
    for summary in view::list(&state.store, &filter).await? {
        let Some(client_id) = summary.client_id else {
            continue;
        };
        let Some(client) = state.store.client(&client_id).await?.filter(Client::usable) else {
            continue;
        };
        apps.push(SimApp {
            has_callback: client.redirect_uris.contains(&callback),
            public: client.client_type == "public",
            launch_url: client.launch_uri,
            scope: client.scope,
            name: client.name,
            client_id,
        });
    }
    Ok(apps)
}

/// `GET /developer/simulator[?client=ID][&name=…][&patient=ID][&done=callback|review]`.
pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    origin: AuditOrigin,
    RawQuery(query): RawQuery,
) -> PageResult<Response> {
    let signed_in = match developer(&state, &jar).await? {
        Ok(signed_in) => signed_in,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    let form = Fields::parse(query.unwrap_or_default().as_bytes());
    let developer = &signed_in.developer;
    let personas = sandbox::personas(&state, developer, &origin).await?;
    let apps = apps(&state, &developer.account_id).await?;
    let app = match form.get("client") {
        Some(id) => apps.iter().find(|app| app.client_id == id),
        None => apps.first(),
    };
    let query = form.get("name").unwrap_or("");
    let patient = match form.get("patient") {
        Some(id) => records::patient(&state.store, id).await?,
        None => None,
    };
    let (patients, encounters) = match &patient {
        Some(chosen) => (Vec::new(), records::encounters(&state, &chosen.id).await?),
        None => (records::find_patients(&state, query).await?, Vec::new()),
    };
    let practitioner_id = personas
        .iter()
        .find(|persona| persona.role == Role::Practitioner)
        .map_or("", Persona::record_id);
    let mut practitioners = records::find_practitioners(&state, "").await?;
    if !practitioners.iter().any(|p| p.id == practitioner_id)
        && let Some(own) = records::practitioner(&state.store, practitioner_id).await?
    {
        practitioners.insert(0, own);
    }
    let done = match form.get("done") {
        Some("callback") => Some("The simulator's callback was added to the app and approved."),
        Some("review") => Some(
            "The simulator's callback was added; the new revision waits for an admin's review.",
        ),
        _ => None,
    };
    Ok(html(
        StatusCode::OK,
        &SimulatorPage {
            csrf_token: &signed_in.session.csrf_token,
            callback: &url(&state.config, CALLBACK_PATH),
            apps: &apps,
            app,
            query,
            patients,
            patient,
            encounters,
            practitioners,
            personas: &personas,
            practitioner_id,
            done,
        },
    ))
}

/// `POST /developer/simulator/launch` with `client_id`, `mode` (`ehr`, `standalone`,
/// `ehr-simulator`, `standalone-simulator`) and, for an EHR launch, `patient`,
/// `practitioner` and optionally `encounter`.
pub async fn launch(
    State(state): State<AppState>,
    jar: CookieJar,
    origin: AuditOrigin,
    body: Bytes,
) -> PageResult {
    if !state.config.onboarding.sandbox {
        return Err(not_found());
    }
    let form = Fields::parse(&body);
    let signed_in = signed_in::posted(&state, &jar, &form).await?;
    let developer = &signed_in.developer;
    let apps = apps(&state, &developer.account_id).await?;
    let app = form
        .get("client_id")
        .and_then(|id| apps.iter().find(|app| app.client_id == id))
        .ok_or_else(|| PageError::bad_request("Choose one of your active apps."))?;
    let mode = form.get("mode").unwrap_or("");
    let (ehr_launch, by_simulator) = match mode {
        "ehr" => (true, false),
        "standalone" => (false, false),
        "ehr-simulator" => (true, true),
        "standalone-simulator" => (false, true),
        _ => return Err(PageError::bad_request("Choose how to launch the app.")),
    };
    if by_simulator && (!app.public || !app.has_callback) {
        return Err(PageError::bad_request(
            "The simulator can be the client of a public app that registered the \
             simulator's callback only.",
        ));
    }
    if !by_simulator && app.launch_url.is_none() {
        return Err(PageError::bad_request(
            "This app has no launch URL. Add one to its registration, or let the simulator \
             be the client.",
        ));
    }
    let launch = if ehr_launch {
        Some(ehr_context(&state, &signed_in, app, &form, &origin).await?)
    } else {
        None
    };
    let target = match &app.launch_url {
        Some(launch_url) if !by_simulator => {
            ehr::launch_target(&state, launch_url, launch.as_deref())?
        }
        _ => authorize_url(&state, &developer.account_id, app, launch.as_deref()).await?,
    };
    Ok(redirect(&target))
}

/// Records the EHR launch for the chosen patient, encounter and practitioner, made by the
/// developer's practitioner persona (linked to the chosen practitioner first, if another);
/// returns the launch id.
async fn ehr_context(
    state: &AppState,
    signed_in: &SignedIn,
    app: &SimApp,
    form: &Fields,
    origin: &AuditOrigin,
) -> PageResult<String> {
    let patient = match form.get("patient") {
        Some(id) => records::patient(&state.store, id).await?,
        None => None,
    }
    .ok_or_else(|| PageError::bad_request("Choose a patient."))?;
    let encounter = form.get("encounter").filter(|e| !e.is_empty());
    if let Some(encounter) = encounter
        && !records::is_encounter_of(&state.store, encounter, &patient.id).await?
    {
        return Err(PageError::bad_request(
            "The encounter does not belong to this patient.",
        ));
    }
    let developer = &signed_in.developer;
    let persona = sandbox::persona(state, developer, Role::Practitioner, origin)
        .await?
        .ok_or_else(|| PageError::bad_request("This server has no sample Practitioner."))?;
    if persona.disabled {
        return Err(PageError::forbidden(
            "Your practitioner persona is disabled; ask the sandbox's operator.",
        ));
    }
    if let Some(chosen) = form.get("practitioner").filter(|p| !p.is_empty())
        && chosen != persona.record_id()
    {
        if records::practitioner(&state.store, chosen).await?.is_none() {
            return Err(PageError::bad_request(
                "Choose a practitioner of this server.",
            ));
        }
        let fhir_user = format!("Practitioner/{chosen}");
        let relinked = sandbox::persona_event(
            developer,
            origin,
            &persona.username,
            format!("sandbox persona linked to {fhir_user}"),
        );
        let audit: Vec<_> = state.audit.row(&relinked).into_iter().collect();
        state
            .store
            .set_fhir_user(&persona.username, &fhir_user, &audit)
            .await?;
    }
    let mut made = Event::launch(
        Security::LaunchCreated,
        Agent::user(&persona.username),
        origin.clone(),
        &app.client_id,
        &persona.username,
        &patient.id,
        encounter,
    );
    made.description = made.description.map(|description| {
        format!(
            "{description} (developer sandbox, developer {})",
            developer.account_id
        )
    });
    ehr::record_launch(
        state,
        &app.client_id,
        &persona.username,
        &patient.id,
        encounter,
        &made,
    )
    .await
}

/// The authorization request the simulator makes as the app's client: the app's registered
/// scopes (with `launch` for an EHR launch, without it for a standalone one), PKCE S256,
/// and a state bound to the developer's account.
async fn authorize_url(
    state: &AppState,
    account_id: &str,
    app: &SimApp,
    launch: Option<&str>,
) -> PageResult<String> {
    let secret = sandbox::secret(&state.store).await?;
    let flow = Flow::start(&secret, account_id, &app.client_id);
    let mut scopes: Vec<&str> = app
        .scope
        .split_whitespace()
        .filter(|scope| *scope != "launch")
        .collect();
    if launch.is_some() {
        scopes.insert(0, "launch");
    }
    let mut target =
        reqwest::Url::parse(&url(&state.config, "/auth/authorize")).map_err(PageError::internal)?;
    target
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", &url(&state.config, CALLBACK_PATH))
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", &flow.state)
        .append_pair("aud", &state.config.fhir_base())
        .append_pair("code_challenge", &s256_challenge(&flow.verifier(&secret)))
        .append_pair("code_challenge_method", "S256")
        .append_pair("nonce", &flow.nonce(&secret));
    if let Some(launch) = launch {
        target.query_pairs_mut().append_pair("launch", launch);
    }
    Ok(target.into())
}

/// A simulator authorization, named by its `state`:
/// `{client id, base64url}.{issued at}.{random}.{MAC}`.
struct Flow {
    state: String,
    client_id: String,
    issued_at: i64,
}

impl Flow {
    fn start(secret: &[u8], account_id: &str, client_id: &str) -> Flow {
        let issued_at = crate::auth::now();
        let unsigned = format!(
            "{}.{issued_at}.{}",
            URL_SAFE_NO_PAD.encode(client_id),
            &random_token()[..16]
        );
        let mac = Self::mac(secret, account_id, &unsigned);
        Flow {
            state: format!("{unsigned}.{mac}"),
            client_id: client_id.to_string(),
            issued_at,
        }
    }

    /// The flow a state names, if its MAC is right for this developer's account.
    fn of(secret: &[u8], account_id: &str, state: &str) -> Option<Flow> {
        let (unsigned, mac) = state.rsplit_once('.')?;
        if !same(mac, &Self::mac(secret, account_id, unsigned)) {
            return None;
        }
        let mut parts = unsigned.split('.');
        let client_id = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        let issued_at = parts.next()?.parse().ok()?;
        Some(Flow {
            state: state.to_string(),
            client_id: String::from_utf8(client_id).ok()?,
            issued_at,
        })
    }

    fn mac(secret: &[u8], account_id: &str, unsigned: &str) -> String {
        sandbox::derive(
            secret,
            "simulator-state",
            &format!("{account_id}\n{unsigned}"),
        )
    }

    /// The PKCE verifier: 43 base64url characters.
    fn verifier(&self, secret: &[u8]) -> String {
        sandbox::derive(secret, "simulator-verifier", &self.state)
    }

    fn nonce(&self, secret: &[u8]) -> String {
        sandbox::derive(secret, "simulator-nonce", &self.state)
    }
}

/// `GET /developer/simulator/callback?code=…&state=…` (or `error=…`): the simulator's
/// redirect URI. Exchanges the code and shows the token response decoded.
pub async fn callback(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> PageResult<Response> {
    let signed_in = match developer(&state, &jar).await? {
        Ok(signed_in) => signed_in,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    let form = Fields::parse(query.unwrap_or_default().as_bytes());
    let secret = sandbox::secret(&state.store).await?;
    let flow = Flow::of(
        &secret,
        &signed_in.developer.account_id,
        form.get("state").unwrap_or(""),
    )
    .filter(|flow| flow.issued_at + STATE_LIFETIME_SECS > crate::auth::now())
    .ok_or_else(|| {
        PageError::bad_request(
            "This callback does not belong to a launch you started from the simulator in \
             the last 30 minutes. Launch again.",
        )
    })?;
    let app_name = state
        .store
        .client(&flow.client_id)
        .await?
        .map_or_else(|| flow.client_id.clone(), |client| client.name);
    let mut page = ResultPage {
        app_name: &app_name,
        client_id: &flow.client_id,
        error: None,
        status: 0,
        response: String::new(),
        context: Vec::new(),
        id_token_header: None,
        id_token_claims: None,
        nonce_matches: false,
    };
    if let Some(error) = form.get("error") {
        let description = form.get("error_description").unwrap_or("");
        page.error = Some(format!(
            "The authorization was refused: {error} {description}"
        ));
        return Ok(html(StatusCode::OK, &page));
    }
    let Some(code) = form.get("code") else {
        return Err(PageError::bad_request("The callback has no code."));
    };
    let callback = url(&state.config, CALLBACK_PATH);
    let verifier = flow.verifier(&secret);
    let answer = crate::auth::oauth::token::answer(
        &state,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &callback),
            ("client_id", &flow.client_id),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    page.status = answer.status().as_u16();
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .map_err(PageError::internal)?;
    let token: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    page.response = serde_json::to_string_pretty(&token).unwrap_or_default();
    if page.status != 200 {
        page.error = Some("The token endpoint refused the code.".into());
        return Ok(html(StatusCode::OK, &page));
    }
    let id_token = token["id_token"].as_str().map(decode_jwt);
    if let Some((header, claims)) = &id_token {
        page.id_token_header = Some(pretty(header));
        page.id_token_claims = Some(pretty(claims));
        page.nonce_matches = claims["nonce"] == flow.nonce(&secret).as_str();
    }
    let claims = id_token.map(|(_, claims)| claims).unwrap_or(Value::Null);
    for (label, value) in [
        ("patient", &token["patient"]),
        ("encounter", &token["encounter"]),
        ("fhirUser", &claims["fhirUser"]),
        ("scope", &token["scope"]),
        ("need_patient_banner", &token["need_patient_banner"]),
        ("smart_style_url", &token["smart_style_url"]),
        ("fhirContext", &token["fhirContext"]),
    ] {
        if !value.is_null() {
            let shown = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            page.context.push((label, shown));
        }
    }
    Ok(html(StatusCode::OK, &page))
}

/// A JWT's header and claims (its signature is Kiln's own, not checked here).
fn decode_jwt(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.').map(|part| {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null)
    });
    let header = parts.next().unwrap_or(Value::Null);
    let claims = parts.next().unwrap_or(Value::Null);
    (header, claims)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `POST /developer/simulator/callback-uri` with `client_id`: adds the simulator's callback
/// to the app's redirect URIs as a new revision, submitted at once (approved on a sandbox
/// unless `--approval-policy` says otherwise).
pub async fn add_callback(
    State(state): State<AppState>,
    jar: CookieJar,
    origin: AuditOrigin,
    body: Bytes,
) -> PageResult {
    if !state.config.onboarding.sandbox {
        return Err(not_found());
    }
    let form = Fields::parse(&body);
    let signed_in = signed_in::posted(&state, &jar, &form).await?;
    let account_id = &signed_in.developer.account_id;
    let client_id = form.get("client_id").unwrap_or("");
    let mine = apps(&state, account_id)
        .await?
        .into_iter()
        .any(|app| app.client_id == client_id && app.public);
    if !mine {
        return Err(PageError::bad_request(
            "Choose one of your active public apps.",
        ));
    }
    let detail = view::show(&state.store, client_id)
        .await
        .map_err(lifecycle_error)?;
    let mut request = detail
        .current_request()
        .cloned()
        .ok_or_else(|| PageError::bad_request("The app has no registration request."))?;
    let callback = url(&state.config, CALLBACK_PATH);
    let back = |done: &str| {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client", client_id)
            .append_pair("done", done)
            .finish();
        redirect(&url(&state.config, &format!("{PAGE_PATH}?{query}")))
    };
    if request.redirect_uris.contains(&callback) {
        return Ok(back("callback"));
    }
    request.redirect_uris.push(callback);
    let actor = Actor::Developer(account_id.clone());
    let now = crate::fhir::instant::now_secs();
    let app_id = detail.summary.app_id;
    let audit = lifecycle::Audit::new(&state.audit, origin);
    lifecycle::save(&state.store, &audit, &actor, &app_id, &request, now)
        .await
        .map_err(lifecycle_error)?;
    let submitted = lifecycle::submit(
        &state.store,
        &audit,
        &state.config.onboarding,
        &actor,
        &app_id,
        now,
    )
    .await
    .map_err(lifecycle_error)?;
    Ok(match submitted {
        Submitted::Approved { .. } => back("callback"),
        Submitted::PendingReview { .. } => back("review"),
    })
}

fn lifecycle_error(error: lifecycle::LifecycleError) -> PageError {
    match error {
        lifecycle::LifecycleError::Store(error) => error.into(),
        other => PageError::bad_request(format!("The app cannot be changed: {other}.")),
    }
}
