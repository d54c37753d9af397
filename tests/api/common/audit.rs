//! Writing the audit log straight into a test's database, as Kiln's recorder would: each row
//! chained to the one before (SHA-256 over the previous hash, the seq as 8 big-endian bytes
//! and the body, re-implemented here from migration 0017's comment) and the head moved on.
//! Reading it back: every row with its columns ([`rows`]). Also raw SQL on that database, to
//! tamper with it and to look rows up. A server on a SQLite file loads its audit spool into
//! the table a moment after answering, so every read here first waits until the server of
//! that database reports no backlog ([`settle`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{Context, SHA256};
use serde_json::{Value, json};

/// An event to append: the columns, and a body built from them.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub event_id: &'static str,
    /// RFC 3339, UTC.
    pub recorded: &'static str,
    pub type_code: &'static str,
    pub subtype: Option<&'static str>,
    pub action: &'static str,
    pub outcome: &'static str,
    pub agent_who: Option<&'static str>,
    pub agent_user: Option<&'static str>,
    pub agent_client: Option<&'static str>,
    pub patient: Option<&'static str>,
    pub entity: Option<&'static str>,
}

impl Event {
    /// The AuditEvent JSON stored for the event, shaped as Kiln's (IHE BALP) so that its
    /// columns are what `kiln audit verify` derives from it: the source agent (DICOM 110153)
    /// names the client, the user agent (`UserOauthAgent`) the FHIR user and username, the
    /// entities with role 1 and 4 the patient and the resource.
    pub fn body(&self) -> Value {
        let system = if self.type_code == "rest" {
            "http://terminology.hl7.org/CodeSystem/audit-event-type"
        } else {
            "http://dicom.nema.org/resources/ontology/DCM"
        };
        let mut entity: Vec<Value> = Vec::new();
        if let Some(patient) = self.patient {
            entity.push(json!({
                "what": {"reference": format!("Patient/{patient}")},
                "role": {"code": "1"},
            }));
        }
        if let Some(what) = self.entity {
            entity.push(json!({"what": {"reference": what}, "role": {"code": "4"}}));
        }
        let mut agent = vec![json!({
            "type": {"coding": [{"code": "110153"}]},
            "who": self.agent_client.map(|id| json!({"identifier": {"value": id}})),
            "requestor": self.agent_user.is_none(),
        })];
        if self.agent_who.is_some() || self.agent_user.is_some() {
            agent.push(json!({
                "type": {"coding": [{"code": "UserOauthAgent"}]},
                "who": self.agent_who.map(|r| json!({"reference": r})),
                "altId": self.agent_user,
                "requestor": true,
            }));
        }
        json!({
            "resourceType": "AuditEvent",
            "id": self.event_id,
            "type": {"system": system, "code": self.type_code},
            "subtype": self.subtype.map(|code| vec![json!({"code": code})]),
            "action": self.action,
            "recorded": self.recorded,
            "outcome": self.outcome,
            "agent": agent,
            "source": {"observer": {"display": "Kiln"}},
            "entity": entity,
        })
    }

    fn micros(&self) -> i64 {
        let parsed = time::OffsetDateTime::parse(
            self.recorded,
            &time::format_description::well_known::Rfc3339,
        )
        .expect("recorded is RFC 3339");
        i64::try_from(parsed.unix_timestamp_nanos() / 1000).unwrap()
    }
}

fn link(previous: &[u8], seq: i64, body: &[u8]) -> Vec<u8> {
    let mut context = Context::new(&SHA256);
    context.update(previous);
    context.update(&seq.to_be_bytes());
    context.update(body);
    context.finish().as_ref().to_vec()
}

/// The address of the server last started on each database URL.
static SERVERS: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// Notes that the server at `direct` (its own address) serves the database at `url`.
pub fn register(url: &str, direct: &str) {
    SERVERS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(url.to_owned(), direct.to_owned());
}

