-- Sign-in attempts in the current window, per key: one key per username and source address
-- (`user <source> <username>`), one per source address (`source <source>`). An attempt is
-- reserved before its password is checked, so concurrent guesses cannot overrun the limit;
-- a successful sign-in gives its reservation back. Replaces the per-username count, which let
-- anyone lock a user out.
DROP TABLE auth_login_failures;
CREATE TABLE auth_login_attempts (
    throttle_key TEXT PRIMARY KEY,
    attempts     BIGINT NOT NULL,
    window_start BIGINT NOT NULL     -- seconds
);
