-- TOTP secrets (encrypted under BARONG_ENCRYPTION_KEY) and the last accepted time step, so a code
-- accepted once is refused when replayed, across restarts and instances.
CREATE TABLE otp_secrets (
    user_id          INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_encrypted TEXT    NOT NULL,
    last_step        INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
