//! One auditable event, typed: what kind, who (the token's user and client), from where,
//! about what (resource, patient, query) and how it ended. [`Event::row`] turns it into the
//! stored row with its AuditEvent body.

use crate::access::reach::Access;
use crate::fhir::instant::now_micros;
use crate::store::audit::chain::AuditRow;
use crate::store::audit::stored::{FORMAT, StoredEvent};

/// The DICOM code system of the security event types.
pub const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// Kiln's code system of security event subtypes (docs/audit.md lists them).
pub const KILN_SUBTYPE: &str = "urn:kiln:audit-subtype";

/// What kind of event: a FHIR interaction or a security event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A FHIR RESTful interaction: its `restful-interaction` code (read, vread, update,
    /// patch, delete, history-*, create, search-type, search-system, transaction, batch,
    /// operation).
    Rest(&'static str),
    /// A user signing in (DICOM 110114 User Authentication, subtype 110122 Login).
    Login,
    /// A user signing out (110114, subtype 110123 Logout).
    Logout,
    /// A security alert (DICOM 110113) of a Kiln subtype.
    Security(Security),
}

/// The Kiln subtypes of security alerts (`urn:kiln:audit-subtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    TokenIssued,
    TokenRefused,
    TokenRevoked,
    ConsentApproved,
    ConsentDenied,
    AdminAction,
    AppLifecycle,
    UserChanged,
    AuditDisabled,
    AuditEnabled,
    LaunchCreated,
}

impl Security {
    const ALL: [Security; 11] = [
        Security::TokenIssued,
        Security::TokenRefused,
        Security::TokenRevoked,
        Security::ConsentApproved,
        Security::ConsentDenied,
        Security::AdminAction,
        Security::AppLifecycle,
        Security::UserChanged,
        Security::AuditDisabled,
        Security::AuditEnabled,
        Security::LaunchCreated,
    ];

    /// The subtype whose code is `code`.
    pub fn of_code(code: &str) -> Option<Security> {
        Security::ALL
            .into_iter()
            .find(|security| security.code() == code)
    }

    pub fn code(self) -> &'static str {
        match self {
            Security::TokenIssued => "token-issued",
            Security::TokenRefused => "token-refused",
            Security::TokenRevoked => "token-revoked",
            Security::ConsentApproved => "consent-approved",
            Security::ConsentDenied => "consent-denied",
            Security::AdminAction => "admin-action",
            Security::AppLifecycle => "app-lifecycle",
            Security::UserChanged => "user-changed",
            Security::AuditDisabled => "audit-disabled",
            Security::AuditEnabled => "audit-enabled",
            Security::LaunchCreated => "launch-created",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Security::TokenIssued => "OAuth token issued",
            Security::TokenRefused => "OAuth token request refused",
            Security::TokenRevoked => "OAuth token revoked",
            Security::ConsentApproved => "Consent approved",
            Security::ConsentDenied => "Consent denied",
            Security::AdminAction => "Admin console action",
            Security::AppLifecycle => "App lifecycle transition",
            Security::UserChanged => "EHR user changed",
            Security::AuditDisabled => "Audit disabled",
            Security::AuditEnabled => "Audit enabled",
            Security::LaunchCreated => "EHR launch created",
        }
    }
}

impl Kind {
    /// The codes of AuditEvent.type and AuditEvent.subtype (`audit::balp` gives their
    /// systems and displays).
    pub fn codes(self) -> (&'static str, &'static str) {
        match self {
            Kind::Rest(code) => ("rest", code),
            Kind::Login => ("110114", "110122"),
            Kind::Logout => ("110114", "110123"),
            Kind::Security(security) => ("110113", security.code()),
        }
    }
}

/// AuditEvent.action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    Execute,
}

impl Action {
    pub fn code(self) -> &'static str {
        match self {
            Action::Create => "C",
            Action::Read => "R",
            Action::Update => "U",
            Action::Delete => "D",
            Action::Execute => "E",
        }
    }

    /// The action of a FHIR interaction (BALP: reads R, writes C/U/D, searches and
    /// operations E).
    pub fn of_interaction(code: &str) -> Action {
        match code {
            "create" => Action::Create,
            "read" | "vread" | "history-instance" => Action::Read,
            "update" | "patch" => Action::Update,
            "delete" => Action::Delete,
            _ => Action::Execute,
        }
    }
}

