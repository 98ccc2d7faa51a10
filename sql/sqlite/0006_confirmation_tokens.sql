-- The one-time claim of the latest e-mail confirmation token sent to an address; a confirmation
-- is accepted only with it, and it is deleted when used.
CREATE TABLE confirmation_tokens (
    email      TEXT PRIMARY KEY,
    token      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX index_confirmation_tokens_on_expires_at ON confirmation_tokens (expires_at);

