-- Read-your-writes with a read replica (KILN_DATABASE_READ_URL): the primary's WAL position
-- after each client's latest write. UNLOGGED: it costs no WAL, is never replicated, and is
-- emptied by a crash, which only sends reads to the standby a little early after one.
CREATE UNLOGGED TABLE read_fences (
    client TEXT PRIMARY KEY,
    write_lsn PG_LSN NOT NULL
);
