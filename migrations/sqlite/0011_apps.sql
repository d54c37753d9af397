-- App lifecycle: registration requests (apps), their revisions, the review history and the
-- logos apps show. An app gets a row in auth_clients (and so a client_id) at its first
-- approval; revisions are immutable once submitted. Times are seconds since the Unix epoch.

CREATE TABLE apps (
    app_id                  TEXT PRIMARY KEY,
    owner                   TEXT,            -- developer account id; NULL for operator/dynamic apps
    origin                  TEXT NOT NULL,   -- portal | dynamic | operator
    status                  TEXT NOT NULL,   -- draft | pending_review | changes_requested | active | rejected | suspended | retired
    client_id               TEXT UNIQUE,     -- set at the first approval
    active_revision         BIGINT,          -- the approved revision auth_clients reflects
    registration_token_hash TEXT,            -- RFC 7592 registration access token (SHA-256 hex)
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX apps_status ON apps (status, updated_at);
CREATE INDEX apps_owner ON apps (owner, updated_at);
CREATE UNIQUE INDEX apps_registration_token ON apps (registration_token_hash);

CREATE TABLE app_revisions (
    app_id       TEXT NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    revision     BIGINT NOT NULL,
    state        TEXT NOT NULL, -- draft | pending_review | changes_requested | approved | rejected | superseded
    request      TEXT NOT NULL, -- JSON of the AppRequest
    checks       TEXT,          -- JSON: JWKS check result and redirect-URI warnings, set at submission
    created_at   BIGINT NOT NULL,
    submitted_at BIGINT,
    decided_at   BIGINT,
    PRIMARY KEY (app_id, revision)
);
CREATE INDEX app_revisions_state ON app_revisions (state);

-- Every transition: who, when, why, and which revision it acted on (and replaced).
CREATE TABLE app_events (
    event_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id            TEXT NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    action            TEXT NOT NULL, -- create | save | submit | approve | request_changes | reject | suspend | reactivate | retire | rotate_secret
    revision          BIGINT,
    replaced_revision BIGINT,
    from_status       TEXT,
    to_status         TEXT NOT NULL,
    actor             TEXT NOT NULL, -- developer:ID | admin:USERNAME | operator | policy | client
    reason            TEXT,
    at                BIGINT NOT NULL
);
CREATE INDEX app_events_app ON app_events (app_id, event_id);

-- Logos, by the SHA-256 of their bytes (PNG or JPEG only).
CREATE TABLE app_logos (
    digest       TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    created_at   BIGINT NOT NULL
);

ALTER TABLE auth_clients ADD COLUMN app_id TEXT;
ALTER TABLE auth_clients ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE auth_clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE auth_clients ADD COLUMN previous_secret_expires_at BIGINT;
