-- Initial schema (PostgreSQL): Barong's tables (db/schema.rb, with `apikeys` named `api_keys`) plus sessions,
-- mail/event outboxes and single-use token marks.
-- Run in one transaction by the migration runner; keep in step with sql/sqlite/.

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    uid             TEXT        NOT NULL,
    username        TEXT,
    email           TEXT        NOT NULL,
    password_digest TEXT        NOT NULL,
    role            TEXT        NOT NULL DEFAULT 'member',
    data            TEXT,
    level           INTEGER     NOT NULL DEFAULT 0,
    otp             BOOLEAN     NOT NULL DEFAULT FALSE,
    state           TEXT        NOT NULL DEFAULT 'pending',
    referral_id     BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_users_on_uid ON users (uid);
CREATE UNIQUE INDEX index_users_on_email ON users (email);
-- A plain unique index admits any number of NULL usernames.
CREATE UNIQUE INDEX index_users_on_username ON users (username);
-- Barong compares e-mails exactly, but its MySQL collation made lookups case-insensitive in practice.
CREATE INDEX index_users_on_email_ci ON users (lower(email));
CREATE INDEX index_users_on_referral_id ON users (referral_id);

CREATE TABLE profiles (
    id                   BIGSERIAL PRIMARY KEY,
    user_id              BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    author               TEXT,
    applicant_id         TEXT,
    first_name_encrypted TEXT,
    last_name_encrypted  TEXT,
    dob_encrypted        TEXT,
    address_encrypted    TEXT,
    postcode             TEXT,
    city                 TEXT,
    country              TEXT,
    -- drafted = 0, submitted = 1, verified = 3, rejected = 4
    state                SMALLINT    NOT NULL DEFAULT 0,
    metadata             TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_profiles_on_user_id ON profiles (user_id);

CREATE TABLE labels (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         TEXT        NOT NULL,
    value       TEXT        NOT NULL,
    scope       TEXT        NOT NULL DEFAULT 'public',
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_labels_on_user_id_and_key_and_scope ON labels (user_id, key, scope);

-- The id is the level number and is always given explicitly by the seeder (1..n in file order).
-- It is a plain BIGINT rather than BIGSERIAL because explicit inserts would not advance a sequence.
CREATE TABLE levels (
    id          BIGINT PRIMARY KEY,
    key         TEXT        NOT NULL,
    value       TEXT        NOT NULL,
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_levels_on_key_and_value ON levels (key, value);

CREATE TABLE phones (
    id               BIGSERIAL PRIMARY KEY,
    user_id          BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    country          TEXT        NOT NULL,
    code             TEXT,
    number_encrypted TEXT        NOT NULL,
    -- CRC32(number + BARONG_CRC32_SALT)
    number_index     BIGINT      NOT NULL,
    validated_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_phones_on_number_index ON phones (number_index);
CREATE INDEX index_phones_on_user_id ON phones (user_id);

CREATE TABLE documents (
    id                   BIGSERIAL PRIMARY KEY,
    user_id              BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upload               TEXT,
    doc_type             TEXT,
    doc_expire           DATE,
    doc_number_encrypted TEXT,
    -- CRC32(doc_number + BARONG_CRC32_SALT)
    doc_number_index     BIGINT,
    doc_issue            DATE,
    doc_category         TEXT,
    identificator        TEXT,
    metadata             TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_documents_on_user_id ON documents (user_id);
CREATE INDEX index_documents_on_doc_number_index ON documents (doc_number_index);

-- Holder is polymorphic ('User' or 'ServiceAccount'), so there is no foreign key; deleting a holder
-- removes its keys in the application, as Barong does.
CREATE TABLE api_keys (
    id                      BIGSERIAL PRIMARY KEY,
    key_holder_account_type TEXT        NOT NULL DEFAULT 'User',
    key_holder_account_id   BIGINT      NOT NULL,
    kid                     TEXT        NOT NULL,
    algorithm               TEXT        NOT NULL,
    scope                   TEXT,
    secret_encrypted        TEXT,
    state                   TEXT        NOT NULL DEFAULT 'active',
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_api_keys_on_kid ON api_keys (kid);
CREATE INDEX index_api_keys_on_key_holder_account ON api_keys (key_holder_account_type, key_holder_account_id);

CREATE TABLE service_accounts (
    id         BIGSERIAL PRIMARY KEY,
    uid        TEXT        NOT NULL,
    owner_id   BIGINT      REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT        NOT NULL,
    role       TEXT        NOT NULL DEFAULT 'service_account',
    level      INTEGER     NOT NULL DEFAULT 0,
    state      TEXT        NOT NULL DEFAULT 'pending',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_service_accounts_on_uid ON service_accounts (uid);
CREATE INDEX index_service_accounts_on_owner_id ON service_accounts (owner_id);

CREATE TABLE permissions (
    id         BIGSERIAL PRIMARY KEY,
    action     TEXT        NOT NULL,
    role       TEXT        NOT NULL,
    verb       TEXT        NOT NULL,
    path       TEXT        NOT NULL,
    topic      TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_permissions_on_role ON permissions (role);
CREATE INDEX index_permissions_on_topic ON permissions (topic);

CREATE TABLE restrictions (
    id         BIGSERIAL PRIMARY KEY,
    category   TEXT        NOT NULL,
    scope      TEXT        NOT NULL,
    value      TEXT        NOT NULL,
    code       INTEGER,
    state      TEXT        NOT NULL DEFAULT 'enabled',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_restrictions_on_state ON restrictions (state);

-- Append-only; user_id is the acting user (the admin for category 'admin').
CREATE TABLE activities (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_uid      TEXT,
    category        TEXT,
    user_ip         TEXT        NOT NULL,
    user_ip_country TEXT,
    user_agent      TEXT        NOT NULL,
    topic           TEXT        NOT NULL,
    action          TEXT        NOT NULL,
    result          TEXT        NOT NULL,
    data            TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_activities_on_user_id_and_id ON activities (user_id, id);
CREATE INDEX index_activities_on_target_uid ON activities (target_uid);

CREATE TABLE data_storages (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT        NOT NULL,
    data       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_data_storages_on_user_id_and_title ON data_storages (user_id, title);

CREATE TABLE comments (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    author_uid TEXT        NOT NULL,
    title      TEXT        NOT NULL,
    data       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_comments_on_user_id ON comments (user_id);

-- Barong keeps sessions in Redis; here they are rows keyed by the SHA-256 hex of the cookie value
-- (the raw cookie value is never stored).
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    uid        TEXT        NOT NULL,
    user_ip    TEXT        NOT NULL,
    user_agent TEXT,
    csrf_token TEXT        NOT NULL,
    -- epoch seconds
    expire_at  BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_sessions_on_user_id ON sessions (user_id);
CREATE INDEX index_sessions_on_expire_at ON sessions (expire_at);

-- Mail written in the same transaction as the change that causes it, delivered by a retrying worker.
CREATE TABLE mail_outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT        NOT NULL,
    recipient       TEXT        NOT NULL,
    language        TEXT        NOT NULL,
    subject         TEXT        NOT NULL,
    body_html       TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_mail_outbox_unsent ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Events for the message broker (Barong's EventAPI), published by a retrying worker.
CREATE TABLE event_outbox (
    id              BIGSERIAL PRIMARY KEY,
    exchange        TEXT        NOT NULL,
    routing_key     TEXT        NOT NULL,
    payload         TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX index_event_outbox_unsent ON event_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- "Token utilized" marks: a JWT id that has been consumed, kept until the token would have expired.
CREATE TABLE one_time_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX index_one_time_tokens_on_expires_at ON one_time_tokens (expires_at);

-- Only the latest reset token issued for an e-mail is valid; issuing a new one replaces the row.
CREATE TABLE password_reset_tokens (
    email       TEXT PRIMARY KEY,
    reset_token TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX index_password_reset_tokens_on_expires_at ON password_reset_tokens (expires_at);

CREATE TABLE whitelink_tokens (
    token      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX index_whitelink_tokens_on_expires_at ON whitelink_tokens (expires_at);
