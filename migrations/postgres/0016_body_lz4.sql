-- Resource bodies over about 2 kB are compressed when stored. PostgreSQL's default, pglz,
-- was the largest single cost of an import on the server side (`perf`); lz4 compresses
-- several times faster at a similar ratio. New rows only: stored ones keep pglz (both read
-- back transparently). A server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE resources ALTER COLUMN body SET COMPRESSION lz4;
    ALTER TABLE resource_versions ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END $$;
