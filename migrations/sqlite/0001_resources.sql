-- Current version of every resource (tombstones included), served by read with one
-- primary-key lookup. `body` holds the exact bytes sent to clients (meta already stamped).
CREATE TABLE resources (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    version_id    INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    deleted       BOOLEAN NOT NULL,
    body          BLOB NOT NULL,
    PRIMARY KEY (resource_type, id)
) WITHOUT ROWID;

-- Every version ever written, in write order (`seq`), for vread and history.
CREATE TABLE resource_versions (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    version_id    INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL,
    deleted       BOOLEAN NOT NULL,
    method        TEXT NOT NULL, -- POST, PUT or DELETE: the history entry's request.method
    body          BLOB NOT NULL,
    UNIQUE (resource_type, id, version_id)
);
CREATE INDEX resource_versions_type_seq ON resource_versions (resource_type, seq);

-- Token search index (system|code per parameter), written in the same transaction as the
-- resource. The foundation fills `identifier`; the search issue adds every token parameter.
CREATE TABLE search_token (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    param         TEXT NOT NULL,
    system        TEXT,
    code          TEXT
);
CREATE INDEX search_token_lookup ON search_token (resource_type, param, code, system);
CREATE INDEX search_token_owner ON search_token (resource_type, resource_id);
