-- SMART on FHIR authorization server state. Times are seconds since the Unix epoch (UTC).
-- Secrets (client secrets, passwords) are argon2id PHC strings; bearer values (tokens, codes,
-- launch ids, session ids) are stored only as SHA-256 hex digests.

-- Registered apps.
CREATE TABLE auth_clients (
    client_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    client_type   TEXT NOT NULL, -- public | confidential-symmetric | confidential-asymmetric
    secret_hash   TEXT,
    redirect_uris TEXT NOT NULL, -- JSON array of exact URIs
    launch_uri    TEXT,
    scope         TEXT NOT NULL, -- the widest scopes the app may be granted
    grant_types   TEXT NOT NULL, -- JSON array
    jwks          TEXT,          -- inline JWK Set (asymmetric clients)
    jwks_uri      TEXT,
    created_at    BIGINT NOT NULL
);

-- People who sign in to Kiln's pages.
CREATE TABLE auth_users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    fhir_user     TEXT NOT NULL, -- Patient/ID or Practitioner/ID
    admin         BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Kiln's own signing keys, shared by every replica. Retired keys stay published until
-- every token they signed has expired.
CREATE TABLE auth_signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

-- Browser sessions of Kiln's pages.
CREATE TABLE auth_sessions (
    session_hash TEXT PRIMARY KEY,
    username     TEXT,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX auth_sessions_expiry ON auth_sessions (expires_at);

-- An authorize request waiting for login, consent or a patient choice.
CREATE TABLE auth_pending (
    pending_id     TEXT PRIMARY KEY,
    session_hash   TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    state          TEXT,
    code_challenge TEXT NOT NULL,
    nonce          TEXT,
    launch_hash    TEXT,
    patient        TEXT,
    expires_at     BIGINT NOT NULL
);

-- EHR launch contexts: bound to one client and one user, single use.
CREATE TABLE auth_launches (
    launch_hash TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    username    TEXT NOT NULL,
    patient     TEXT,
    encounter   TEXT,
    expires_at  BIGINT NOT NULL,
    used        BOOLEAN NOT NULL
);

-- What a user (or, for backend services, a client) authorized an app to do; every token
-- belongs to one grant, so revoking the grant stops them all.
CREATE TABLE auth_grants (
    grant_id            TEXT PRIMARY KEY,
    client_id           TEXT NOT NULL,
    username            TEXT,
    scope               TEXT NOT NULL,
    patient             TEXT,
    encounter           TEXT,
    fhir_user           TEXT,
    need_patient_banner BOOLEAN NOT NULL,
    created_at          BIGINT NOT NULL,
    revoked             BOOLEAN NOT NULL
);
CREATE INDEX auth_grants_user ON auth_grants (username);
CREATE INDEX auth_grants_client ON auth_grants (client_id);

-- Authorization codes: single use; a replay revokes the grant.
CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce          TEXT,
    expires_at     BIGINT NOT NULL,
    used           BOOLEAN NOT NULL
);

-- Access and refresh tokens. A refresh token is `used` once rotated; presenting a used one
-- revokes its grant.
CREATE TABLE auth_tokens (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL, -- access | refresh
    grant_id   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used       BOOLEAN NOT NULL,
    revoked    BOOLEAN NOT NULL
);
CREATE INDEX auth_tokens_grant ON auth_tokens (grant_id);
CREATE INDEX auth_tokens_expiry ON auth_tokens (expires_at);

-- Client assertion ids seen, kept until the assertion expires (replay protection).
CREATE TABLE auth_assertion_jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
