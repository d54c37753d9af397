-- Search index rows for every search parameter, written with the resource in one transaction.
-- Each table: the owning resource, the parameter code, and the value in the shape its
-- parameter type is searched by. `(resource_type, resource_id)` indexes serve re-indexing.

-- Tokens also keep the display text, normalized as strings are (`:text`), and an
-- Identifier's type (`:of-type`).
ALTER TABLE search_token ADD COLUMN display TEXT;
ALTER TABLE search_token ADD COLUMN type_system TEXT;
ALTER TABLE search_token ADD COLUMN type_code TEXT;

-- Strings: `normalized` is lower-cased, accent-free, whitespace-collapsed (default prefix
-- match and `:contains`); `exact` is the original (`:exact`). Byte-order collation,
-- so a prefix is an index range `normalized >= 'abc' AND normalized < 'abd'`.
CREATE TABLE search_string (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    param         TEXT NOT NULL,
    normalized    TEXT NOT NULL,
    exact         TEXT NOT NULL
);
CREATE INDEX search_string_lookup ON search_string (resource_type, param, normalized);
CREATE INDEX search_string_owner ON search_string (resource_type, resource_id);

-- Dates, Periods and Timings as [start_us, end_us) in microseconds (open ends: i64 bounds).
CREATE TABLE search_date (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    param         TEXT NOT NULL,
    start_us      INTEGER NOT NULL,
    end_us        INTEGER NOT NULL
);
CREATE INDEX search_date_lookup ON search_date (resource_type, param, start_us, end_us);
CREATE INDEX search_date_owner ON search_date (resource_type, resource_id);

-- References: `Type/id` split out; absolute and canonical URLs kept whole; the reference's
-- identifier for `:identifier`.
CREATE TABLE search_reference (
    resource_type     TEXT NOT NULL,
    resource_id       TEXT NOT NULL,
    param             TEXT NOT NULL,
    target_type       TEXT,
    target_id         TEXT,
    url               TEXT,
    identifier_system TEXT,
    identifier_value  TEXT
);
CREATE INDEX search_reference_lookup ON search_reference (resource_type, param, target_id, target_type);
CREATE INDEX search_reference_owner ON search_reference (resource_type, resource_id);

-- Quantities and numbers: the value and the range its written precision implies.
CREATE TABLE search_quantity (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    param         TEXT NOT NULL,
    value         REAL NOT NULL,
    low           REAL NOT NULL,
    high          REAL NOT NULL,
    system        TEXT,
    code          TEXT,
    unit          TEXT
);
CREATE INDEX search_quantity_lookup ON search_quantity (resource_type, param, code, value);
CREATE INDEX search_quantity_owner ON search_quantity (resource_type, resource_id);

CREATE TABLE search_number (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    param         TEXT NOT NULL,
    value         REAL NOT NULL,
    low           REAL NOT NULL,
    high          REAL NOT NULL
);
CREATE INDEX search_number_lookup ON search_number (resource_type, param, value);
CREATE INDEX search_number_owner ON search_number (resource_type, resource_id);

CREATE TABLE search_uri (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    param         TEXT NOT NULL,
    uri           TEXT NOT NULL
);
CREATE INDEX search_uri_lookup ON search_uri (resource_type, param, uri);
CREATE INDEX search_uri_owner ON search_uri (resource_type, resource_id);

-- The Patient compartment (and later others): which compartments hold each resource, for
-- patient-scoped access, Patient/[id]/[type], $everything and Patient-level export.
CREATE TABLE resource_compartment (
    compartment_type TEXT NOT NULL,
    compartment_id   TEXT NOT NULL,
    resource_type    TEXT NOT NULL,
    resource_id      TEXT NOT NULL,
    PRIMARY KEY (compartment_type, compartment_id, resource_type, resource_id)
);
CREATE INDEX resource_compartment_owner ON resource_compartment (resource_type, resource_id);

-- Server-wide settings, e.g. which version of the index extraction built the index rows.
CREATE TABLE kiln_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
