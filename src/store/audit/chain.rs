//! Appending to the audit chain: every event gets the next `seq` and its link
//! (`hash::link`) under the chain head's lock, inside the caller's write transaction (so a
//! write and its events commit together) or in a transaction of its own (a batch of events).

use std::collections::HashSet;

use sqlx::{QueryBuilder, Sqlite};

use super::hash::link;
use crate::store::{Store, StoreResult, Tx};

/// Rows per multi-row INSERT on SQLite, at most: 14 parameters each, far below its limit.
/// A batch goes in chunks of power-of-two sizes (13 rows: 8, 4, 1), so the few statements
/// there are stay prepared in the connection's cache instead of one per batch size.
const SQLITE_CHUNK_ROWS: usize = 512;

/// Event ids per lookup on SQLite, at most: one bound parameter each, well below its limit
/// (32,766 parameters per statement) whatever the size of the batch asked about.
const SQLITE_IDS_PER_QUERY: usize = 4096;

/// One event as stored: the AuditEvent's bytes and the columns searches filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub event_id: String,
    /// Microseconds since the Unix epoch, UTC.
    pub recorded: i64,
    pub type_code: String,
    pub subtype: Option<String>,
    pub action: &'static str,
    pub outcome: &'static str,
    pub agent_who: Option<String>,
    pub agent_user: Option<String>,
    pub agent_client: Option<String>,
    pub patient: Option<String>,
    pub entity: Option<String>,
    /// The AuditEvent JSON, exactly as hashed.
    pub body: Vec<u8>,
}

/// PostgreSQL appends a batch in one statement (the function of migrations 0020 and 0021,
/// which links the rows itself), one array per column.
const PG_APPEND: &str = "SELECT kiln_audit_append($1::text[], $2::int8[], $3::text[], $4::text[], \
     $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
     $12::bytea[])";

/// Appends `rows` on PostgreSQL through `executor`: inside its transaction, or a commit of
/// its own when it is the pool.
async fn append_postgres<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    rows: &[AuditRow],
) -> StoreResult<()> {
    let column = |get: fn(&AuditRow) -> Option<&str>| -> Vec<Option<&str>> {
        rows.iter().map(get).collect()
    };
    sqlx::query(PG_APPEND)
        .bind(column(|row| Some(&row.event_id)))
        .bind(rows.iter().map(|row| row.recorded).collect::<Vec<_>>())
        .bind(column(|row| Some(&row.type_code)))
        .bind(column(|row| row.subtype.as_deref()))
        .bind(column(|row| Some(row.action)))
        .bind(column(|row| Some(row.outcome)))
        .bind(column(|row| row.agent_who.as_deref()))
        .bind(column(|row| row.agent_user.as_deref()))
        .bind(column(|row| row.agent_client.as_deref()))
        .bind(column(|row| row.patient.as_deref()))
        .bind(column(|row| row.entity.as_deref()))
        .bind(
            rows.iter()
                .map(|row| row.body.as_slice())
                .collect::<Vec<_>>(),
        )
        .execute(executor)
        .await?;
    Ok(())
}

/// One multi-row INSERT of `(seq, row, hash)` triples on SQLite. `OR ROLLBACK`: a row that
/// broke a constraint would end the whole transaction (which fails then anyway) instead of
/// only this statement, so SQLite keeps no statement journal, which would copy every page
/// the INSERT touches before changing it: about as many pages as the rows themselves.
fn insert_rows(chunk: &[(i64, &AuditRow, Vec<u8>)]) -> QueryBuilder<Sqlite> {
    let mut sql = QueryBuilder::new(
        "INSERT OR ROLLBACK INTO audit_events (seq, event_id, recorded, type_code, subtype, action, \
         outcome, agent_who, agent_user, agent_client, patient, entity, body, hash) ",
    );
    sql.push_values(chunk, |mut values, (seq, row, hash)| {
        values
            .push_bind(*seq)
            .push_bind(row.event_id.as_str())
            .push_bind(row.recorded)
            .push_bind(row.type_code.as_str())
            .push_bind(row.subtype.as_deref())
            .push_bind(row.action)
            .push_bind(row.outcome)
            .push_bind(row.agent_who.as_deref())
            .push_bind(row.agent_user.as_deref())
            .push_bind(row.agent_client.as_deref())
            .push_bind(row.patient.as_deref())
            .push_bind(row.entity.as_deref())
            .push_bind(row.body.as_slice())
            .push_bind(hash.as_slice());
    });
    sql
}

