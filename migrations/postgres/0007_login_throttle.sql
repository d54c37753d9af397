-- Failed sign-ins per username in the current window: past a few, sign-in for that username
-- waits for the window to end (password guessing is throttled on every replica alike).
CREATE TABLE auth_login_failures (
    username     TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL     -- seconds
);
