//! Verifying the audit chain (`kiln audit verify`): every row in seq order, each link
//! recomputed from the previous hash, the columns searches use re-derived from the hashed
//! body ([`columns_disagree`]), the seq without gaps from 1, and the head naming the
//! last row. The first break found is reported; memory stays one row whatever the log's size.

use serde_json::Value;

use super::chain;
use super::hash::{GENESIS, link};
use super::query::{AuditColumn, AuditFilter, AuditRow};
use super::stored::Stored;
use crate::fhir::instant::parse_fhir_datetime;
use crate::store::{Store, StoreError, StoreResult};

/// An event as a report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMark {
    pub seq: i64,
    pub event_id: String,
    /// Microseconds since the Unix epoch, UTC.
    pub recorded: i64,
}

impl EventMark {
    fn of(row: &AuditRow) -> EventMark {
        EventMark {
            seq: row.seq,
            event_id: row.event_id.clone(),
            recorded: row.recorded,
        }
    }
}

/// The first break in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The row's hash is not the link of the previous hash, its seq and its body: its body
    /// (or hash) was changed, or the row before it was.
    Altered(EventMark),
    /// The row's body is intact but one of the columns beside it (which searches, the
    /// console and reports read) says something else than the AuditEvent: the column was
    /// changed.
    Columns {
        event: EventMark,
        /// The column's name in `audit_events` (`body` when the body is no AuditEvent).
        column: &'static str,
        /// What the column holds, and what the AuditEvent says (none: absent).
        stored: Option<String>,
        recorded: Option<String>,
    },
    /// Events `first..=last` are missing; `after` is the row before the gap (none when the
    /// gap starts the log), `before` the row after it (none when the log's end was cut: the
    /// head names a later seq).
    Missing {
        first: i64,
        last: i64,
        after: Option<EventMark>,
        before: Option<EventMark>,
    },
    /// The head does not name the last row (its seq or hash differ).
    Head {
        head_seq: i64,
        last: Option<EventMark>,
    },
}

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Rows read (up to the break, when there is one).
    pub events: i64,
    pub last_seq: i64,
    pub broken: Option<Break>,
}

/// The walk stops at the first break (not a database error).
enum Stop {
    Broken(Break),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Store(error)
    }
}

impl Store {
    /// Walks the whole chain (see the module comment).
    pub async fn audit_verify(&self) -> StoreResult<Verdict> {
        // Read first: appends after it only add rows past the head read here.
        let (head_seq, head_hash) = self.audit_head().await?;
        let mut previous: Option<AuditRow> = None;
        let mut previous_hash: Vec<u8> = GENESIS.to_vec();
        let mut events = 0i64;
        let mut check = |row: AuditRow| -> Result<(), Stop> {
            if row.seq > head_seq {
                // Appended after the head was read.
                return Ok(());
            }
            let expected = previous.as_ref().map_or(1, |p| p.seq + 1);
            if row.seq != expected {
                return Err(Stop::Broken(Break::Missing {
                    first: expected,
                    last: row.seq - 1,
                    after: previous.as_ref().map(EventMark::of),
                    before: Some(EventMark::of(&row)),
                }));
            }
            if link(&previous_hash, row.seq, &row.body).as_slice() != row.hash.as_slice() {
                return Err(Stop::Broken(Break::Altered(EventMark::of(&row))));
            }
            if let Some((column, stored, recorded)) = columns_disagree(&row) {
                return Err(Stop::Broken(Break::Columns {
                    event: EventMark::of(&row),
                    column,
                    stored,
                    recorded,
                }));
            }
            events += 1;
            previous_hash = row.hash.clone();
            previous = Some(row);
            Ok(())
        };
        let walk = self
            .audit_each(
                &AuditFilter::default(),
                &[(AuditColumn::Seq, false)],
                |row: AuditRow| std::future::ready(check(row)),
            )
            .await;
        let last_seq = previous.as_ref().map_or(0, |p| p.seq);
        let broken = match walk {
            Err(Stop::Store(error)) => return Err(error),
            Err(Stop::Broken(found)) => Some(found),
            Ok(()) if last_seq < head_seq => Some(Break::Missing {
                first: last_seq + 1,
                last: head_seq,
                after: previous.as_ref().map(EventMark::of),
                before: None,
            }),
            Ok(()) if previous_hash != head_hash => Some(Break::Head {
                head_seq,
                last: previous.as_ref().map(EventMark::of),
            }),
            Ok(()) => None,
        };
        Ok(Verdict {
            events,
            last_seq,
            broken,
        })
    }
}

