-- A disabled user cannot sign in; disabling ends their sessions and revokes the grants they gave.
ALTER TABLE auth_users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false;