impl Tx {
    /// Appends `rows` to the chain in this transaction (not committed). Call it last, just
    /// before the commit: from here on the transaction holds the chain head's lock (on
    /// PostgreSQL `FOR UPDATE`, taken by migration 0021's function, which links the rows
    /// in the database; SQLite's `BEGIN IMMEDIATE` already serializes writers, and the rows
    /// are linked here), and every other appender waits for it.
    pub async fn append_audit(&mut self, rows: &[AuditRow]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let tx = match self {
            Tx::Postgres(tx) => return append_postgres(&mut **tx, rows).await,
            Tx::Sqlite(tx) => tx,
        };
        let (head_seq, head_hash): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, hash FROM audit_chain_head WHERE singleton")
                .fetch_one(&mut **tx)
                .await?;
        let mut previous = head_hash;
        let mut linked = Vec::with_capacity(rows.len());
        for (offset, row) in rows.iter().enumerate() {
            let seq = head_seq + 1 + offset as i64;
            let hash = link(&previous, seq, &row.body).to_vec();
            previous = hash.clone();
            linked.push((seq, row, hash));
        }
        let mut rest = linked.as_slice();
        while !rest.is_empty() {
            let size = SQLITE_CHUNK_ROWS.min(1 << rest.len().ilog2());
            let (chunk, after) = rest.split_at(size);
            insert_rows(chunk).build().execute(&mut **tx).await?;
            rest = after;
        }
        let last = head_seq + rows.len() as i64;
        sqlx::query("UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE singleton")
            .bind(last)
            .bind(previous)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

impl Tx {
    /// Appends `rows` (last, as [`Tx::append_audit`] wants) and commits: the change made on
    /// this transaction and its audit events are stored both or neither.
    pub async fn commit_audited(mut self, rows: &[AuditRow]) -> StoreResult<()> {
        self.append_audit(rows).await?;
        self.commit().await
    }
}

impl Store {
    /// Appends `rows` in a transaction of their own (one commit for the whole batch; on
    /// PostgreSQL one statement).
    pub async fn append_audit(&self, rows: &[AuditRow]) -> StoreResult<()> {
        if let Store::Postgres(pool) = self {
            return append_postgres(pool, rows).await;
        }
        let mut tx = self.begin().await?;
        tx.append_audit(rows).await?;
        tx.commit().await
    }

    /// Which of `event_ids` the log already holds.
    pub async fn audit_known_ids(&self, event_ids: &[&str]) -> StoreResult<HashSet<String>> {
        if event_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let known: Vec<String> = match self {
            Store::Postgres(pool) => {
                sqlx::query_scalar("SELECT event_id FROM audit_events WHERE event_id = ANY($1)")
                    .bind(event_ids)
                    .fetch_all(pool)
                    .await?
            }
            Store::Sqlite(pool) => {
                let mut known = Vec::new();
                for chunk in event_ids.chunks(SQLITE_IDS_PER_QUERY) {
                    let mut sql = QueryBuilder::<Sqlite>::new(
                        "SELECT event_id FROM audit_events WHERE event_id IN (",
                    );
                    let mut ids = sql.separated(", ");
                    for id in chunk {
                        ids.push_bind(*id);
                    }
                    sql.push(")");
                    known.extend(sql.build_query_scalar::<String>().fetch_all(pool).await?);
                }
                known
            }
        };
        Ok(known.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::stored::{FORMAT, StoredEvent};

    fn row(number: usize) -> AuditRow {
        let event = StoredEvent {
            v: FORMAT,
            id: format!("event-{number}"),
            recorded: 1_700_000_000_000_000,
            type_code: "rest".to_owned(),
            subtype: "read".to_owned(),
            action: "R".to_owned(),
            outcome: "0".to_owned(),
            base: "http://kiln.test/fhir".to_owned(),
            ..StoredEvent::default()
        };
        AuditRow::of_body(event.to_bytes()).unwrap()
    }

    /// A spool segment left by a crash is checked against the log in batches of up to
    /// 32,768 events: more ids than SQLite takes parameters in one statement.
    #[tokio::test]
    async fn known_ids_of_a_batch_larger_than_sqlite_takes_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("kiln.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let stored: Vec<AuditRow> = (0..3).map(|number| row(number * 20_000)).collect();
        store.append_audit(&stored).await.unwrap();
        let asked: Vec<String> = (0..40_000)
            .map(|number| format!("event-{number}"))
            .collect();
        let asked: Vec<&str> = asked.iter().map(String::as_str).collect();
        let known = store.audit_known_ids(&asked).await.unwrap();
        let expected: HashSet<String> = ["event-0", "event-20000"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(known, expected);
    }
}
