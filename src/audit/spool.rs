//! The audit spool: the append-only local file a server writes each read's, search's and
//! security event's record to before the request is answered, and syncs (`fdatasync`) often
//! (`super::spooled` says when). The recorder loads what it spooled into the searchable
//! `audit_events` table in large batches afterwards; a server that stopped before loading
//! everything loads the rest at its next start ([`Spool::open`] returns it).
//!
//! The spool is a directory of segment files (`00000000000000000001.spool`, …) and a `LOCK`
//! file a running server holds locked, so two servers never share one. A segment is a run of
//! frames: the payload's length (u32, little endian), its CRC-32, and the payload: the event's
//! stored form (`store::audit::stored`), exactly as it will be hashed, from which its columns
//! follow. (Before the stored form, a payload was the columns as JSON, a newline and the
//! AuditEvent body; a spool left by such a server is read too.) A frame cut short by a crash
//! of the process was never written whole, so its request was never answered: reading stops
//! there.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::store::audit::chain::AuditRow;
use crate::store::audit::stored;

/// A segment is sealed, and a new one begun, past this many bytes (about 10,000 events). A
/// start after a crash reads the segments left (the one being written, and the sealed ones
/// not yet deleted: few, as the loader is at most 64 batches behind) into memory at once.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// The largest payload a frame may claim; a longer one is read as damage.
const MAX_FRAME: usize = 16 * 1024 * 1024;
const EXTENSION: &str = "spool";

/// The open spool of a running server: the segment being written, and the lock.
pub struct Spool {
    dir: PathBuf,
    /// Held (locked) while the spool is open.
    _lock: File,
    /// The segment being written; shared with the sync thread while it syncs.
    file: Arc<File>,
    segment: u64,
    written: u64,
    /// Whether bytes were written to `file` since its last sync.
    unsynced: bool,
}

/// A segment left by an earlier run, with the events it holds.
pub struct Leftover {
    pub path: PathBuf,
    pub rows: Vec<AuditRow>,
}

/// The searchable columns of an event spooled before the stored form (the body followed
/// them in the frame).
#[derive(Deserialize)]
struct Columns<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    recorded: i64,
    #[serde(borrow)]
    type_code: Cow<'a, str>,
    #[serde(borrow)]
    subtype: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(borrow)]
    agent_who: Option<Cow<'a, str>>,
    #[serde(borrow)]
    agent_user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    agent_client: Option<Cow<'a, str>>,
    #[serde(borrow)]
    patient: Option<Cow<'a, str>>,
    #[serde(borrow)]
    entity: Option<Cow<'a, str>>,
}

