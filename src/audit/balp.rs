//! The AuditEvent JSON of a stored event (`store::audit::stored`), built when it is read,
//! after the IHE Basic Audit Log Patterns (BALP) profiles: `rest` events claim the
//! Create/Read/Update/Delete/Query profile (its Patient variant when a patient entity is
//! present), and carry three agents (the client app as source, the user of the OAuth token,
//! this server as destination), the server as the source observer, and entities for the
//! patient, the resource, the query and the request id.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::event::{DCM, KILN_SUBTYPE, Security};
use crate::fhir::instant::to_fhir_instant;
use crate::store::audit::stored::{Stored, StoredEvent};

const PROFILES: &str = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const BALP_ENTITY_TYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";
const USER_AGENT_TYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes";
const NETWORK_IP: &str = "2";
const NETWORK_URI: &str = "5";

/// The AuditEvent of a stored event.
pub fn audit_event(event: &StoredEvent) -> Value {
    let (type_system, type_display) = type_coding(&event.type_code);
    let (sub_system, sub_display) = subtype_coding(&event.type_code, &event.subtype);
    let base = event.base.as_str();
    let mut audit = Map::new();
    audit.insert("resourceType".into(), json!("AuditEvent"));
    audit.insert("id".into(), json!(event.id));
    let mut profiles = Vec::new();
    if let Some(profile) = profile(event) {
        profiles.push(json!(format!("{PROFILES}{profile}")));
    }
    if event.token_id.is_some() {
        profiles.push(json!(format!(
            "{PROFILES}IHE.BasicAudit.OAUTHaccessTokenUse.Minimal"
        )));
    }
    if !profiles.is_empty() {
        audit.insert("meta".into(), json!({ "profile": profiles }));
    }
    audit.insert(
        "type".into(),
        json!({ "system": type_system, "code": event.type_code, "display": type_display }),
    );
    audit.insert(
        "subtype".into(),
        json!([{ "system": sub_system, "code": event.subtype, "display": sub_display }]),
    );
    audit.insert("action".into(), json!(event.action));
    audit.insert("recorded".into(), json!(to_fhir_instant(event.recorded)));
    audit.insert("outcome".into(), json!(event.outcome));
    if let Some(description) = &event.description {
        audit.insert("outcomeDesc".into(), json!(description));
    }
    audit.insert("agent".into(), Value::Array(agents(event)));
    audit.insert(
        "source".into(),
        json!({
            "site": base,
            "observer": { "identifier": { "value": base }, "display": "Kiln FHIR server" },
            "type": [{
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server"
            }]
        }),
    );
    let entities = entities(event);
    if !entities.is_empty() {
        audit.insert("entity".into(), Value::Array(entities));
    }
    Value::Object(audit)
}

/// The AuditEvent JSON of a stored body: built from the stored form, or the body itself for
/// a row stored as AuditEvent JSON; `None` for a body that is neither (damaged).
pub fn audit_event_of(body: &[u8]) -> Option<Value> {
    match Stored::parse(body)? {
        Stored::Event(event) => Some(audit_event(&event)),
        Stored::Resource(resource) => Some(resource),
    }
}

/// `(system, display)` of AuditEvent.type.
fn type_coding(code: &str) -> (&'static str, &'static str) {
    match code {
        "rest" => (
            "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "Restful Operation",
        ),
        "110114" => (DCM, "User Authentication"),
        _ => (DCM, "Security Alert"),
    }
}

/// `(system, display)` of AuditEvent.subtype.
fn subtype_coding<'a>(type_code: &str, code: &'a str) -> (&'static str, &'a str) {
    match (type_code, code) {
        ("rest", code) => ("http://hl7.org/fhir/restful-interaction", code),
        (_, "110122") => (DCM, "Login"),
        (_, "110123") => (DCM, "Logout"),
        (_, code) => match Security::of_code(code) {
            Some(security) => (KILN_SUBTYPE, security.display()),
            None => (KILN_SUBTYPE, code),
        },
    }
}

/// The BALP profile a `rest` event conforms to.
fn profile(event: &StoredEvent) -> Option<String> {
    if event.type_code != "rest" {
        return None;
    }
    let basic = match event.subtype.as_str() {
        "create" => "Create",
        "read" | "vread" => "Read",
        "update" | "patch" => "Update",
        "delete" => "Delete",
        code if code.starts_with("search") => "Query",
        _ => return None,
    };
    let patient = if event.patient.is_some() {
        "Patient"
    } else {
        ""
    };
    Some(format!("IHE.BasicAudit.{patient}{basic}"))
}

fn agents(event: &StoredEvent) -> Vec<Value> {
    let base = event.base.as_str();
    let mut agents = Vec::new();
    let network = event
        .source_ip
        .as_ref()
        .map(|ip| json!({ "address": ip, "type": NETWORK_IP }));
    // The app that called: the source of the request.
    let mut client = Map::new();
    client.insert(
        "type".into(),
        json!({ "coding": [{ "system": DCM, "code": "110153", "display": "Source Role ID" }] }),
    );
    if let Some(client_id) = &event.client_id {
        client.insert(
            "who".into(),
            json!({ "identifier": { "value": client_id }, "display": client_id }),
        );
    }
    client.insert("requestor".into(), json!(event.username.is_none()));
    if let Some(network) = &network {
        client.insert("network".into(), network.clone());
    }
    agents.push(Value::Object(client));
    // The user, when there is one.
    if event.username.is_some() || event.fhir_user.is_some() {
        let mut user = Map::new();
        user.insert(
            "type".into(),
            json!({ "coding": [{
                "system": USER_AGENT_TYPE,
                "code": "UserOauthAgent",
                "display": "User OAuth Agent participant"
            }] }),
        );
        let mut who = Map::new();
        if let Some(fhir_user) = &event.fhir_user {
            who.insert("reference".into(), json!(fhir_user));
        }
        if let Some(username) = &event.username {
            who.insert("display".into(), json!(username));
            user.insert("altId".into(), json!(username));
        }
        user.insert("who".into(), Value::Object(who));
        user.insert("requestor".into(), json!(true));
        if let Some(token_id) = &event.token_id {
            user.insert("policy".into(), json!([token_id]));
        }
        if let Some(network) = &network {
            user.insert("network".into(), network.clone());
        }
        agents.push(Value::Object(user));
    } else if let (Some(token_id), Some(slot)) = (&event.token_id, agents.first_mut()) {
        slot["policy"] = json!([token_id]);
    }
    // This server: the destination.
    agents.push(json!({
        "type": { "coding": [{ "system": DCM, "code": "110152", "display": "Destination Role ID" }] },
        "who": { "identifier": { "value": base }, "display": "Kiln FHIR server" },
        "requestor": false,
        "network": { "address": base, "type": NETWORK_URI }
    }));
    agents
}

