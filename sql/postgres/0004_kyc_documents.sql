-- Phones and documents keep personal data encrypted (AES-256-GCM under BARONG_ENCRYPTION_KEY)
-- with a blind index (hex HMAC-SHA256 of the normalised value) instead of Barong's CRC32 index,
-- which is too short to hide a phone number. Nothing wrote these tables before this migration,
-- so they are recreated rather than altered (as on SQLite).
DROP TABLE IF EXISTS phones;
DROP TABLE IF EXISTS documents;

CREATE TABLE phones (
    id                BIGSERIAL PRIMARY KEY,
    user_id           BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    country           TEXT        NOT NULL,
    code              TEXT,
    number_encrypted  TEXT        NOT NULL,
    number_index      TEXT        NOT NULL,
    validated_at      TIMESTAMPTZ,
    -- resend limits: unix seconds of the last code, codes sent in the current window
    code_sent_at      BIGINT,
    send_count        BIGINT      NOT NULL DEFAULT 0,
    send_window_start BIGINT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_phones_on_user_id ON phones (user_id);
-- a user has a number once
CREATE UNIQUE INDEX index_phones_on_user_id_and_number_index ON phones (user_id, number_index);
-- a number is verified by one account at most
CREATE UNIQUE INDEX index_phones_verified_number ON phones (number_index)
    WHERE validated_at IS NOT NULL;

CREATE TABLE documents (
    id                   BIGSERIAL PRIMARY KEY,
    user_id              BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upload               TEXT        NOT NULL,
    doc_type             TEXT        NOT NULL,
    doc_expire           DATE,
    doc_number_encrypted TEXT,
    doc_number_index     TEXT,
    doc_issue            DATE,
    doc_category         TEXT,
    identificator        TEXT,
    metadata             TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_documents_on_user_id ON documents (user_id);
CREATE INDEX index_documents_on_doc_number_index ON documents (doc_number_index);