impl Spool {
    /// Opens the spool in `dir` (created when absent), locks it, and returns it with the
    /// segments earlier runs left, oldest first. Fails when another process holds the lock.
    pub fn open(dir: &Path) -> io::Result<(Spool, Vec<Leftover>)> {
        Self::open_in(dir).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot open the audit spool {}: {error}", dir.display()),
            )
        })
    }

    fn open_in(dir: &Path) -> io::Result<(Spool, Vec<Leftover>)> {
        // The events say who read whose record: only the server's user may read them.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "it is in use by another Kiln server; give each server its own \
                 --audit-spool-dir",
            )
        })?;
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            if let Some(number) = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(|stem| stem.parse::<u64>().ok())
            {
                segments.push((number, path));
            }
        }
        segments.sort();
        let mut leftovers = Vec::with_capacity(segments.len());
        for (_, path) in &segments {
            leftovers.push(Leftover {
                rows: read_segment(path)?,
                path: path.clone(),
            });
        }
        let segment = segments.last().map_or(1, |(number, _)| number + 1);
        let file = create_segment(dir, segment)?;
        Ok((
            Spool {
                dir: dir.to_owned(),
                _lock: lock,
                file: Arc::new(file),
                segment,
                written: 0,
                unsynced: false,
            },
            leftovers,
        ))
    }

    /// Writes `rows` to the segment, not yet synced ([`Spool::take_unsynced`]): when this
    /// returns `Ok`, they survive a crash of the process. When the segment has grown past its
    /// size, it is synced, a new one is begun and the sealed one's path returned (delete it
    /// once its rows are loaded). On an error the segment is cut back to where it was, so
    /// nothing of a failed write is loaded.
    pub fn write(&mut self, rows: &[AuditRow]) -> io::Result<Option<PathBuf>> {
        let mut buffer = Vec::with_capacity(rows.iter().map(|row| 8 + row.body.len()).sum());
        for row in rows {
            encode(row, &mut buffer);
        }
        let full = self.written + buffer.len() as u64 >= SEGMENT_BYTES;
        if let Err(error) = (&*self.file)
            .write_all(&buffer)
            .and_then(|()| if full { self.file.sync_data() } else { Ok(()) })
        {
            let _ = self.file.set_len(self.written);
            return Err(error);
        }
        self.written += buffer.len() as u64;
        self.unsynced = !full;
        if !full {
            return Ok(None);
        }
        let sealed = segment_path(&self.dir, self.segment);
        self.file = Arc::new(create_segment(&self.dir, self.segment + 1)?);
        self.segment += 1;
        self.written = 0;
        Ok(Some(sealed))
    }

    /// The segment to sync (`fdatasync`) when something was written to it since the last
    /// time: once that sync returns `Ok`, what was written before this call survives a crash
    /// of the machine too. (A segment is synced when it is sealed.)
    pub fn take_unsynced(&mut self) -> Option<Arc<File>> {
        std::mem::take(&mut self.unsynced).then(|| self.file.clone())
    }

    /// The segment being written (its rows are deleted with it at the next start, once loaded).
    pub fn current(&self) -> PathBuf {
        segment_path(&self.dir, self.segment)
    }
}