fn entities(event: &StoredEvent) -> Vec<Value> {
    let mut entities = Vec::new();
    if let Some(patient) = &event.patient {
        entities.push(json!({
            "what": { "reference": format!("Patient/{patient}") },
            "type": { "system": ENTITY_TYPE, "code": "1", "display": "Person" },
            "role": { "system": OBJECT_ROLE, "code": "1", "display": "Patient" }
        }));
    }
    if let Some(entity) = &event.entity {
        let reference = match event.version {
            Some(version) => format!("{entity}/_history/{version}"),
            None => entity.clone(),
        };
        entities.push(json!({
            "what": { "reference": reference },
            "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
            "role": { "system": OBJECT_ROLE, "code": "4", "display": "Domain Resource" }
        }));
    }
    if let (Some(kind), Some(id), Some(stored)) =
        (&event.subject_kind, &event.subject_id, event.subject())
    {
        entities.push(json!({
            "what": {
                "identifier": { "system": format!("urn:kiln:{kind}"), "value": id },
                "display": stored
            },
            "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" }
        }));
    }
    if let Some(query) = &event.query {
        entities.push(json!({
            "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
            "role": { "system": OBJECT_ROLE, "code": "24", "display": "Query" },
            "query": STANDARD.encode(query.as_bytes())
        }));
    }
    if let Some(request_id) = &event.request_id {
        entities.push(json!({
            "what": { "identifier": { "value": request_id } },
            "type": { "system": BALP_ENTITY_TYPE, "code": "XrequestId", "display": "X-Request-Id" }
        }));
    }
    entities
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::{Agent, Entity, Event, Kind, Origin, Outcome};
    use crate::fhir::validate::validate_resource;

    fn full_event() -> Event {
        let mut event = Event::rest(
            "read",
            Agent {
                fhir_user: Some("Practitioner/7".into()),
                username: Some("dr.who".into()),
                client_id: Some("app-1".into()),
                token_id: Some("ab".repeat(32)),
            },
            Origin {
                source_ip: Some("127.0.0.1".into()),
                request_id: Some("req-1".into()),
            },
        )
        .with_entity(Entity {
            resource_type: "Observation".into(),
            id: "o1".into(),
            version: Some(3),
        });
        event.patient = Some("p1".into());
        event.query = Some("code=1234-5".into());
        event
    }

    #[test]
    fn a_patient_read_is_a_valid_balp_audit_event() {
        let event = full_event();
        let body = audit_event(&event.stored(
            "0b6c1c2e-4b1a-4f5e-9d0e-1a2b3c4d5e6f".into(),
            1_700_000_000_000_000,
            "http://kiln.test/fhir",
        ));
        assert_eq!(validate_resource(&body), vec![]);
        assert_eq!(body["type"]["code"], "rest");
        assert_eq!(body["subtype"][0]["code"], "read");
        assert_eq!(body["action"], "R");
        assert_eq!(body["outcome"], "0");
        assert_eq!(
            body["meta"]["profile"][0],
            "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
        );
        assert_eq!(body["agent"][0]["who"]["identifier"]["value"], "app-1");
        assert_eq!(body["agent"][1]["who"]["reference"], "Practitioner/7");
        assert_eq!(body["agent"][1]["policy"][0], "ab".repeat(32));
        assert_eq!(body["entity"][0]["what"]["reference"], "Patient/p1");
        assert_eq!(
            body["entity"][1]["what"]["reference"],
            "Observation/o1/_history/3"
        );
        assert_eq!(body["entity"][2]["query"], STANDARD.encode("code=1234-5"));
        assert_eq!(body["entity"][3]["what"]["identifier"]["value"], "req-1");
        assert_eq!(body["recorded"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn security_and_failed_events_are_valid_too() {
        let refused = Event::security(
            Kind::Security(Security::TokenRefused),
            Outcome::Minor,
            Agent::client("app-1"),
            Origin::default(),
        )
        .with_description("invalid_grant");
        let body = audit_event(&refused.stored("e1".into(), 0, "http://kiln.test/fhir"));
        assert_eq!(validate_resource(&body), vec![]);
        assert_eq!(body["type"]["code"], "110113");
        assert_eq!(body["subtype"][0]["code"], "token-refused");
        assert_eq!(body["outcome"], "4");
        assert_eq!(body["outcomeDesc"], "invalid_grant");
        let login = Event::security(
            Kind::Login,
            Outcome::Success,
            Agent::user("amy"),
            Origin::default(),
        );
        let body = audit_event(&login.stored("e2".into(), 0, "http://kiln.test/fhir"));
        assert_eq!(validate_resource(&body), vec![]);
        assert_eq!(body["subtype"][0]["code"], "110122");
    }
}
