-- The Encounter the user chose for a standalone launch that asks for `launch/encounter`.
ALTER TABLE auth_pending ADD COLUMN encounter TEXT;
