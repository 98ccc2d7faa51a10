//! A JWT signing key as the database keeps it after a rotation.

/// One row of `signing_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// RFC 7638 thumbprint of the public key, as in the token headers and the JWKS.
    pub kid: String,
    /// JOSE name (`RS256`, `ES256`, `EdDSA`).
    pub algorithm: String,
    /// The PKCS#8 PEM, encrypted with the encryption key.
    pub private_key: String,
    pub created_at: i64,
    /// When a newer key replaced it (`None` while current).
    pub retired_at: Option<i64>,
}
