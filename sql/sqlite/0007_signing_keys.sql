-- JWT signing keys made by `barong keys rotate` (the private key encrypted with the encryption
-- key). The newest row without retired_at is the current key; a retired key keeps verifying,
-- and stays in the JWKS, until the longest token lifetime has passed since retired_at.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT   NOT NULL,
    private_key TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