/// AuditEvent.outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A client error (4xx).
    Minor,
    /// A server error (5xx).
    Serious,
    Major,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => "0",
            Outcome::Minor => "4",
            Outcome::Serious => "8",
            Outcome::Major => "12",
        }
    }

    /// The outcome of an HTTP answer with this status.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            500.. => Outcome::Serious,
            400.. => Outcome::Minor,
            _ => Outcome::Success,
        }
    }
}

/// Who acted: the user and the app of an access token. Never the token itself: its id is
/// the SHA-256 hex of the token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    /// The user's FHIR resource (`Practitioner/123`).
    pub fhir_user: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub token_id: Option<String>,
}

impl Agent {
    /// The caller of a FHIR request.
    pub fn of_access(access: &Access) -> Agent {
        match access {
            Access::Token(granted) => Agent {
                fhir_user: granted.fhir_user.clone(),
                username: granted.username.clone(),
                client_id: Some(granted.client_id.clone()),
                token_id: granted.token_id.clone(),
            },
            Access::Full | Access::Nobody => Agent::default(),
        }
    }

    /// A user known by username only (sign-in pages, the admin console).
    pub fn user(username: impl Into<String>) -> Agent {
        Agent {
            username: Some(username.into()),
            ..Agent::default()
        }
    }

    /// The operator at the command line (`kiln …`), with the OS user when it is known.
    pub fn cli() -> Agent {
        let os_user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"));
        Agent::user(match os_user {
            Ok(name) if !name.is_empty() => format!("kiln CLI ({name})"),
            _ => "kiln CLI".to_owned(),
        })
    }

    /// An OAuth client acting without a user.
    pub fn client(client_id: impl Into<String>) -> Agent {
        Agent {
            client_id: Some(client_id.into()),
            ..Agent::default()
        }
    }
}

/// Where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub source_ip: Option<String>,
    /// `X-Request-ID`.
    pub request_id: Option<String>,
}

/// The resource an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub resource_type: String,
    pub id: String,
    pub version: Option<i64>,
}

impl Entity {
    /// `Type/id`, the stored `entity` column.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

/// What a security event acted on that is not a FHIR resource: an app, an OAuth client, an
/// EHR user, a developer account, a signing key or a bulk load of data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `app`, `client`, `user`, `developer`, `key` or `import`.
    pub kind: &'static str,
    /// The app id, client id, username, developer account id, key id or data source.
    pub id: String,
}

impl Subject {
    pub fn app(app_id: impl Into<String>) -> Subject {
        Subject {
            kind: "app",
            id: app_id.into(),
        }
    }

    pub fn client(client_id: impl Into<String>) -> Subject {
        Subject {
            kind: "client",
            id: client_id.into(),
        }
    }

    pub fn user(username: impl Into<String>) -> Subject {
        Subject {
            kind: "user",
            id: username.into(),
        }
    }

    pub fn developer(id: impl Into<String>) -> Subject {
        Subject {
            kind: "developer",
            id: id.into(),
        }
    }

    /// A token signing key, by its kid.
    pub fn key(kid: impl Into<String>) -> Subject {
        Subject {
            kind: "key",
            id: kid.into(),
        }
    }

    /// A bulk load of data: the files of `kiln import`, or the bundled sample data.
    pub fn import(source: impl Into<String>) -> Subject {
        Subject {
            kind: "import",
            id: source.into(),
        }
    }
}

/// One auditable event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub action: Action,
    pub outcome: Outcome,
    /// AuditEvent.outcomeDesc: what went wrong, or what a security event did.
    pub description: Option<String>,
    pub agent: Agent,
    pub origin: Origin,
    pub entity: Option<Entity>,
    /// The app, client, user or developer a security event acted on.
    pub subject: Option<Subject>,
    /// The id of the Patient the event is about.
    pub patient: Option<String>,
    /// The search's query string.
    pub query: Option<String>,
}

impl Event {
    /// A FHIR interaction (`restful-interaction` code) that succeeded.
    pub fn rest(interaction: &'static str, agent: Agent, origin: Origin) -> Event {
        Event {
            kind: Kind::Rest(interaction),
            action: Action::of_interaction(interaction),
            outcome: Outcome::Success,
            description: None,
            agent,
            origin,
            entity: None,
            subject: None,
            patient: None,
            query: None,
        }
    }

    /// A security event (action E) with its outcome.
    pub fn security(kind: Kind, outcome: Outcome, agent: Agent, origin: Origin) -> Event {
        Event {
            kind,
            action: Action::Execute,
            outcome,
            description: None,
            agent,
            origin,
            entity: None,
            subject: None,
            patient: None,
            query: None,
        }
    }