/// Waits until the server of the database at `url` has loaded every event it spooled into
/// the table (its `kiln_audit_backlog` gauge is 0 or absent; a server that is not running
/// has nothing to load).
pub async fn settle(url: &str) {
    let Some(direct) = SERVERS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|servers| servers.get(url).cloned())
    else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while backlog(&direct).await.is_some_and(|backlog| backlog > 0.0) {
        assert!(
            Instant::now() < deadline,
            "the audit spool of {direct} did not drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `kiln_audit_backlog` gauge of the server at `direct`; `None` when it has none (no
/// spool, or no event yet) or does not answer.
pub async fn backlog(direct: &str) -> Option<f64> {
    let response = reqwest::get(format!("{direct}/metrics")).await.ok()?;
    let text = response.text().await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("kiln_audit_backlog "))
        .and_then(|value| value.trim().parse().ok())
}

/// Runs `$body` with `$pool` connected to `$url`'s database (PostgreSQL or SQLite).
macro_rules! with_pool {
    ($url:expr, $pool:ident => $body:expr) => {
        if $url.starts_with("postgres") {
            let $pool = sqlx::PgPool::connect($url).await.expect("connect");
            let out = $body;
            $pool.close().await;
            out
        } else {
            let $pool = sqlx::SqlitePool::connect($url).await.expect("connect");
            let out = $body;
            $pool.close().await;
            out
        }
    };
}
pub(crate) use with_pool;

/// Appends `events` to the chain of the database at `url`, in one transaction that holds the
/// chain head's lock as Kiln's recorder does (PostgreSQL `FOR UPDATE`, SQLite `BEGIN
/// IMMEDIATE`), so a running server's own appends wait for it rather than fork the chain.
pub async fn append(url: &str, events: &[Event]) {
    settle(url).await;
    use sqlx::Row;
    let (begin, head) = if url.starts_with("postgres") {
        ("BEGIN", "SELECT seq, hash FROM audit_chain_head FOR UPDATE")
    } else {
        ("BEGIN IMMEDIATE", "SELECT seq, hash FROM audit_chain_head")
    };
    with_pool!(url, pool => {
        let mut tx = pool.begin_with(begin).await.unwrap();
        let head = sqlx::query(head)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let mut seq: i64 = head.get("seq");
        let mut hash: Vec<u8> = head.get("hash");
        for event in events {
            seq += 1;
            let body = serde_json::to_vec(&event.body()).unwrap();
            hash = link(&hash, seq, &body);
            sqlx::query(
                "INSERT INTO audit_events (seq, event_id, recorded, type_code, subtype, action, \
                 outcome, agent_who, agent_user, agent_client, patient, entity, body, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(seq)
            .bind(event.event_id)
            .bind(event.micros())
            .bind(event.type_code)
            .bind(event.subtype)
            .bind(event.action)
            .bind(event.outcome)
            .bind(event.agent_who)
            .bind(event.agent_user)
            .bind(event.agent_client)
            .bind(event.patient)
            .bind(event.entity)
            .bind(&body)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        sqlx::query("UPDATE audit_chain_head SET seq = $1, hash = $2")
            .bind(seq)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    })
}

/// Runs one statement (with no parameters) on the database at `url`.
pub async fn execute(url: &str, sql: &str) {
    settle(url).await;
    with_pool!(url, pool => {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    })
}

/// The single integer a query answers on the database at `url`.
pub async fn count(url: &str, sql: &str) -> i64 {
    settle(url).await;
    with_pool!(url, pool => {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    })
}

/// The seq of the event `event_id` on the database at `url`.
pub async fn seq_of(url: &str, event_id: &str) -> i64 {
    count(
        url,
        &format!("SELECT seq FROM audit_events WHERE event_id = '{event_id}'"),
    )
    .await
}

/// The events after `seq` on the database at `url`, in the order they were recorded (a
/// server's spooled events reach the chain after the events written straight to it):
/// subtype, outcome and the stored AuditEvent.
pub async fn after(url: &str, seq: i64) -> Vec<(Option<String>, String, Value)> {
    let mut rows: Vec<Row> = rows(url)
        .await
        .into_iter()
        .filter(|row| row.seq > seq)
        .collect();
    rows.sort_by_key(|row| row.recorded);
    rows.into_iter()
        .map(|row| (row.subtype, row.outcome, row.body))
        .collect()
}

/// One stored `audit_events` row: every column, its AuditEvent (`body`: built from the
/// stored form by the server's own `audit::balp`, as the API serves it) and the body as
/// stored (`raw`, the bytes the hash covers).
#[derive(Debug, Clone)]
pub struct Row {
    pub seq: i64,
    pub event_id: String,
    pub recorded: i64,
    pub type_code: String,
    pub subtype: Option<String>,
    pub action: String,
    pub outcome: String,
    pub agent_who: Option<String>,
    pub agent_user: Option<String>,
    pub agent_client: Option<String>,
    pub patient: Option<String>,
    pub entity: Option<String>,
    pub body: Value,
    pub raw: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Every row of the log of the database at `url`, in chain (seq) order.
pub async fn rows(url: &str) -> Vec<Row> {
    settle(url).await;
    use sqlx::Row as _;
    const SELECT: &str = "SELECT seq, event_id, recorded, type_code, subtype, action, outcome, \
                          agent_who, agent_user, agent_client, patient, entity, body, hash \
                          FROM audit_events ORDER BY seq";
    macro_rules! read {
        ($row:expr) => {{
            let row = $row;
            let raw: Vec<u8> = row.get("body");
            Row {
                seq: row.get("seq"),
                event_id: row.get("event_id"),
                recorded: row.get("recorded"),
                type_code: row.get("type_code"),
                subtype: row.get("subtype"),
                action: row.get("action"),
                outcome: row.get("outcome"),
                agent_who: row.get("agent_who"),
                agent_user: row.get("agent_user"),
                agent_client: row.get("agent_client"),
                patient: row.get("patient"),
                entity: row.get("entity"),
                body: kiln::audit::balp::audit_event_of(&raw).expect("an AuditEvent's stored body"),
                raw,
                hash: row.get("hash"),
            }
        }};
    }
    with_pool!(url, pool => {
        let found = sqlx::query(SELECT).fetch_all(&pool).await.unwrap();
        found.iter().map(|row| read!(row)).collect()
    })
}
