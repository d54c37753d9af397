//! The stored form of an audit event: the facts of one event as compact JSON (about 300
//! bytes), which the chain hashes, the spool writes and the table keeps. The AuditEvent
//! resource (IHE BALP, `audit::balp`) is built from it when it is read, so a read of the
//! FHIR API costs neither that resource's construction nor its kilobyte and a half on disk;
//! everything it says is in the stored form, so the hash covers all of it. Rows stored
//! before this form (the AuditEvent JSON itself) stay as they are: [`Stored::parse`] tells
//! the two apart.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chain::AuditRow;

/// The value of [`StoredEvent::v`], the first key of every stored event.
pub const FORMAT: u8 = 1;

/// One event's facts. The columns searches filter on are derived from it
/// ([`AuditRow::of_stored`]), and `kiln audit verify` checks that they still agree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// [`FORMAT`].
    pub v: u8,
    /// AuditEvent.id.
    pub id: String,
    /// AuditEvent.recorded: microseconds since the Unix epoch, UTC.
    pub recorded: i64,
    /// AuditEvent.type.code: `rest`, `110114` (user authentication), `110113` (security
    /// alert).
    #[serde(rename = "type")]
    pub type_code: String,
    /// AuditEvent.subtype.code: a `restful-interaction` code, `110122`/`110123` (login,
    /// logout) or a Kiln subtype (`urn:kiln:audit-subtype`).
    pub subtype: String,
    /// AuditEvent.action: C R U D E.
    pub action: String,
    /// AuditEvent.outcome: 0 4 8 12.
    pub outcome: String,
    /// AuditEvent.outcomeDesc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The user's FHIR resource (`Practitioner/123`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The OAuth client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The SHA-256 hex of the access token (never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// `X-Request-ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The resource the event is about: `Type/id`, and the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// What a security event acted on that is not a resource: its kind (`app`, `client`,
    /// `user`, `developer`, `key`, `import`) and id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    /// The id of the Patient the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The search's query string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The FHIR base of the server that recorded it (the AuditEvent's observer).
    pub base: String,
}

impl StoredEvent {
    /// `kind:id` of the subject, the `entity` column of a security event.
    pub fn subject(&self) -> Option<String> {
        match (&self.subject_kind, &self.subject_id) {
            (Some(kind), Some(id)) => Some(format!("{kind}:{id}")),
            _ => None,
        }
    }

    /// The stored bytes (what the chain hashes).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A stored body, read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// The stored form.
    Event(Box<StoredEvent>),
    /// A row stored before it: the AuditEvent JSON itself.
    Resource(Value),
}

impl Stored {
    /// Reads a stored body: the stored form (it starts `{"v":`) or the AuditEvent JSON of an
    /// older row; `None` when it is neither (a damaged or altered body).
    pub fn parse(body: &[u8]) -> Option<Stored> {
        if body.starts_with(b"{\"v\":") {
            let event: StoredEvent = serde_json::from_slice(body).ok()?;
            return (event.v == FORMAT).then(|| Stored::Event(Box::new(event)));
        }
        let resource: Value = serde_json::from_slice(body).ok()?;
        (resource["resourceType"] == "AuditEvent").then_some(Stored::Resource(resource))
    }
}

/// `code` as the `'static` AuditEvent.action it equals, if it is one.
pub fn action(code: &str) -> Option<&'static str> {
    ["C", "R", "U", "D", "E"]
        .into_iter()
        .find(|known| *known == code)
}

/// `code` as the `'static` AuditEvent.outcome it equals, if it is one.
pub fn outcome(code: &str) -> Option<&'static str> {
    ["0", "4", "8", "12"]
        .into_iter()
        .find(|known| *known == code)
}

impl AuditRow {
    /// The row of `event`, with `body` its stored bytes; `None` when its action or outcome
    /// is not one AuditEvent allows.
    pub fn of_stored(event: StoredEvent, body: Vec<u8>) -> Option<AuditRow> {
        let entity = event.entity.clone().or_else(|| event.subject());
        Some(AuditRow {
            action: action(&event.action)?,
            outcome: outcome(&event.outcome)?,
            event_id: event.id,
            recorded: event.recorded,
            type_code: event.type_code,
            subtype: Some(event.subtype),
            agent_who: event.fhir_user,
            agent_user: event.username,
            agent_client: event.client_id,
            patient: event.patient,
            entity,
            body,
        })
    }

    /// The row of the stored bytes `body`; `None` when they are not the stored form.
    pub fn of_body(body: Vec<u8>) -> Option<AuditRow> {
        match Stored::parse(&body)? {
            Stored::Event(event) => AuditRow::of_stored(*event, body),
            Stored::Resource(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_reads_back_with_its_columns() {
        let event = StoredEvent {
            v: FORMAT,
            id: "e1".into(),
            recorded: 7,
            type_code: "rest".into(),
            subtype: "read".into(),
            action: "R".into(),
            outcome: "0".into(),
            client_id: Some("app \"1\"\n".into()),
            entity: Some("Observation/o1".into()),
            version: Some(2),
            patient: Some("p1".into()),
            base: "http://kiln.test/fhir".into(),
            ..StoredEvent::default()
        };
        let body = event.to_bytes();
        assert!(!body.contains(&b'\n'), "one line");
        assert_eq!(
            Stored::parse(&body),
            Some(Stored::Event(Box::new(event.clone())))
        );
        let row = AuditRow::of_body(body).unwrap();
        assert_eq!(row.entity.as_deref(), Some("Observation/o1"));
        assert_eq!(row.agent_client, event.client_id);
        assert_eq!((row.action, row.outcome), ("R", "0"));
        let old = br#"{"resourceType":"AuditEvent","id":"e0"}"#;
        assert!(matches!(Stored::parse(old), Some(Stored::Resource(_))));
        assert_eq!(Stored::parse(b"{\"v\":1}"), None);
        assert_eq!(Stored::parse(b"{\"resourceType\":\"Patient\"}"), None);
        let strange = StoredEvent {
            action: "X".into(),
            ..event
        };
        assert_eq!(AuditRow::of_body(strange.to_bytes()), None);
    }
}
