-- Sessions a user can see and end: an opaque public id (never the cookie nor its hash), how the
-- login was proven, and the country of the login address when GeoIP is configured.
-- `updated_at` is the last sighting: the sliding expiry's write-behind moves it.
ALTER TABLE sessions ADD COLUMN public_id TEXT NOT NULL DEFAULT '';
UPDATE sessions SET public_id = lower(hex(randomblob(16)));
ALTER TABLE sessions ADD COLUMN authenticated_with TEXT NOT NULL DEFAULT 'password';
ALTER TABLE sessions ADD COLUMN user_ip_country TEXT;
CREATE UNIQUE INDEX index_sessions_on_public_id ON sessions (public_id);

-- Last authenticated use of an API key (epoch seconds), written behind like the session expiry.
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;

-- The devices (browser and OS) and networks a user has logged in from, for the new-device
-- notice. Never pruned with the sessions: a device stays known after logout.
CREATE TABLE user_devices (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device        TEXT    NOT NULL,
    network       TEXT    NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, device, network)
);
