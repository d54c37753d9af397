-- Bulk Data export jobs: the queue that every replica's worker claims from, and the
-- progress and outcome the status endpoint reports.
CREATE TABLE bulk_export_jobs (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    request_url      TEXT NOT NULL,
    level            TEXT NOT NULL,          -- system, patient or group
    group_id         TEXT,
    params           TEXT NOT NULL,          -- the parsed kick-off parameters and scopes (JSON)
    status           TEXT NOT NULL,          -- queued, running, done, failed or cancelled
    progress         TEXT,
    transaction_time INTEGER NOT NULL,        -- microseconds since the Unix epoch
    worker           TEXT,                   -- the worker holding the lease
    lease_until      INTEGER,                 -- seconds; past it, another worker may take the job
    error            TEXT,
    created_at       INTEGER NOT NULL,        -- seconds
    expires_at       INTEGER                  -- seconds; files and job go after this
);
CREATE INDEX bulk_export_jobs_status ON bulk_export_jobs (status, created_at);
CREATE INDEX bulk_export_jobs_client ON bulk_export_jobs (client_id, status);

-- The files of a finished job, in manifest order.
CREATE TABLE bulk_export_files (
    job_id        TEXT NOT NULL REFERENCES bulk_export_jobs (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    kind          TEXT NOT NULL,             -- output, error or deleted
    resource_type TEXT NOT NULL,
    name          TEXT NOT NULL,
    count         INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);
