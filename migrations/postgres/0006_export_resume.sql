-- Files are recorded as each one is complete, so a job taken over after a crash resumes
-- after the last recorded file instead of starting again, and partial manifests can
-- hand out finished files while the job runs.
-- resume_after: the last key written to the file (a resource id, or a Patient id for output
-- organized by Patient); NULL when the file ended its part of the export.
ALTER TABLE bulk_export_files ADD COLUMN resume_after TEXT;
-- manifest_page: the partial-manifest page the file was first handed out in (NULL: not yet).
ALTER TABLE bulk_export_files ADD COLUMN manifest_page BIGINT;
