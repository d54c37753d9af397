-- The audit log: one row per AuditEvent (IHE BALP), append-only and hash-chained. Kiln has no
-- UPDATE or DELETE statement on these tables; docs/audit.md gives a PostgreSQL role without
-- those privileges. seq runs 1, 2, 3… without gaps, assigned under the chain head's lock, so a
-- deleted row shows as a gap and an altered one as a hash that no longer matches.
CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,  -- AuditEvent.id (a UUID)
    recorded     BIGINT NOT NULL,       -- AuditEvent.recorded: microseconds since the Unix epoch, UTC
    type_code    TEXT NOT NULL,         -- AuditEvent.type.code: rest, 110114 (user authentication), ...
    subtype      TEXT,                  -- AuditEvent.subtype.code: read, search-type, create, login, ...
    action       TEXT NOT NULL,         -- AuditEvent.action: C R U D E
    outcome      TEXT NOT NULL,         -- AuditEvent.outcome: 0 4 8 12
    agent_who    TEXT,                  -- the user's FHIR reference (fhirUser: Practitioner/ID, Patient/ID)
    agent_user   TEXT,                  -- the user's username
    agent_client TEXT,                  -- the OAuth client_id
    patient      TEXT,                  -- id of the Patient the event is about
    entity       TEXT,                  -- Type/ID of the resource the event is about
    body         BLOB NOT NULL,         -- the AuditEvent JSON, exactly as hashed
    hash         BLOB NOT NULL          -- SHA-256(previous row's hash || seq as 8 big-endian bytes || body)
);
CREATE INDEX audit_events_recorded ON audit_events (recorded);
CREATE INDEX audit_events_patient ON audit_events (patient, recorded);
CREATE INDEX audit_events_agent_who ON audit_events (agent_who, recorded);
CREATE INDEX audit_events_agent_client ON audit_events (agent_client, recorded);
CREATE INDEX audit_events_entity ON audit_events (entity, recorded);

-- The chain's head: the last seq and its hash (32 zero bytes before the first event). Every
-- append locks this row, so appends from every replica form one chain.
CREATE TABLE audit_chain_head (
    singleton BOOLEAN PRIMARY KEY CHECK (singleton),
    seq       BIGINT NOT NULL,
    hash      BLOB NOT NULL
);
INSERT INTO audit_chain_head (singleton, seq, hash) VALUES (1, 0, zeroblob(32));
