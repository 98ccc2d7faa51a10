//! Encryption at rest: AES-256-GCM under `BARONG_ENCRYPTION_KEY` for TOTP secrets, API key
//! secrets and personal data. Stored form: `v1:` + base64(nonce ‖ ciphertext ‖ tag), so the
//! format can change later without guessing.
//!
//! Personal data that must be found by equality (a phone number, a document number) also gets a
//! blind index beside its ciphertext: a keyed HMAC of the normalised value, so equal values can be
//! matched in SQL without storing them in clear (Barong's `*_index` columns).

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::keys::EncryptionKey;

const PREFIX: &str = "v1:";

/// Why a stored value could not be decrypted (wrong key, tampered or malformed).
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt a stored secret (wrong BARONG_ENCRYPTION_KEY or corrupted value)")]
pub struct DecryptError;

/// Encrypts and decrypts values; cheap to clone (the storage's blocking SQLite closures take an
/// owned copy).
#[derive(Clone)]
pub struct Encryptor {
    key: std::sync::Arc<RandomizedNonceKey>,
    /// Derived from the encryption key, so one setting covers both; distinct from it, so an index
    /// value reveals nothing about the AES key.
    index_key: hmac::Key,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encryptor([redacted])")
    }
}

impl Encryptor {
    #[expect(
        clippy::expect_used,
        reason = "an EncryptionKey is 32 bytes by construction"
    )]
    pub fn new(key: &EncryptionKey) -> Self {
        let aead = RandomizedNonceKey::new(&AES_256_GCM, &key.0)
            .expect("a 32-byte key is always valid for AES-256-GCM");
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &key.0),
            b"barong blind index v1",
        );
        let index_key = hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref());
        Self {
            key: std::sync::Arc::new(aead),
            index_key,
        }
    }

    /// The blind index of an already normalised value: hex HMAC-SHA256 under a key derived from
    /// the encryption key. Equal inputs give equal indexes; callers normalise first (E.164 for
    /// phone numbers, trimmed upper case for document numbers).
    pub fn blind_index(&self, normalised: &str) -> String {
        hex::encode(hmac::sign(&self.index_key, normalised.as_bytes()).as_ref())
    }

    /// Encrypts `plaintext` with a fresh random nonce.
    #[expect(
        clippy::expect_used,
        reason = "sealing fails only for inputs beyond AES-GCM's 64 GiB limit"
    )]
    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut data = plaintext.as_bytes().to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::empty(), &mut data)
            .expect("AES-GCM sealing cannot fail for in-memory buffers");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&data);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// Decrypts what [`Encryptor::encrypt`] produced.
    pub fn decrypt(&self, stored: &str) -> Result<String, DecryptError> {
        let raw = stored
            .strip_prefix(PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or(DecryptError)?;
        if raw.len() < NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| DecryptError)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut sealed)
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain.to_vec()).map_err(|_| DecryptError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_fresh_nonces_and_wrong_key() {
        let enc = Encryptor::new(&EncryptionKey([7; 32]));
        let a = enc.encrypt("secret value");
        let b = enc.encrypt("secret value");
        assert_ne!(a, b, "fresh nonce per value");
        assert!(!a.contains("secret"));
        assert_eq!(enc.decrypt(&a).expect("decrypt"), "secret value");
        let other = Encryptor::new(&EncryptionKey([8; 32]));
        assert!(other.decrypt(&a).is_err());
        assert!(enc.decrypt("v1:!!").is_err());
        assert!(enc.decrypt("plain").is_err());
    }

    #[test]
    fn blind_index_is_keyed_and_deterministic() {
        let enc = Encryptor::new(&EncryptionKey([7; 32]));
        let other = Encryptor::new(&EncryptionKey([8; 32]));
        let a = enc.blind_index("+15551234567");
        assert_eq!(a, enc.blind_index("+15551234567"));
        assert_ne!(a, enc.blind_index("+15551234568"));
        assert_ne!(a, other.blind_index("+15551234567"), "keyed");
        assert_eq!(a.len(), 64);
        assert!(!a.contains("5551234567"));
    }
}
