-- Passkeys (WebAuthn credentials) of users: `credential` is webauthn-rs's serialised credential
-- (public key, counter, flags), `counter` its signature counter kept beside it so a clone check
-- and the update that follows it are one compare-and-set. Times are epoch seconds.
CREATE TABLE passkeys (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT    NOT NULL UNIQUE,
    user_handle   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    credential    TEXT    NOT NULL,
    counter       BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX index_passkeys_on_user_id ON passkeys (user_id);

-- Open ceremonies: the server half of a challenge, taken (deleted) by the one request that
-- answers it, so a challenge is single-use on every instance sharing the database.
CREATE TABLE passkey_challenges (
    challenge  TEXT    PRIMARY KEY,
    purpose    TEXT    NOT NULL,
    user_id    BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX index_passkey_challenges_on_expires_at ON passkey_challenges (expires_at);
