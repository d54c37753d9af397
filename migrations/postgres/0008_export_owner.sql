-- Who started an export: with client_id, the grant the job belongs to. The signed-in
-- user's username, or NULL for a job a backend service started (any backend token of
-- that client may see it). Only that user through that client may poll, download or
-- cancel a user's job.
ALTER TABLE bulk_export_jobs ADD COLUMN owner_user TEXT;
