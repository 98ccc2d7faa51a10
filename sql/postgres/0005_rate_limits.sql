-- Abuse-limit windows (failed logins, wrong TOTP codes, mail sends, sign-ups) shared by every
-- instance on this database. UNLOGGED: no WAL for a hot counter; a crash empties the table,
-- which only reopens the windows early. Ended windows are reused in place or purged.
CREATE UNLOGGED TABLE rate_limits (
    bucket  TEXT        NOT NULL,
    key     TEXT        NOT NULL,
    used    INTEGER     NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX rate_limits_ends_at ON rate_limits (ends_at);
