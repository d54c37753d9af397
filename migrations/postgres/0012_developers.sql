-- Developer accounts of the portal (/developer). Times are seconds since the Unix epoch (UTC).

-- One account per e-mail address (stored lower-cased); the password is an argon2id PHC
-- string. An account signs in only once verified_at is set (by its link or by an admin).
CREATE TABLE developer_accounts (
    account_id    TEXT PRIMARY KEY, -- a UUID
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    organization  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    verified_at   BIGINT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

-- Single-use links mailed to an account: e-mail verification and password reset. The random
-- token of the link is stored only as its SHA-256 hex digest.
CREATE TABLE developer_links (
    link_hash  TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES developer_accounts (account_id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'reset')),
    expires_at BIGINT NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX developer_links_account ON developer_links (account_id);
CREATE INDEX developer_links_expiry ON developer_links (expires_at);

-- The developer signed in to a browser session (an account_id); separate from the EHR user
-- (username) the same session may carry.
ALTER TABLE auth_sessions ADD COLUMN developer TEXT;
CREATE INDEX auth_sessions_developer ON auth_sessions (developer);