impl Drop for Spool {
    /// A spool closed (the server stopping) syncs what was written since the last sync.
    fn drop(&mut self) {
        if let Some(file) = self.take_unsynced()
            && let Err(error) = file.sync_data()
        {
            tracing::error!(%error, "the audit spool could not be synced");
        }
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.{EXTENSION}"))
}

/// Creates segment `number` and syncs the directory, so the new file's name survives a crash.
fn create_segment(dir: &Path, number: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(segment_path(dir, number))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// Appends `row`'s frame to `buffer`.
fn encode(row: &AuditRow, buffer: &mut Vec<u8>) {
    let length = (row.body.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(&row.body).to_le_bytes();
    buffer.extend_from_slice(&length);
    buffer.extend_from_slice(&crc);
    buffer.extend_from_slice(&row.body);
}

/// The events of the segment at `path`, up to its first incomplete or damaged frame.
fn read_segment(path: &Path) -> io::Result<Vec<AuditRow>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut rows = Vec::new();
    let mut rest = bytes.as_slice();
    while rest.len() >= 8 {
        let length = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if length > MAX_FRAME || rest.len() < 8 + length {
            break;
        }
        let payload = &rest[8..8 + length];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Some(row) = decode(payload) else {
            break;
        };
        rows.push(row);
        rest = &rest[8 + length..];
    }
    Ok(rows)
}

fn decode(payload: &[u8]) -> Option<AuditRow> {
    let Some(newline) = payload.iter().position(|&byte| byte == b'\n') else {
        return AuditRow::of_body(payload.to_vec());
    };
    let columns: Columns = serde_json::from_slice(&payload[..newline]).ok()?;
    let owned = |value: Option<Cow<str>>| value.map(Cow::into_owned);
    Some(AuditRow {
        event_id: columns.event_id.into_owned(),
        recorded: columns.recorded,
        type_code: columns.type_code.into_owned(),
        subtype: owned(columns.subtype),
        action: stored::action(&columns.action)?,
        outcome: stored::outcome(&columns.outcome)?,
        agent_who: owned(columns.agent_who),
        agent_user: owned(columns.agent_user),
        agent_client: owned(columns.agent_client),
        patient: owned(columns.patient),
        entity: owned(columns.entity),
        body: payload[newline + 1..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::stored::{FORMAT, StoredEvent};

    fn row(id: &str, patient: Option<&str>) -> AuditRow {
        let event = StoredEvent {
            v: FORMAT,
            id: id.to_owned(),
            recorded: 1_700_000_000_000_000,
            type_code: "rest".to_owned(),
            subtype: "read".to_owned(),
            action: "R".to_owned(),
            outcome: "0".to_owned(),
            username: Some("alice".to_owned()),
            client_id: Some("app\n\"quoted\"".to_owned()),
            patient: patient.map(str::to_owned),
            entity: Some("Patient/1".to_owned()),
            base: "http://kiln.test/fhir".to_owned(),
            ..StoredEvent::default()
        };
        AuditRow::of_body(event.to_bytes()).unwrap()
    }

    #[test]
    fn a_spool_of_the_format_before_the_stored_form_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let body = br#"{"resourceType":"AuditEvent","id":"old"}"#;
        let mut payload = br#"{"event_id":"old","recorded":5,"type_code":"rest","subtype":"read","action":"R","outcome":"0","agent_who":null,"agent_user":null,"agent_client":"app","patient":"p1","entity":"Patient/p1"}"#.to_vec();
        payload.push(b'\n');
        payload.extend_from_slice(body);
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        std::fs::write(segment_path(dir.path(), 1), frame).unwrap();
        let (_, leftovers) = Spool::open(dir.path()).unwrap();
        let rows = &leftovers[0].rows;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event_id, "old");
        assert_eq!(rows[0].agent_client.as_deref(), Some("app"));
        assert_eq!(rows[0].patient.as_deref(), Some("p1"));
        assert_eq!(rows[0].body, body);
    }

    #[test]
    fn what_was_appended_is_left_over_for_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![row("a", Some("1")), row("b", None)];
        {
            let (mut spool, leftovers) = Spool::open(dir.path()).unwrap();
            assert!(leftovers.is_empty());
            assert_eq!(spool.write(&rows).unwrap(), None);
            assert_eq!(spool.write(&[row("c", None)]).unwrap(), None);
        }
        let (spool, leftovers) = Spool::open(dir.path()).unwrap();
        assert_eq!(leftovers.len(), 1);
        assert_eq!(leftovers[0].rows, [rows, vec![row("c", None)]].concat());
        assert_ne!(spool.current(), leftovers[0].path, "a new segment is begun");
    }

    #[test]
    fn a_write_leaves_its_segment_to_sync_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(dir.path()).unwrap();
        assert!(spool.take_unsynced().is_none(), "nothing written yet");
        spool.write(&[row("a", None)]).unwrap();
        let segment = spool.take_unsynced().expect("written since the last sync");
        segment.sync_data().unwrap();
        assert!(spool.take_unsynced().is_none(), "taken once");
        spool.write(&[row("b", None)]).unwrap();
        assert!(spool.take_unsynced().is_some());
    }

    #[test]
    fn a_torn_or_damaged_tail_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let (mut spool, _) = Spool::open(dir.path()).unwrap();
            spool.write(&[row("a", None), row("b", None)]).unwrap();
            spool.current()
        };
        let whole = std::fs::read(&path).unwrap();
        let first = 8 + u32::from_le_bytes(whole[..4].try_into().unwrap()) as usize;
        // Cut inside the second frame: only the first is read.
        std::fs::write(&path, &whole[..whole.len() - 3]).unwrap();
        assert_eq!(read_segment(&path).unwrap(), vec![row("a", None)]);
        // A flipped byte in the second frame's payload: its checksum fails.
        let mut flipped = whole.clone();
        flipped[first + 20] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(read_segment(&path).unwrap(), vec![row("a", None)]);
        // A length beyond the file: nothing of it is read.
        let mut long = whole;
        long[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &long).unwrap();
        assert_eq!(read_segment(&path).unwrap(), vec![row("a", None)]);
    }

    #[test]
    fn only_the_owner_may_read_the_spool() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("spool");
        let (spool, _) = Spool::open(&dir).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&spool.current()), 0o600);
    }

    #[test]
    fn a_second_server_cannot_open_a_spool_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Spool::open(dir.path()).unwrap();
        let error = Spool::open(dir.path()).err().unwrap();
        assert!(error.to_string().contains("in use"), "{error}");
    }
}
