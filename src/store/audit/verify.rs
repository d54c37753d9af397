//! Verifying the audit chain (`kiln audit verify`): every row in seq order, each link
//! recomputed from the previous hash, the seq without gaps from 1, and the head naming the
//! last row. The first break found is reported; memory stays one row whatever the log's size.

use super::hash::{GENESIS, link};
use super::query::{AuditColumn, AuditFilter, AuditRow};
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