/// The first column of `row` that differs from what its body says, with the stored value
/// and the body's; `None` when every column agrees. For the stored form, the columns are
/// derived as they were when recorded (`chain::AuditRow::of_stored`); for a row stored as
/// AuditEvent JSON, as Kiln built that JSON (`audit::balp`): `id`, `recorded`, `type.code`,
/// `subtype[0].code`, `action`, `outcome`; the user agent's (`UserOauthAgent`)
/// `who.reference` and `altId`; the source agent's (DICOM 110153) `who.identifier.value`;
/// the Patient entity (role 1) and the Domain Resource entity (role 4, without its
/// `_history` part) or else the Kiln identifier entity (`urn:kiln:KIND` → `KIND:value`).
pub fn columns_disagree(row: &AuditRow) -> Option<(&'static str, Option<String>, Option<String>)> {
    let derived = match Stored::parse(&row.body) {
        Some(Stored::Event(event)) => {
            chain::AuditRow::of_stored(*event, Vec::new()).map(|derived| Columns {
                event_id: Some(derived.event_id),
                recorded: Some(derived.recorded),
                type_code: Some(derived.type_code),
                subtype: derived.subtype,
                action: Some(derived.action.to_owned()),
                outcome: Some(derived.outcome.to_owned()),
                agent_who: derived.agent_who,
                agent_user: derived.agent_user,
                agent_client: derived.agent_client,
                patient: derived.patient,
                entity: derived.entity,
            })
        }
        Some(Stored::Resource(body)) => Some(resource_columns(&body)),
        None => None,
    };
    let Some(derived) = derived else {
        return Some(("body", None, None));
    };
    let pairs: [(&'static str, Option<String>, Option<String>); 11] = [
        ("event_id", Some(row.event_id.clone()), derived.event_id),
        (
            "recorded",
            Some(row.recorded.to_string()),
            derived.recorded.map(|micros| micros.to_string()),
        ),
        ("type_code", Some(row.type_code.clone()), derived.type_code),
        ("subtype", row.subtype.clone(), derived.subtype),
        ("action", Some(row.action.clone()), derived.action),
        ("outcome", Some(row.outcome.clone()), derived.outcome),
        ("agent_who", row.agent_who.clone(), derived.agent_who),
        ("agent_user", row.agent_user.clone(), derived.agent_user),
        (
            "agent_client",
            row.agent_client.clone(),
            derived.agent_client,
        ),
        ("patient", row.patient.clone(), derived.patient),
        ("entity", row.entity.clone(), derived.entity),
    ];
    pairs
        .into_iter()
        .find(|(_, stored, recorded)| stored != recorded)
}

/// The columns a body says its row should have (none: absent).
struct Columns {
    event_id: Option<String>,
    recorded: Option<i64>,
    type_code: Option<String>,
    subtype: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    agent_who: Option<String>,
    agent_user: Option<String>,
    agent_client: Option<String>,
    patient: Option<String>,
    entity: Option<String>,
}

/// The columns of a row stored as AuditEvent JSON, read from it.
fn resource_columns(body: &Value) -> Columns {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let agent = |code: &str| {
        body["agent"].as_array().and_then(|agents| {
            agents
                .iter()
                .find(|agent| agent["type"]["coding"][0]["code"] == code)
        })
    };
    let user = agent("UserOauthAgent");
    let entities = body["entity"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let role = |code: &str| {
        entities
            .iter()
            .find(|entity| entity["role"]["code"] == code)
            .and_then(|entity| entity["what"]["reference"].as_str())
    };
    let subject = entities.iter().find_map(|entity| {
        let identifier = &entity["what"]["identifier"];
        let kind = identifier["system"].as_str()?.strip_prefix("urn:kiln:")?;
        Some(format!("{kind}:{}", identifier["value"].as_str()?))
    });
    let resource = role("4").map(|reference| match reference.split_once("/_history/") {
        Some((reference, _)) => reference.to_owned(),
        None => reference.to_owned(),
    });
    Columns {
        event_id: text(&body["id"]),
        recorded: body["recorded"].as_str().and_then(parse_fhir_datetime),
        type_code: text(&body["type"]["code"]),
        subtype: text(&body["subtype"][0]["code"]),
        action: text(&body["action"]),
        outcome: text(&body["outcome"]),
        agent_who: user.and_then(|agent| text(&agent["who"]["reference"])),
        agent_user: user.and_then(|agent| text(&agent["altId"])),
        agent_client: agent("110153").and_then(|agent| text(&agent["who"]["identifier"]["value"])),
        patient: role("1")
            .and_then(|reference| reference.strip_prefix("Patient/").map(str::to_owned)),
        entity: resource.or(subject),
    }
}