    pub fn with_description(mut self, description: impl Into<String>) -> Event {
        self.description = Some(description.into());
        self
    }

    pub fn with_entity(mut self, entity: Entity) -> Event {
        self.entity = Some(entity);
        self
    }

    pub fn with_subject(mut self, subject: Subject) -> Event {
        self.subject = Some(subject);
        self
    }

    /// A Kiln security alert (`110113`) that succeeded: `agent` did `description` to
    /// `subject`.
    pub fn alert(
        security: Security,
        agent: Agent,
        origin: Origin,
        subject: Subject,
        description: impl Into<String>,
    ) -> Event {
        Event::security(Kind::Security(security), Outcome::Success, agent, origin)
            .with_subject(subject)
            .with_description(description)
    }

    /// An EHR launch of app `client_id` by `user` with `patient` (and `encounter`) in
    /// context, made by `agent`: a `security` alert about the client, its patient set (never
    /// the launch token).
    pub fn launch(
        security: Security,
        agent: Agent,
        origin: Origin,
        client_id: &str,
        user: &str,
        patient: &str,
        encounter: Option<&str>,
    ) -> Event {
        let mut description = format!("EHR launch created: user {user}, patient {patient}");
        if let Some(encounter) = encounter {
            description.push_str(&format!(", encounter {encounter}"));
        }
        let mut event = Event::alert(
            security,
            agent,
            origin,
            Subject::client(client_id),
            description,
        );
        event.patient = Some(patient.to_owned());
        event
    }

    /// The stored row of a server at `base` (its observer), recorded now.
    pub fn row(self, base: &str) -> AuditRow {
        let stored = self.stored(uuid::Uuid::now_v7().to_string(), now_micros(), base);
        let body = stored.to_bytes();
        AuditRow::of_stored(stored, body).expect("an Event's action and outcome are AuditEvent's")
    }

    /// Its stored form, with id `event_id`, recorded at `recorded` (µs UTC) by the server
    /// whose FHIR base is `base`.
    pub fn stored(self, event_id: String, recorded: i64, base: &str) -> StoredEvent {
        let (type_code, subtype) = self.kind.codes();
        let (entity, version) = match self.entity {
            Some(entity) => (Some(entity.reference()), entity.version),
            None => (None, None),
        };
        let (subject_kind, subject_id) = match self.subject {
            Some(subject) => (Some(subject.kind.to_owned()), Some(subject.id)),
            None => (None, None),
        };
        StoredEvent {
            v: FORMAT,
            id: event_id,
            recorded,
            type_code: type_code.to_owned(),
            subtype: subtype.to_owned(),
            action: self.action.code().to_owned(),
            outcome: self.outcome.code().to_owned(),
            description: self.description,
            fhir_user: self.agent.fhir_user,
            username: self.agent.username,
            client_id: self.agent.client_id,
            token_id: self.agent.token_id,
            source_ip: self.origin.source_ip,
            request_id: self.origin.request_id,
            entity,
            version,
            subject_kind,
            subject_id,
            patient: self.patient,
            query: self.query,
            base: base.to_owned(),
        }
    }
}

/// A response extension: the request's events were recorded with its write, in its own
/// transaction; the audit layer records nothing more for it.
#[derive(Debug, Clone, Copy)]
pub struct RecordedWithWrite;

/// A response extension a handler may leave for the audit layer: what it knows about the
/// resource it answered with beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    /// The Patient whose compartment the resource is in.
    pub patient: Option<String>,
    /// The version answered.
    pub version: Option<i64>,
}

/// A response extension left by `POST _search`: its query string and its form body's
/// criteria as one query string, recorded instead of the URL's query alone.
#[derive(Debug, Clone)]
pub struct SearchQuery(pub String);

impl SearchQuery {
    pub fn of(params: &[(String, String)]) -> SearchQuery {
        SearchQuery(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish(),
        )
    }
}

/// The origin of any request: its peer address (when the server knows it) and
/// `X-Request-ID`.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Origin::of(&parts.extensions, &parts.headers))
    }
}

impl Origin {
    pub fn of(extensions: &axum::http::Extensions, headers: &axum::http::HeaderMap) -> Origin {
        use axum::extract::ConnectInfo;
        Origin {
            source_ip: extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip().to_string()),
            request_id: headers
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        }
    }
}
